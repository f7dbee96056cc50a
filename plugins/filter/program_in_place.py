# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: program_in_place
short_description: Whether a probed file already is the host program the controller would build
version_added: 0.1.0
description:
  - Builds the host program of O(source) and O(description) as the M(qwf.collision_guard.managed_files) action builds it, in memory,
    and tells whether the probed file, one entry of RV(qwf.collision_guard.guard_dropins#module:probed_files), is a
    root-owned regular file with exactly those bytes and O(mode).
  - The P(qwf.collision_guard.harden#role) role installs a program only when it is not, so a rerun skips the install
    without a round trip to the host.
author:
  - Collision Guard maintainers (@qwf)
options:
  _input:
    description: What the plan module saw at the program's path.
    type: dict
    required: true
  source:
    description: The entry script's text, as C(lookup('ansible.builtin.file', NAME, rstrip=false)) reads it.
    type: str
    required: true
  description:
    description: The program's one-line description, as given to M(qwf.collision_guard.managed_files) in O(qwf.collision_guard.managed_files#module:programs).
    type: str
    required: true
  mode:
    description: The program's mode.
    type: str
    default: "0644"
"""

EXAMPLES = r"""
- name: Install the helper only when the plan saw something else there
  qwf.collision_guard.managed_files:
    programs:
      - src: collision-guard-evict
        dest: /usr/local/lib/collision-guard/collision-guard-evict
        description: The eviction helper
  when: >-
    not plan.probed_files['/usr/local/lib/collision-guard/collision-guard-evict']
    | qwf.collision_guard.program_in_place(lookup('ansible.builtin.file', 'collision-guard-evict', rstrip=false),
                                           'The eviction helper')
"""

RETURN = r"""
_value:
  description: True when the file at the path is the program as it would be installed.
  type: bool
"""

import hashlib

from ansible.errors import AnsibleFilterError

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._host_program import build_program, read_module_utils
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._probe import probe_holds


def program_in_place(probe, source, description, mode='0644'):
    try:
        program = build_program(source.encode('utf-8'), read_module_utils(), description)
    except (CollisionGuardError, SyntaxError) as error:
        raise AnsibleFilterError('cannot build the host program: %s' % error)
    return probe_holds(probe, hashlib.sha1(program).hexdigest(), mode)


class FilterModule(object):
    def filters(self):
        return {'program_in_place': program_in_place}
