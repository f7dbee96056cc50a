# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: program_checksum
short_description: The SHA-1 of the host program the controller would build
version_added: 0.1.0
description:
  - Builds the host program of O(_input) and O(description) as the M(qwf.collision_guard.managed_files) action builds
    it, in memory, and returns its SHA-1.
  - The P(qwf.collision_guard.harden#role) role compares it, once per run, with what the plan module saw at the
    program's path (RV(qwf.collision_guard.guard_dropins#module:probed_files)), and installs the program only when
    they differ, so a rerun skips the install without a round trip to the host.
author:
  - Collision Guard maintainers (@qwf)
options:
  _input:
    description: The entry script's text, as C(lookup('ansible.builtin.file', NAME, rstrip=false)) reads it.
    type: str
    required: true
  description:
    description: The program's one-line description, as given to M(qwf.collision_guard.managed_files) in O(qwf.collision_guard.managed_files#module:programs).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Install the helper only when the plan saw something else there
  qwf.collision_guard.managed_files:
    programs:
      - src: collision-guard-evict
        dest: /usr/local/lib/collision-guard/collision-guard-evict
        description: The eviction helper
  vars:
    built: "{{ lookup('ansible.builtin.file', 'collision-guard-evict', rstrip=false) | qwf.collision_guard.program_checksum('The eviction helper') }}"
  when: >-
    not plan.probed_files['/usr/local/lib/collision-guard/collision-guard-evict']
    | qwf.collision_guard.probe_holds(sha1=built, mode='0644')
"""

RETURN = r"""
_value:
  description: The program's SHA-1, as hex digits.
  type: str
"""

import hashlib

from ansible.errors import AnsibleFilterError

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._host_program import build_program, read_module_utils


def program_checksum(source, description):
    try:
        program = build_program(source.encode('utf-8'), read_module_utils(), description)
    except (CollisionGuardError, SyntaxError) as error:
        raise AnsibleFilterError('cannot build the host program: %s' % error)
    return hashlib.sha1(program).hexdigest()


class FilterModule(object):
    def filters(self):
        return {'program_checksum': program_checksum}
