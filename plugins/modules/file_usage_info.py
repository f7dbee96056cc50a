#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: file_usage_info
short_description: Find the files processes share on a host, with the risk of each and what protects it
version_added: 0.1.0
description:
  - Looks at the files processes have open and at the files under O(paths), and reports four kinds of findings.
  - C(sqlite), a SQLite database found by its header magic, with its journal mode from the header
    (rollback or WAL), whether C(-wal), C(-shm) or C(-journal) files sit beside it, and the processes
    and units that have it open.
  - C(lock), a file locked through C(flock) or C(fcntl) with its holders from C(/proc/locks), or a
    C(*.lock)/C(*.lck) file that nobody holds.
  - C(pidfile), a C(*.pid) file under O(pid_file_paths) or O(paths), with its pid, whether that pid is
    alive, and whether the live process is the one that wrote the file. A file is stale when its pid is
    dead or reused. Reuse is judged by time, never by names; a process can only have written the file if it
    was already running when the file was last written, so a process that started more than a second after
    the file's modification time (its start time read from C(/proc/PID/stat) and the boot time in
    C(/proc/stat)) has a reused pid.
  - C(shared-temp), a fixed path under C(/tmp) or C(/var/tmp) used (open, or as working directory) by two
    or more processes; C(shared-file), any other file opened for writing by two or more processes.
  - Each finding carries a C(risk) (V(critical), V(medium) or V(low)) with its C(reason) written out,
    and C(protection), what already protects it, or V(none).
author:
  - Collision Guard maintainers (@qwf)
extends_documentation_fragment:
  - qwf.collision_guard.attributes.info_module
options:
  paths:
    description:
      - Directories searched for SQLite databases, lock files and PID files, besides the files processes have open.
    type: list
    elements: path
    default: [/var/lib, /srv, /opt, /home, /tmp, /var/tmp]
  pid_file_paths:
    description:
      - Directories searched for C(*.pid) files.
    type: list
    elements: path
    default: [/run]
  max_depth:
    description:
      - How many directory levels below each of O(paths) and O(pid_file_paths) are searched.
    type: int
    default: 4
  max_files:
    description:
      - How many files the search looks at in all before it stops and sets RV(truncated).
    type: int
    default: 20000
"""

EXAMPLES = r"""
- name: Find shared files
  qwf.collision_guard.file_usage_info:
  register: files

- name: Show the critical ones
  ansible.builtin.debug:
    msg: "{{ files.findings | selectattr('risk', 'equalto', 'critical') | map(attribute='path') | list }}"

- name: Look only at an application's directory, deeper
  qwf.collision_guard.file_usage_info:
    paths: [/srv/app]
    max_depth: 8
"""

RETURN = r"""
findings:
  description: One entry per shared resource, the most risky first.
  returned: always
  type: list
  elements: dict
  contains:
    type:
      description: V(sqlite), V(lock), V(pidfile), V(shared-temp) or V(shared-file).
      returned: always
      type: str
      sample: sqlite
    path:
      description: The file or directory.
      returned: always
      type: str
      sample: /var/lib/app/state.db
    risk:
      description: V(critical), V(medium) or V(low).
      returned: always
      type: str
      sample: critical
    reason:
      description: Why the finding has that risk.
      returned: always
      type: str
      sample: 'rollback journal opened by 2 owners: a writer locks out every reader and writer'
    protection:
      description: What already protects the resource (V(WAL journal), a lock kind, V(stale-PID check)), or V(none).
      returned: always
      type: str
      sample: none
    owners:
      description: The units (or process names) and pids that use the resource. Processes of one unit, or of one
        login session, count as one owner when the risk is judged.
      returned: always
      type: list
      elements: str
      sample: ["app.service (pid 812)", "cron.service (pid 4410)"]
    holders:
      description: The processes that use the resource, with C(pid), C(name), C(unit), C(session), C(user_manager)
        (the user's service manager, such as C(user@1000.service), when C(unit) is one of that user's own units, else
        null), C(writing) (V(write), V(append) or null) and C(cwd).
      returned: always
      type: list
      elements: dict
      sample: [{pid: 812, name: python3, unit: app.service, session: 812, user_manager: null, writing: write, cwd: false}]
    journal_mode:
      description: For C(sqlite), V(wal) or V(rollback), read from the database header.
      returned: when type is sqlite
      type: str
      sample: wal
    companions:
      description: For C(sqlite), which of C(-wal), C(-shm) and C(-journal) exist beside the database.
      returned: when type is sqlite
      type: list
      elements: str
      sample: ["-wal", "-shm"]
    lock_pids:
      description: For C(lock), the pids that hold or wait for the lock in C(/proc/locks).
      returned: when type is lock
      type: list
      elements: int
      sample: [812]
    pid:
      description: For C(pidfile), the pid the file holds, or null.
      returned: when type is pidfile
      type: int
      sample: 4242
    status:
      description: For C(pidfile), V(alive), V(dead) or V(reused) (the live process started after the file was
        last written).
      returned: when type is pidfile
      type: str
      sample: dead
    stale:
      description: For C(pidfile), whether the file is stale (its pid dead or reused).
      returned: when type is pidfile
      type: bool
      sample: true
    writers:
      description: For C(shared-temp) and C(shared-file), the holders that have the file open for writing.
      returned: when type is shared-temp or shared-file
      type: list
      elements: str
      sample: ["app.service (pid 812)"]
truncated:
  description: Whether the search stopped at O(max_files) before it saw everything.
  returned: always
  type: bool
  sample: false
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qwf.collision_guard.plugins.module_utils._file_usage import find_shared_files


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='path', default=['/var/lib', '/srv', '/opt', '/home', '/tmp', '/var/tmp']),
            pid_file_paths=dict(type='list', elements='path', default=['/run']),
            max_depth=dict(type='int', default=4),
            max_files=dict(type='int', default=20000),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['max_depth'] < 0 or params['max_files'] < 1:
        module.fail_json(msg='Cannot search: max_depth must be 0 or more and max_files 1 or more, got %d and %d'
                         % (params['max_depth'], params['max_files']))

    # The module's own process and the shell that started it use nothing of interest.
    findings, complete, truncated = find_shared_files(
        params['paths'], params['pid_file_paths'], params['max_depth'], params['max_files'],
        skip_pids=(os.getpid(), os.getppid()))

    if not complete:
        module.warn('Some processes could not be inspected (run as root to see them); their files are missing.')
    if truncated:
        module.warn('The search stopped after max_files=%d files; raise it, or narrow paths.' % params['max_files'])
    module.exit_json(changed=False, findings=findings, truncated=truncated)


if __name__ == '__main__':
    main()
