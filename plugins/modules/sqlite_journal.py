#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: sqlite_journal
short_description: Switch SQLite databases to the WAL journal mode, or back to delete
version_added: 0.1.0
description:
  - Switches each database of O(databases) that exists to its O(databases[].journal_mode) with Python's own
    C(sqlite3), so that readers and one writer no longer lock each other out. In WAL mode readers go on
    reading while a writer commits; in the rollback journal (V(delete)) a writer locks out every reader.
  - Every database is first looked at without changing anything, its journal mode read from bytes 18 and 19
    of its header. When any database is refused, the task fails with one message that names every refused
    database and why, and no database is switched.
  - A database is refused when it is a symbolic link, not a regular file, a file with other hard links, or not
    a SQLite database; when its directory is reached through a symbolic link in a directory another account
    can write; when a C(-wal), C(-shm) or C(-journal) file beside it is not a plain file; when it would go to
    WAL on a network file system (NFS, CIFS and the like); and when it would change on a read-only mount.
  - A database that does not exist is reported as V(absent) and never created.
  - A database that another connection holds (a writer in a transaction, or, for a switch back to V(delete),
    any other open connection) is busy. It is left as it is after at most O(busy_timeout_ms), the task warns
    naming the processes that hold the database open, and the next run tries again. A busy database never
    fails the task.
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Reads each database's header and opens no database, and reports what it would switch, with the diff.
      It cannot tell in advance that a database will be busy.
  diff_mode:
    support: full
    description: Returns the journal mode before and after of every database it switches.
  platform:
    support: full
    platforms: posix
    description: Linux with C(/proc); run as root to switch databases of every account.
