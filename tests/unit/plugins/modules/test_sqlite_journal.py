# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import sqlite3
import subprocess
import sys

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qwf.collision_guard.plugins.module_utils._sqlite import parse_mountinfo
from ansible_collections.qwf.collision_guard.plugins.modules import sqlite_journal

LOCAL_MOUNTS = parse_mountinfo('27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n')

# Holds an exclusive lock until its stdin closes.
HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute('BEGIN EXCLUSIVE')
print('locked', flush=True)
sys.stdin.read()
"""


@pytest.fixture
def run(monkeypatch, capsys):
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warned.append(message))
    monkeypatch.setattr(sqlite_journal, 'read_mounts', lambda: LOCAL_MOUNTS)

    def run_module(**args):
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                sqlite_journal.main()
        return json.loads(capsys.readouterr().out)

    run_module.warned = warned
    return run_module


def make_database(path, mode='delete'):
    connection = sqlite3.connect(str(path), isolation_level=None)
    connection.execute('CREATE TABLE t (x)')
    connection.execute('PRAGMA journal_mode=%s' % mode)
    connection.close()
    return path


def header_of(path):
    with open(str(path), 'rb') as handle:
        return handle.read(100)


def entry(path, state, after, before, holders=None):
    return {'path': str(path), 'state': state, 'journal_mode': after, 'journal_mode_before': before, 'holders': holders or []}


def test_converts_then_is_idempotent(run, tmp_path):
    app = make_database(tmp_path / 'app.db')
    done = make_database(tmp_path / 'done.db', 'wal')
    databases = [{'path': str(app)}, {'path': str(done)}, {'path': str(tmp_path / 'missing.db')}]
    first = run(databases=databases, _ansible_diff=True)
    assert first['changed'] is True
    assert first['databases'] == [entry(app, 'converted', 'wal', 'delete'), entry(done, 'current', 'wal', 'wal'),
                                  entry(tmp_path / 'missing.db', 'absent', None, None)]
    assert first['diff'] == [{'before_header': str(app), 'after_header': str(app),
                              'before': 'journal_mode: delete\n', 'after': 'journal_mode: wal\n'}]
    assert bytearray(header_of(app)[18:20]) == bytearray([2, 2])
    assert not (tmp_path / 'missing.db').exists()
    again = run(databases=databases)
    assert again['changed'] is False
    assert [database['state'] for database in again['databases']] == ['current', 'current', 'absent']
    assert run.warned == []


def test_check_mode_reports_the_switch_and_changes_nothing(run, tmp_path):
    app = make_database(tmp_path / 'app.db')
    header = header_of(app)
    result = run(databases=[{'path': str(app)}], _ansible_check_mode=True, _ansible_diff=True)
    assert result['changed'] is True
    assert result['databases'] == [entry(app, 'converted', 'wal', 'delete')]
    assert result['diff'][0]['after'] == 'journal_mode: wal\n'
    assert header_of(app) == header
    assert sorted(path.name for path in tmp_path.iterdir()) == ['app.db']


def test_going_back_to_delete(run, tmp_path):
    app = make_database(tmp_path / 'app.db', 'wal')
    result = run(databases=[{'path': str(app), 'journal_mode': 'delete'}], _ansible_diff=True)
    assert result['databases'] == [entry(app, 'converted', 'delete', 'wal')]
    assert (result['diff'][0]['before'], result['diff'][0]['after']) == ('journal_mode: wal\n', 'journal_mode: delete\n')


def test_a_busy_database_warns_naming_its_holder_and_does_not_fail(run, tmp_path):
    app = make_database(tmp_path / 'app.db')
    other = make_database(tmp_path / 'other.db')
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(app)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              universal_newlines=True)
    try:
        assert holder.stdout.readline() == 'locked\n'
        result = run(databases=[{'path': str(app)}, {'path': str(other)}], busy_timeout_ms=50)
    finally:
        holder.communicate('')
    assert result['changed'] is True
    busy, converted = result['databases']
    assert (busy['state'], busy['journal_mode'], busy['journal_mode_before']) == ('busy', 'delete', 'delete')
    assert [label for label in busy['holders'] if label.endswith('(pid %d)' % holder.pid)]
    assert converted['state'] == 'converted'
    assert run.warned == ['%s stays in delete mode: it is busy (database is locked after 50 ms), held open by %s; '
                          'retry at the next run' % (app, ', '.join(busy['holders']))]
    assert bytearray(header_of(app)[18:20]) == bytearray([1, 1])
    assert run(databases=[{'path': str(app)}])['databases'][0]['state'] == 'converted'


def test_refusals_are_listed_in_one_message_before_anything_changes(run, tmp_path):
    good = make_database(tmp_path / 'good.db')
    (tmp_path / 'notes.txt').write_bytes(b'not a database, but long enough to hold a SQLite header' * 3)
    (tmp_path / 'link.db').symlink_to(good)
    result = run(databases=[{'path': str(good)}, {'path': str(tmp_path / 'notes.txt')}, {'path': str(tmp_path / 'link.db')}])
    assert result['failed'] is True
    assert result['msg'] == (
        'Cannot switch journal modes: 2 database(s) refused; no database was changed\n'
        '  - %s/notes.txt: is not a SQLite database: it does not start with the 100-byte SQLite header\n'
        '  - %s/link.db: is a symbolic link to %s; root does not open databases through links' % (tmp_path, tmp_path, good))
    assert bytearray(header_of(good)[18:20]) == bytearray([1, 1])


def test_a_network_file_system_is_refused_and_says_why(run, monkeypatch, tmp_path):
    app = make_database(tmp_path / 'app.db')
    monkeypatch.setattr(sqlite_journal, 'read_mounts', lambda: LOCAL_MOUNTS + parse_mountinfo(
        '40 27 0:45 / %s rw,relatime - nfs4 fileserver:/export rw,vers=4.2\n' % tmp_path))
    result = run(databases=[{'path': str(app)}])
    assert result['failed'] is True
    assert result['msg'] == (
        'Cannot switch journal modes: 1 database(s) refused; no database was changed\n'
        '  - %s: is on nfs4, a network file system (fileserver:/export, mounted on %s): WAL needs the -shm shared-memory '
        'index that every process opening the database maps, which a network file system does not share between hosts, '
        'and its locks are unreliable; see https://www.sqlite.org/wal.html' % (app, tmp_path))


@pytest.mark.parametrize('args, message', [
    ({'databases': [{'path': 'app.db'}]},
     "Cannot switch journal modes: databases has 1 bad value(s)\n  - databases[0].path: 'app.db' is not an absolute path"),
    ({'databases': [{'path': '/srv/a.db'}, {'path': '/srv/a.db', 'journal_mode': 'delete'}]},
     "Cannot switch journal modes: databases has 1 bad value(s)\n"
     "  - databases[1].path: '/srv/a.db' is already listed at databases[0]; list each database once"),
    ({'databases': [], 'busy_timeout_ms': 60001}, 'Cannot switch journal modes: busy_timeout_ms must be in 0-60000, got 60001'),
    ({'databases': [], 'busy_timeout_ms': -1}, 'Cannot switch journal modes: busy_timeout_ms must be in 0-60000, got -1'),
], ids=['relative', 'twice', 'timeout-too-long', 'timeout-negative'])
def test_bad_arguments_fail(run, args, message):
    result = run(**args)
    assert (result['failed'], result['msg']) == (True, message)
