# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _files

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


def fixture_bytes(name):
    with open(os.path.join(FIXTURES, name), 'rb') as handle:
        return handle.read()


@pytest.mark.parametrize('header, mode', [
    (fixture_bytes('sqlite_wal_header.bin'), 'wal'),
    (fixture_bytes('sqlite_rollback_header.bin'), 'rollback'),
    (fixture_bytes('sqlite_wal_header.bin')[:50], None),
    (b'PK\x03\x04' + b'\0' * 96, None),
    (b'', None),
], ids=['wal', 'rollback', 'short', 'zip', 'empty'])
def test_sqlite_journal_mode(header, mode):
    assert _files.sqlite_journal_mode(header) == mode


def test_parse_proc_locks(fixture_text):
    locks = _files.parse_proc_locks(fixture_text('proc_locks.txt'))
    assert [(lock['kind'], lock['pid'], lock['inode'], lock['blocked']) for lock in locks] == [
        ('POSIX', 812, 393219, False),
        ('POSIX', 4410, 393219, True),
        ('FLOCK', 17442, 1466558, False),
        ('OFDLCK', -1, 77, False),
    ]
    assert locks[0]['device'] == os.makedev(8, 1)
    assert locks[2]['device'] == os.makedev(0xfe, 0)


def test_fdinfo_flags_and_write_mode(fixture_text):
    flags = _files.fdinfo_flags(fixture_text('fdinfo_append.txt'))
    assert flags == 0o2102001
    assert _files.write_mode(flags) == 'append'
    assert _files.write_mode(0o100002) == 'write'
    assert _files.write_mode(0o100000) is None
    assert _files.write_mode(None) is None
    assert _files.fdinfo_flags('') is None


@pytest.mark.parametrize('pid, process, expected, status', [
    (812, {'name': 'nginx', 'cmdline': ['nginx: master process']}, 'nginx', 'alive'),
    (812, {'name': 'python3', 'cmdline': ['/usr/bin/python3', '/opt/app/worker.py']}, 'worker', 'alive'),
    (812, {'name': 'sshd', 'cmdline': ['/usr/sbin/sshd', '-D']}, 'sshd', 'alive'),
    (812, {'name': 'bash', 'cmdline': ['bash']}, 'nginx', 'reused'),
    (812, None, 'nginx', 'dead'),
    (None, None, 'nginx', 'dead'),
], ids=['name', 'script', 'exact', 'reused', 'dead', 'empty-file'])
def test_pid_file_status(pid, process, expected, status):
    assert _files.pid_file_status(pid, process, expected) == status


@pytest.mark.parametrize('text, pid', [('4242\n', 4242), (' 17 ', 17), ('', None), ('abc', None), ('0', None),
                                       ('12\nextra', 12)])
def test_parse_pid(text, pid):
    assert _files.parse_pid(text) == pid


def holder(pid, unit, writing=None):
    return {'pid': pid, 'name': 'p%d' % pid, 'unit': unit, 'writing': writing, 'cwd': False}


@pytest.mark.parametrize('mode, holders, risk, protection', [
    ('wal', [holder(1, 'a.service'), holder(2, 'b.service')], 'low', 'WAL journal'),
    ('rollback', [holder(1, 'a.service'), holder(2, 'b.service')], 'critical', 'none'),
    ('rollback', [holder(1, 'a.service'), holder(2, 'a.service')], 'medium', 'none'),
    ('rollback', [], 'medium', 'none'),
], ids=['wal', 'rollback-two-owners', 'rollback-one-owner', 'rollback-unused'])
def test_assess_sqlite(mode, holders, risk, protection):
    finding = _files.assess_sqlite('/var/lib/app/state.db', mode, holders, ['-wal'])
    assert (finding['risk'], finding['protection']) == (risk, protection)
    assert finding['reason']


def test_assess_lock():
    held = _files.assess_lock('/run/app.lock', [{'kind': 'FLOCK', 'pid': 1, 'blocked': False}], [holder(1, 'a.service')])
    assert (held['risk'], held['protection'], held['lock_pids']) == ('low', 'FLOCK lock', [1])
    contended = _files.assess_lock('/run/app.lock', [{'kind': 'POSIX', 'pid': 1, 'blocked': False},
                                                     {'kind': 'POSIX', 'pid': 2, 'blocked': True}], [])
    assert contended['risk'] == 'medium'
    stale = _files.assess_lock('/run/app.lock', [], [])
    assert (stale['risk'], stale['protection']) == ('medium', 'none')


@pytest.mark.parametrize('status, risk, stale', [('alive', 'low', False), ('dead', 'medium', True), ('reused', 'critical', True)])
def test_assess_pid_file(status, risk, stale):
    finding = _files.assess_pid_file('/run/app.pid', 4242, status, {'name': 'bash'})
    assert (finding['risk'], finding['stale']) == (risk, stale)


@pytest.mark.parametrize('holders, kind, risk', [
    ([holder(1, 'a.service', 'write'), holder(2, 'b.service', 'write')], 'file', 'critical'),
    ([holder(1, 'a.service', 'append'), holder(2, 'b.service', 'append')], 'file', 'medium'),
    ([holder(1, 'a.service'), holder(2, 'b.service')], 'temp', 'medium'),
    ([holder(1, 'a.service', 'write'), holder(2, 'a.service', 'write')], 'file', 'low'),
    ([dict(holder(1, None, 'write'), session=7), dict(holder(2, None, 'write'), session=7)], 'file', 'low'),
    ([dict(holder(1, None, 'write'), session=7), dict(holder(2, None, 'write'), session=8)], 'file', 'critical'),
], ids=['two-writers', 'two-appenders', 'temp-two-owners', 'one-owner', 'one-session', 'two-sessions'])
def test_assess_shared_path(holders, kind, risk):
    writers = [item for item in holders if item['writing']]
    assert _files.assess_shared_path('/tmp/x', holders, writers, kind)['risk'] == risk


def test_findings_sort_by_risk_then_type_then_path():
    findings = [{'risk': 'low', 'type': 'lock', 'path': '/a'}, {'risk': 'critical', 'type': 'sqlite', 'path': '/b'},
                {'risk': 'medium', 'type': 'pidfile', 'path': '/c'}, {'risk': 'critical', 'type': 'lock', 'path': '/d'}]
    assert [item['path'] for item in _files.sort_findings(findings)] == ['/d', '/b', '/c', '/a']


def test_in_shared_temp():
    assert _files.in_shared_temp('/tmp/app/x')
    assert _files.in_shared_temp('/var/tmp')
    assert not _files.in_shared_temp('/tmpfoo')
    assert not _files.in_shared_temp('/var/lib/x')


def test_walk_files_respects_depth_and_count(tmp_path):
    (tmp_path / 'a' / 'b' / 'c').mkdir(parents=True)
    for directory in ('', 'a', 'a/b', 'a/b/c'):
        (tmp_path / directory / 'x.pid').write_text('1')
    found, truncated = _files.walk_files([str(tmp_path)], 2, 100, lambda path: path.endswith('.pid'))
    assert sorted(os.path.relpath(path, str(tmp_path)) for path in found) == ['a/b/x.pid', 'a/x.pid', 'x.pid']
    assert not truncated
    found, truncated = _files.walk_files([str(tmp_path)], 10, 2, lambda path: True)
    assert truncated and len(found) == 2
