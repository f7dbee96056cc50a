# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: fleet_findings
short_description: Merge the port_ownership_info findings of many hosts into one list
version_added: 0.1.0
description:
  - Takes a mapping of host name to that host's RV(qwf.collision_guard.port_ownership_info#module:findings)
    and returns one list, each finding with a C(host) key, the most severe first.
author:
  - Collision Guard maintainers (@qwf)
options:
  _input:
    description: Host name to findings.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: One list for the fleet
  ansible.builtin.set_fact:
    findings: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['ownership', 'findings'])))
                  | qwf.collision_guard.fleet_findings }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The findings of every host, each with C(host).
  type: list
  elements: dict
"""

from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import fleet_findings


class FilterModule(object):
    def filters(self):
        return {'fleet_findings': fleet_findings}
