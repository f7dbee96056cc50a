# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: check_table
short_description: Render fleet port-ownership findings as a compact text table
version_added: 0.1.0
description:
  - Turns the output of P(qwf.collision_guard.fleet_findings#filter) into lines of a table with the columns
    host, port, service, state and holder (unit, pid and command line of a squatter).
  - With O(guards), a second table follows that names each host whose guard is broken, and why.
  - With O(prevention), a last table gives each host's prevention (V(active), V(unavailable) and why, V(degraded) and
    why, or V(off)), then a C(BYPASSED) line for each finding whose holder runs inside a unit where harden armed
    C(SocketBindDeny=) (RV(qwf.collision_guard.port_ownership_info#module:findings[].prevention_bypassed)).
author:
  - Collision Guard maintainers (@qwf)
options:
  _input:
    description: Findings, each with C(host).
    type: list
    elements: dict
    required: true
  guards:
    description:
      - Host name to the problems that keep its guard from running, as
        RV(qwf.collision_guard.port_ownership_info#module:guard_problems) returns them.
      - Hosts with no problem are left out of the table.
    type: dict
    default: {}
  prevention:
    description:
      - Host name to its prevention, as RV(qwf.collision_guard.port_ownership_info#module:prevention) returns it.
      - Empty leaves the table out.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Show the table
  ansible.builtin.debug:
    msg: "{{ findings | qwf.collision_guard.check_table }}"

- name: Show the table, and the hosts whose guard is broken
  ansible.builtin.debug:
    msg: "{{ findings | qwf.collision_guard.check_table({'web-1': ['/usr/bin/python3 is missing']}) }}"

- name: Show the table, broken guards and each host's prevention
  ansible.builtin.debug:
    msg: "{{ findings | qwf.collision_guard.check_table(guards, {'web-1': {'state': 'active', 'summary': 'active'}}) }}"
"""

RETURN = r"""
_value:
  description: The table, one string per line, the header first.
  type: list
  elements: str
"""

from ansible_collections.qwf.collision_guard.plugins.module_utils._monitor import guard_table, prevention_table
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import check_table


def check_tables(findings, guards=None, prevention=None):
    return check_table(findings) + guard_table(dict(guards or {})) + prevention_table(dict(prevention or {}), findings)


class FilterModule(object):
    def filters(self):
        return {'check_table': check_tables}
