#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: host_program
short_description: Install one of the collection's host programs as one file
version_added: 0.1.0
description:
  - Builds a host program, the eviction helper or the ownership checker, on the controller, in memory, as one
    Python zip application. The archive holds the entry script O(src) as C(__main__.py) and exactly the
    collection's module_utils it imports, followed import by import, under their package path. C(python3 -I DEST)
    runs it, and no other C(ansible_collections) on the host can shadow its code.
  - The archive's bytes depend on the sources alone, so an unchanged collection has the same checksum on every
    controller and every run.
  - When O(current) shows the file at O(dest) already holds these bytes, with O(mode) and owned by root, nothing is
    sent and the host is not contacted. Otherwise the file is written as M(ansible.builtin.copy) writes it,
    which compares checksums on the host first.
  - The P(qwf.collision_guard.harden#role) role installs both programs with it, giving it the plan module's look at
    the path (RV(qwf.collision_guard.guard_dropins#module:probed_files)), so a rerun transfers nothing.
  - This is an action plugin.
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Reports whether the file would be written, and writes nothing.
  diff_mode:
    support: partial
    description: The file is binary, so the diff says only that it changed.
  platform:
    support: full
    platforms: posix
    description: Builds on the controller; the host needs Python 3.8 or newer to run the program.
options:
  src:
    description:
      - The entry script, looked up in the role's or playbook's C(files) directories.
    type: str
    required: true
  dest:
    description:
      - Where the program goes on the host. Its directory must exist.
    type: str
    required: true
  description:
    description:
      - One line about the program, written after the managed-by header at the top of the file.
    type: str
    required: true
  mode:
    description:
      - The program's mode. It is run by an interpreter, so it needs no execute bit.
    type: str
    default: "0644"
  current:
    description:
      - What the plan module saw at O(dest), one entry of RV(qwf.collision_guard.guard_dropins#module:probed_files).
        Without it, the host is asked.
    type: dict
notes:
  - The first line of the file names this collection, so uninstall can tell the collection's programs by it.
seealso:
  - name: zipapp
    description: Python's zip applications, which the interpreter runs from the archive.
    link: https://docs.python.org/3/library/zipapp.html
"""

EXAMPLES = r"""
- name: Install the eviction helper, one file
  qwf.collision_guard.host_program:
    src: collision-guard-evict
    dest: /usr/local/lib/collision-guard/collision-guard-evict
    description: The eviction helper of qwf.collision_guard
    current: "{{ plan.probed_files['/usr/local/lib/collision-guard/collision-guard-evict'] }}"
"""

RETURN = r"""
dest:
  description: Where the program is.
  returned: always
  type: str
  sample: /usr/local/lib/collision-guard/collision-guard-evict
checksum:
  description: The SHA-1 of the program built on the controller.
  returned: always
  type: str
  sample: 6e6b5d0b1c4a2a9e0c3f2f7f5d3b1a9c8e7d6f5a
size:
  description: The program's size in bytes.
  returned: always
  type: int
  sample: 281344
transferred:
  description: Whether the program was sent to the host in this run.
  returned: always
  type: bool
  sample: false
"""