options:
  databases:
    description:
      - The databases, each with its absolute O(databases[].path) and the O(databases[].journal_mode) it should have.
      - The P(qwf.collision_guard.harden#role) role passes C(collision_guard_sqlite) here.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description:
          - The absolute path of the database file, without C(.) or C(..) components.
        type: str
        required: true
      journal_mode:
        description:
          - V(wal) for the write-ahead log, V(delete) for the rollback journal that SQLite uses by default.
        type: str
        choices: [wal, delete]
        default: wal
  busy_timeout_ms:
    description:
      - How long, in milliseconds, to wait for a database that another connection holds before it counts as busy.
      - V(0) does not wait at all.
    type: int
    default: 2000
notes:
  - The busy timeout is set per connection. This module sets it only for its own connection, so applications must
    still set theirs (C(PRAGMA busy_timeout), or C(timeout) in Python's C(sqlite3.connect)), or a writer gets
    C(database is locked) at once while another one commits. WAL makes readers and a writer stop blocking each
    other; two writers still take turns.
  - The WAL journal mode is persistent, kept in the database file. Every connection, of every application, uses it
    from then on, and it stays when this module is no longer run. Set O(databases[].journal_mode=delete) to go back.
  - Databases on network file systems are refused WAL. WAL needs the C(-shm) shared-memory index that every process
    opening the database maps, which a network file system does not share between hosts, and file locks there are
    unreliable. The file system is the one C(/proc/self/mountinfo) shows for the database's real path. Switching
    such a database back to V(delete) is allowed.
  - In WAL mode, every process that opens the database needs write access to its C(-shm) file, or to the database's
    directory when no C(-shm) file exists. A C(-wal) or C(-shm) file that SQLite creates as root gets the database
    file's owner and mode.
  - The processes named in a busy warning are found in C(/proc), as M(qwf.collision_guard.file_usage_info) finds them;
    processes in containers are not seen.
seealso:
  - name: Write-Ahead Logging
    description: How WAL works, and why it does not work over a network file system.
    link: https://www.sqlite.org/wal.html
  - name: PRAGMA journal_mode
    description: The journal modes of SQLite.
    link: https://www.sqlite.org/pragma.html#pragma_journal_mode
  - module: qwf.collision_guard.file_usage_info
    description: Finds the SQLite databases that processes share, with their journal modes.
"""

EXAMPLES = r"""
- name: Put the application's databases in WAL mode
  qwf.collision_guard.sqlite_journal:
    databases:
      - path: /srv/app/data/app.db
      - path: /var/lib/reports/reports.db
        journal_mode: wal
    busy_timeout_ms: 2000

- name: Put a database back in the rollback journal
  qwf.collision_guard.sqlite_journal:
    databases:
      - path: /srv/app/data/app.db
        journal_mode: delete

- name: Switch the databases the harden role was given
  qwf.collision_guard.sqlite_journal:
    databases: "{{ collision_guard_sqlite }}"
    busy_timeout_ms: "{{ collision_guard_sqlite_busy_timeout_ms }}"
  register: journal

- name: Show the databases that were busy
  ansible.builtin.debug:
    msg: "{{ journal.databases | selectattr('state', 'equalto', 'busy') | map(attribute='path') | list }}"
"""

RETURN = r"""
databases:
  description: One entry per database of O(databases), in their order.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The path, as given.
      returned: always
      type: str
      sample: /srv/app/data/app.db
    state:
      description:
        - V(converted), switched to its journal mode (in check mode, would be switched);
          V(current), already in it; V(busy), held by another connection and left as it was;
          V(absent), no such file.
      returned: always
      type: str
      sample: converted
    journal_mode:
      description: The journal mode after the task, V(wal) or V(delete); null when the database is absent.
      returned: always
      type: str
      sample: wal
    journal_mode_before:
      description: The journal mode before the task, read from the header; null when the database is absent.
      returned: always
      type: str
      sample: delete
    holders:
      description: For a busy database, the processes that hold it or its C(-wal), C(-shm) and C(-journal) files
        open, as C(unit (pid N)); empty otherwise.
      returned: always
      type: list
      elements: str
      sample: []
  sample: [{path: /srv/app/data/app.db, state: converted, journal_mode: wal, journal_mode_before: delete, holders: []}]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._file_usage import scan_open_files
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import process_describer
from ansible_collections.qwf.collision_guard.plugins.module_utils._sqlite import (
    BUSY_TIMEOUT_MS_MAX,
    DEFAULT_BUSY_TIMEOUT_MS,
    JOURNAL_MODES,
    busy_warning,
    holders_of,
    journal_diff,
    plan_database,
    read_mounts,
    sqlite_problems,
    switch_journal_mode,
)


def plan_all(databases, mounts):
    """``(plans, refused)``: every database looked at, and one line per refused database."""
    plans, refused = [], []
    for entry in databases:
        try:
            plans.append(plan_database(entry['path'], entry['journal_mode'], mounts))
        except CollisionGuardError as error:
            refused.append('%s: %s' % (entry['path'], error))
        except (IOError, OSError) as error:
            refused.append('%s: cannot be looked at: %s' % (entry['path'], to_native(error)))
    return plans, refused


def main():
    module = AnsibleModule(
        argument_spec=dict(
            databases=dict(type='list', elements='dict', required=True, options=dict(
                path=dict(type='str', required=True),
                journal_mode=dict(type='str', choices=list(JOURNAL_MODES), default='wal'),
            )),
            busy_timeout_ms=dict(type='int', default=DEFAULT_BUSY_TIMEOUT_MS),
        ),
        supports_check_mode=True,
    )
    timeout = module.params['busy_timeout_ms']
    if not 0 <= timeout <= BUSY_TIMEOUT_MS_MAX:
        module.fail_json(msg='Cannot switch journal modes: busy_timeout_ms must be in 0-%d, got %d' % (BUSY_TIMEOUT_MS_MAX, timeout))
    problems = sqlite_problems(module.params['databases'], where='databases')
    if problems:
        module.fail_json(msg=CollisionGuardError('Cannot switch journal modes: databases has %d bad value(s)' % len(problems),
                                                 problems).full_message())

    plans, refused = plan_all(module.params['databases'], read_mounts())
    if refused:
        module.fail_json(msg=CollisionGuardError('Cannot switch journal modes: %d database(s) refused; no database was changed'
                                                 % len(refused), refused).full_message())

    results, diffs, busy = [], [], []
    for plan in plans:
        state, mode, reason = plan['state'], plan['mode'], None
        if state == 'convert' and module.check_mode:
            state, mode = 'converted', plan['wanted']
        elif state == 'convert':
            try:
                state, mode, reason = switch_journal_mode(plan, timeout)
            except (CollisionGuardError, IOError, OSError) as error:
                module.fail_json(msg='Cannot switch %s to %s mode: %s' % (plan['path'], plan['wanted'], to_native(error)),
                                 databases=results, changed=bool(diffs), diff=diffs)
        result = {'path': plan['path'], 'state': state, 'journal_mode': mode, 'journal_mode_before': plan['mode'], 'holders': []}
        if state == 'converted':
            diffs.append(journal_diff(plan['path'], plan['mode'], mode))
        elif state == 'busy':
            busy.append((result, plan['real_path'], reason))
        results.append(result)

    if busy:
        # The module's own process and the shell that started it hold nothing of interest.
        open_files, dummy = scan_open_files(process_describer(), skip_pids=(os.getpid(), os.getppid()))
        for result, real_path, reason in busy:
            result['holders'] = holders_of(real_path, open_files)
            module.warn(busy_warning(result['path'], result['journal_mode'], reason, result['holders']))
    module.exit_json(changed=bool(diffs), databases=results, diff=diffs)


if __name__ == '__main__':
    main()
