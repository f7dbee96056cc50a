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
"""

RETURN = r"""
_value:
  description: What the expression selects; null when it selects nothing.
  type: raw
"""

from ansible.errors import AnsibleFilterError

try:
    import jmespath
except ImportError:
    jmespath = None


def jmespath_search(data, expression):
    if jmespath is None:
        raise AnsibleFilterError('qwf.collision_guard.jmespath_search needs the jmespath library on the controller: '
                                 'pip install jmespath')
    try:
        return jmespath.search(expression, data)
    except jmespath.exceptions.JMESPathError as error:
        raise AnsibleFilterError('Cannot evaluate the JMESPath expression %r: %s' % (expression, error))


class FilterModule(object):
    def filters(self):
        return {'jmespath_search': jmespath_search}
