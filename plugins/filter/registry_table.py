# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: registry_table
short_description: Render the port registry as a Markdown table
version_added: 0.1.0
description:
  - Turns a validated registry into a Markdown table with the columns Port, Service, Protocol, Notes and
    On this host, sorted by port. The harden role writes it into C(/etc/collision-guard/PORTS.md) and into the
    managed blocks of C(collision_guard_registry_docs).
  - Every entry is one table row, whatever its text holds. A C(|) in a cell is escaped and a newline becomes a
    space. Control characters, line separators and bidirectional overrides are written as escapes such as
    C(\x1b), so they never reach a file or a terminal raw. M(qwf.collision_guard.validate_registry) refuses
    them in the first place.
author:
  - Collision Guard maintainers (@qwf)
options:
  _input:
    description: The registry, as M(qwf.collision_guard.validate_registry) returns it.
    type: list
    elements: dict
    required: true
  present_units:
    description: The units that exist on this host; their entries are marked V(yes).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The registry as a table
  ansible.builtin.debug:
    msg: "{{ validated.registry | qwf.collision_guard.registry_table(['sms-webhook.service']) }}"
"""

RETURN = r"""
_value:
  description: The table, a line per entry after the header, ending in a newline.
  type: str
"""

from ansible_collections.qwf.collision_guard.plugins.module_utils._collision_map import registry_table as _registry_table
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import printable


def registry_table(registry, present_units=()):
    # Escaped here as well, not only refused by validation: the filter may be given any list.
    return _registry_table([dict((key, printable(value) if isinstance(value, str) else value) for key, value in entry.items())
                            for entry in registry], present_units)


class FilterModule(object):
    def filters(self):
        return {'registry_table': registry_table}
