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
  prevention:
    description:
      - The host's prevention state, C(prevention.state) as M(qwf.collision_guard.bind_deny) returns it.
      - When set, a short paragraph for agents comes before the table. It says what binding a listed port does
        there and to pick a port that is not listed. V(active) says that the bind fails at once with
        C(Operation not permitted); V(off) and V(unavailable) say that the process is evicted when the port's
        owner starts; any other value, such as an empty string when the state is not known yet, says both, each
        where it holds.
      - Left unset, the table comes alone, as C(/etc/collision-guard/PORTS.md) uses it under its own text.
    type: str
"""

EXAMPLES = r"""
- name: The registry as a table
  ansible.builtin.debug:
    msg: "{{ validated.registry | qwf.collision_guard.registry_table(['sms-webhook.service']) }}"

- name: The table for a managed block, with what agents see on this host
  ansible.builtin.debug:
    msg: "{{ validated.registry | qwf.collision_guard.registry_table(['sms-webhook.service'], prevention=result.prevention.state | default('')) }}"
"""

RETURN = r"""
_value:
  description: The table, a line per entry after the header, ending in a newline; with O(prevention), a paragraph and a blank line before it.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.qwf.collision_guard.plugins.module_utils._collision_map import registry_table as _registry_table
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import printable


_PICK = ('Pick a port that is not in this table, and outside the ephemeral range\n'
         '(/proc/sys/net/ipv4/ip_local_port_range).\n')

# What a process that binds a listed port meets, by prevention state. Fixed text: the state only picks one.
INTROS = {
    'active': ('Each port below belongs to the service named. Do not bind these ports, not even for a moment.\n'
               'Prevention is active on this host: binding one from where agents run (by default every login session,\n'
               'SSH, tmux and user service) fails at once with "Operation not permitted" (EPERM; in Python\n'
               '`PermissionError: [Errno 1] Operation not permitted`). That is the guard, not a fault to work around.\n'),
    'evicted': ('Each port below belongs to the service named. Do not bind these ports, not even for a moment:\n'
                'a process that holds one is evicted when its owner starts, and reported while it holds it.\n'),
    'either': ('Each port below belongs to the service named. Do not bind these ports, not even for a moment.\n'
               'Where prevention is active, binding one from a session fails at once with "Operation not permitted"\n'
               '(EPERM; in Python `PermissionError: [Errno 1] Operation not permitted`); elsewhere a process that\n'
               'holds one is evicted when its owner starts.\n'),
}


def _intro(prevention):
    if not isinstance(prevention, str):
        raise AnsibleFilterError('qwf.collision_guard.registry_table: prevention must be a string such as "active", not %r' % (prevention,))
    if prevention == 'active':
        return INTROS['active'] + _PICK
    if prevention in ('off', 'unavailable'):
        return INTROS['evicted'] + _PICK
    return INTROS['either'] + _PICK


def registry_table(registry, present_units=(), prevention=None):
    # Escaped here as well, not only refused by validation: the filter may be given any list.
    table = _registry_table([dict((key, printable(value) if isinstance(value, str) else value) for key, value in entry.items())
                             for entry in registry], present_units)
    if prevention is None:
        return table
    return _intro(prevention) + '\n' + table


class FilterModule(object):
    def filters(self):
        return {'registry_table': registry_table}
