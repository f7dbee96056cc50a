# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: jmespath_search
short_description: Evaluate a JMESPath expression, on the controller
version_added: 0.1.0
description:
  - Returns what the JMESPath expression O(expression) selects from O(_input).
  - C(qwf.collision_guard.check) uses it to decide which findings fail the run.
  - The input is copied into plain lists, dicts, strings and numbers first, so functions such as C(length) work on
    the values ansible-core 2.19 passes to filters.
  - An expression that is not valid JMESPath fails with C(Invalid JMESPath expression), naming it; one that is valid
    but cannot be applied to the data, such as C(length) of a number, fails with C(Cannot evaluate the JMESPath
    expression).
  - Needs the C(jmespath) Python library on the controller; it does not need community.general.
author:
  - Collision Guard maintainers (@qwf)
options:
  _input:
    description: The data to search, such as a list of findings.
    type: raw
    required: true
  expression:
    description: A JMESPath expression, for example V([?severity=='critical']).
    type: str
    required: true
requirements:
  - jmespath (on the controller)
"""

EXAMPLES = r"""
- name: The critical findings
  ansible.builtin.debug:
    msg: "{{ findings | qwf.collision_guard.jmespath_search(\"[?severity=='critical']\") }}"

- name: The findings with more than one holder
  ansible.builtin.debug:
    msg: "{{ findings | qwf.collision_guard.jmespath_search('[?length(holders) > `1`]') }}"
"""

RETURN = r"""
_value:
  description: What the expression selects; null when it selects nothing.
  type: raw
"""

import re
from collections.abc import Mapping, Set

from ansible.errors import AnsibleFilterError

try:
    import jmespath
except ImportError:
    jmespath = None


def plain(value):
    """``value`` as the plain types JMESPath knows.

    ansible-core 2.19 hands filters lazy containers and tagged strings and
    numbers, whose type names JMESPath's functions do not recognise.
    """
    if isinstance(value, Mapping):
        return dict((plain(key), plain(item)) for key, item in value.items())
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        # A str subclass (a tagged template string) becomes a plain str.
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple, Set)):
        return [plain(item) for item in value]
    return value


def _reason(error):
    """jmespath's error on one line: its first, without the expression and the caret that follow."""
    lines = str(error).splitlines() or ['']
    reason = re.sub(r'^(Invalid|Bad) (jmespath|JMESPath) expression: ', '', lines[0], flags=re.IGNORECASE)
    reason = re.sub(r',? for expression:$', '', reason).rstrip(':')
    position = getattr(error, 'lex_position', getattr(error, 'lexer_position', None))
    if isinstance(position, int) and 'column' not in reason:
        reason += ' at column %d' % position
    return reason


def jmespath_search(data, expression):
    if jmespath is None:
        raise AnsibleFilterError('qwf.collision_guard.jmespath_search needs the jmespath library on the controller: '
                                 'pip install jmespath')
    if not isinstance(expression, str):
        raise AnsibleFilterError('Invalid JMESPath expression %r: not a string' % (expression,))
    expression = plain(expression)
    try:
        compiled = jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as error:
        raise AnsibleFilterError('Invalid JMESPath expression %r: %s' % (expression, _reason(error)))
    try:
        return compiled.search(plain(data))
    except (jmespath.exceptions.JMESPathError, TypeError, ValueError) as error:
        raise AnsibleFilterError('Cannot evaluate the JMESPath expression %r: %s' % (expression, _reason(error)))


class FilterModule(object):
    def filters(self):
        return {'jmespath_search': jmespath_search}
