# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: probe_holds
short_description: Whether a probed file already holds the content the role would write
version_added: 0.1.0
description:
  - Takes one entry of RV(qwf.collision_guard.guard_dropins#module:probed_files) and tells whether it is a regular
    file owned by root with exactly O(content) and O(mode).
  - The P(qwf.collision_guard.harden#role) role skips a write when it is, so a rerun that changes nothing costs
    no round trip per file. Anything else, a missing probe included, is false, and the write runs as usual.
author:
  - Collision Guard maintainers (@qwf)
options:
  _input:
    description: What the plan module saw at the path.
    type: dict
    required: true
  content:
    description: The text the role would write, as UTF-8. Or give O(sha1).
    type: str
  mode:
    description: The mode the role would set, as four octal digits.
    type: str
    default: "0644"
  sha1:
    description: The SHA-1 of the bytes the role would write, when they are not text (a host program).
    type: str
"""

EXAMPLES = r"""
- name: Write the settings, unless the plan saw them in place
  ansible.builtin.copy:
    content: "{{ settings }}"
    dest: /etc/example.json
    mode: "0644"
  when: not harden_units.probed_files['/etc/example.json'] | qwf.collision_guard.probe_holds(settings, '0644')
"""

RETURN = r"""
_value:
  description: True when the file is in place as it would be written.
  type: bool
"""

from ansible_collections.qwf.collision_guard.plugins.plugin_utils._probe import probe_holds, sha1_of_text


def holds(probe, content=None, mode='0644', sha1=None):
    return probe_holds(probe, sha1 if sha1 is not None else sha1_of_text(content or ''), mode)


class FilterModule(object):
    def filters(self):
        return {'probe_holds': holds}
