# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _file_usage

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
    assert _file_usage.sqlite_journal_mode(header) == mode


def test_parse_proc_locks(fixture_text):
    locks = _file_usage.parse_proc_locks(fixture_text('proc_locks.txt'))
    assert [(lock['kind'], lock['pid'], lock['inode'], lock['blocked']) for lock in locks] == [
        ('POSIX', 812, 393219, False),
        ('POSIX', 4410, 393219, True),
        ('FLOCK', 17442, 1466558, False),
        ('OFDLCK', -1, 77, False),
    ]
    assert locks[0]['device'] == os.makedev(8, 1)
    assert locks[2]['device'] == os.makedev(0xfe, 0)


def test_fdinfo_flags_and_write_mode(fixture_text):
    flags = _file_usage.fdinfo_flags(fixture_text('fdinfo_append.txt'))
    assert flags == 0o2102001
    assert _file_usage.write_mode(flags) == 'append'
    assert _file_usage.write_mode(0o100002) == 'write'
    assert _file_usage.write_mode(0o100000) is None
    assert _file_usage.write_mode(None) is None
    assert _file_usage.fdinfo_flags('') is None


BOOT = 1795857518
POSTGRES_STARTED = BOOT + 1234567 / 100.0
POSTGRES = {'pid': 4410, 'name': 'postgres', 'unit': 'postgresql@15-main.service',
            'cmdline': ['/usr/lib/postgresql/15/bin/postgres', '-D', '/var/lib/postgresql/15/main']}
BASH = {'pid': 4410, 'name': 'bash', 'unit': None, 'cmdline': ['bash']}


def test_parse_start_ticks(fixture_text):
    assert _file_usage.parse_start_ticks(fixture_text('files/proc_pid_stat_postgres.txt')) == 1234567
    # The command name is "a) b (c": only the last ')' ends it.
    assert _file_usage.parse_start_ticks(fixture_text('files/proc_pid_stat_odd_comm.txt')) == 98765
    assert _file_usage.parse_start_ticks('812 (nginx) S 1 812') is None
    assert _file_usage.parse_start_ticks('no parentheses here') is None
    assert _file_usage.parse_start_ticks('') is None


def test_parse_boot_time(fixture_text):
    assert _file_usage.parse_boot_time(fixture_text('files/proc_stat.txt')) == BOOT
    assert _file_usage.parse_boot_time('cpu 1 2 3\nctxt 5\n') is None
    assert _file_usage.parse_boot_time('') is None
    assert _file_usage.parse_boot_time(None) is None


def test_process_start_time(fixture_text):
    ticks = _file_usage.parse_start_ticks(fixture_text('files/proc_pid_stat_postgres.txt'))
    boot = _file_usage.parse_boot_time(fixture_text('files/proc_stat.txt'))
    assert _file_usage.process_start_time(ticks, boot, 100) == pytest.approx(POSTGRES_STARTED)
    assert _file_usage.process_start_time(ticks, boot, 250) == pytest.approx(BOOT + 4938.268)
    assert _file_usage.process_start_time(None, boot, 100) is None
    assert _file_usage.process_start_time(ticks, None, 100) is None
    assert _file_usage.process_start_time(ticks, boot, None) is None
    assert _file_usage.process_start_time(ticks, boot, 0) is None


def test_process_start_time_of_this_process():
    with open('/proc/self/stat') as handle:
        ticks = _file_usage.parse_start_ticks(handle.read())
    with open('/proc/stat') as handle:
        boot = _file_usage.parse_boot_time(handle.read())
    started = _file_usage.process_start_time(ticks, boot, _file_usage.clock_ticks())
    assert boot <= started <= time.time() + 1


# (pid, process, written, started, declared unit): what the file holds, the
# process with that pid now, the file's mtime, the process's start time and
# the unit whose PIDFile= is the file. Names never decide.
@pytest.mark.parametrize('pid, process, written, started, declared_unit, status', [
    (4410, POSTGRES, POSTGRES_STARTED + 2, POSTGRES_STARTED, None, 'alive'),
    (4410, POSTGRES, POSTGRES_STARTED + 3600, POSTGRES_STARTED, None, 'alive'),
    (4410, BASH, POSTGRES_STARTED + 2, POSTGRES_STARTED, None, 'alive'),
    (4410, POSTGRES, POSTGRES_STARTED - 30, POSTGRES_STARTED, None, 'reused'),
    (4410, BASH, POSTGRES_STARTED - 30, POSTGRES_STARTED, None, 'reused'),
    (4410, POSTGRES, POSTGRES_STARTED - 1, POSTGRES_STARTED, None, 'alive'),
    (4410, POSTGRES, POSTGRES_STARTED - 1.5, POSTGRES_STARTED, None, 'reused'),
    (4410, POSTGRES, None, None, 'postgresql@15-main.service', 'alive'),
    (4410, POSTGRES, POSTGRES_STARTED - 30, POSTGRES_STARTED, 'postgresql@15-main.service', 'alive'),
    (4410, BASH, POSTGRES_STARTED - 30, POSTGRES_STARTED, 'postgresql@15-main.service', 'reused'),
    (4410, POSTGRES, None, POSTGRES_STARTED, None, 'alive'),
    (4410, POSTGRES, POSTGRES_STARTED, None, None, 'alive'),
    (4410, None, POSTGRES_STARTED, None, None, 'dead'),
    (4410, None, POSTGRES_STARTED, None, 'postgresql@15-main.service', 'dead'),
    (None, None, POSTGRES_STARTED, None, None, 'dead'),
], ids=['postmaster.pid-postgres-started-before', 'started-long-before', 'other-name-started-before',
        'started-after', 'other-name-started-after', 'within-clock-tolerance', 'beyond-clock-tolerance',
        'declared-pidfile-times-unknown', 'declared-pidfile-beats-time', 'other-unit-started-after',
        'mtime-unknown', 'start-unknown', 'dead', 'dead-despite-unit', 'empty-file'])
def test_pid_file_status(pid, process, written, started, declared_unit, status):
    assert _file_usage.pid_file_status(pid, process, written, started, declared_unit) == status


def test_pid_file_reasons_say_what_the_pid_is_and_when_it_started():
    args = (4410, POSTGRES, POSTGRES_STARTED + 2, POSTGRES_STARTED)
    alive = _file_usage.assess_pid_file('/var/lib/postgresql/15/main/postmaster.pid', args[0], 'alive', *args[1:])
    assert alive['risk'] == 'low' and not alive['stale']
    assert 'already running when the file was last written' in alive['reason']

    args = (4410, BASH, POSTGRES_STARTED - 30, POSTGRES_STARTED)
    reused = _file_usage.assess_pid_file('/run/app.pid', args[0], _file_usage.pid_file_status(*args), *args[1:])
    assert (reused['status'], reused['risk']) == ('reused', 'critical')
    assert 'bash (command bash)' in reused['reason'] and 'started 30 s after the file was last written' in reused['reason']
    described = _file_usage.describe_pid_owner(POSTGRES)
    assert described == ('postgres (unit postgresql@15-main.service, '
                         'command /usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main)')

    unit = 'postgresql@15-main.service'
    declared = _file_usage.assess_pid_file('/run/postgresql/15-main.pid', 4410, 'alive', POSTGRES, None, None, unit)
    assert 'PIDFile' in declared['reason'] and unit in declared['reason']
    unknown = _file_usage.assess_pid_file('/run/app.pid', 4410, 'alive', POSTGRES)
    assert 'unknown' in unknown['reason']


@pytest.mark.parametrize('text, pid', [('4242\n', 4242), (' 17 ', 17), ('', None), ('abc', None), ('0', None),
                                       ('12\nextra', 12)])
def test_parse_pid(text, pid):
    assert _file_usage.parse_pid(text) == pid


def holder(pid, unit, writing=None):
    return {'pid': pid, 'name': 'p%d' % pid, 'unit': unit, 'writing': writing, 'cwd': False}


@pytest.mark.parametrize('mode, holders, risk, protection', [
    ('wal', [holder(1, 'a.service'), holder(2, 'b.service')], 'low', 'WAL journal'),
    ('rollback', [holder(1, 'a.service'), holder(2, 'b.service')], 'critical', 'none'),
    ('rollback', [holder(1, 'a.service'), holder(2, 'a.service')], 'medium', 'none'),
    ('rollback', [], 'medium', 'none'),
], ids=['wal', 'rollback-two-owners', 'rollback-one-owner', 'rollback-unused'])
def test_assess_sqlite(mode, holders, risk, protection):
    finding = _file_usage.assess_sqlite('/var/lib/app/state.db', mode, holders, ['-wal'])
    assert (finding['risk'], finding['protection']) == (risk, protection)
    assert finding['reason']


def test_assess_lock():
    held = _file_usage.assess_lock('/run/app.lock', [{'kind': 'FLOCK', 'pid': 1, 'blocked': False}], [holder(1, 'a.service')])
    assert (held['risk'], held['protection'], held['lock_pids']) == ('low', 'FLOCK lock', [1])
    contended = _file_usage.assess_lock('/run/app.lock', [{'kind': 'POSIX', 'pid': 1, 'blocked': False},
                                                          {'kind': 'POSIX', 'pid': 2, 'blocked': True}], [])
    assert contended['risk'] == 'medium'
    stale = _file_usage.assess_lock('/run/app.lock', [], [])
    assert (stale['risk'], stale['protection']) == ('medium', 'none')


@pytest.mark.parametrize('status, risk, stale', [('alive', 'low', False), ('dead', 'medium', True), ('reused', 'critical', True)])
def test_assess_pid_file(status, risk, stale):
    finding = _file_usage.assess_pid_file('/run/app.pid', 4242, status, {'name': 'bash'})
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
    assert _file_usage.assess_shared_path('/tmp/x', holders, writers, kind)['risk'] == risk


def test_findings_sort_by_risk_then_type_then_path():
    findings = [{'risk': 'low', 'type': 'lock', 'path': '/a'}, {'risk': 'critical', 'type': 'sqlite', 'path': '/b'},
                {'risk': 'medium', 'type': 'pidfile', 'path': '/c'}, {'risk': 'critical', 'type': 'lock', 'path': '/d'}]
    assert [item['path'] for item in _file_usage.sort_findings(findings)] == ['/d', '/b', '/c', '/a']


def test_in_shared_temp():
    assert _file_usage.in_shared_temp('/tmp/app/x')
    assert _file_usage.in_shared_temp('/var/tmp')
    assert not _file_usage.in_shared_temp('/tmpfoo')
    assert not _file_usage.in_shared_temp('/var/lib/x')


def test_walk_files_respects_depth_and_count(tmp_path):
    (tmp_path / 'a' / 'b' / 'c').mkdir(parents=True)
    for directory in ('', 'a', 'a/b', 'a/b/c'):
        (tmp_path / directory / 'x.pid').write_text('1')
    found, truncated = _file_usage.walk_files([str(tmp_path)], 2, 100, lambda path: path.endswith('.pid'))
    assert sorted(os.path.relpath(path, str(tmp_path)) for path in found) == ['a/b/x.pid', 'a/x.pid', 'x.pid']
    assert not truncated
    found, truncated = _file_usage.walk_files([str(tmp_path)], 10, 2, lambda path: True)
    assert truncated and len(found) == 2


# A real PID file on this host, written for a real child process.

@pytest.fixture
def child():
    """A process that runs until the test ends."""
    process = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    yield process
    process.kill()
    process.wait()


def pid_findings(paths, **kwargs):
    findings, dummy_complete, dummy_truncated = _file_usage.find_shared_files(paths, [], 4, 1000, **kwargs)
    return dict((finding['path'], finding) for finding in findings if finding['type'] == 'pidfile')


def test_pid_file_written_after_its_process_started_is_alive(tmp_path, child):
    # The process's name (python) has nothing in common with the file's (postmaster).
    path = tmp_path / 'postmaster.pid'
    path.write_text('%d\n/var/lib/postgresql/15/main\n' % child.pid)
    finding = pid_findings([str(tmp_path)])[str(path)]
    assert (finding['pid'], finding['status'], finding['risk']) == (child.pid, 'alive', 'low')
    assert 'already running' in finding['reason']


def test_pid_file_older_than_its_process_is_reused(tmp_path, child):
    path = tmp_path / 'app.pid'
    path.write_text('%d\n' % child.pid)
    past = time.time() - 60
    os.utime(str(path), (past, past))
    finding = pid_findings([str(tmp_path)])[str(path)]
    assert (finding['pid'], finding['status'], finding['risk']) == (child.pid, 'reused', 'critical')
    assert 'after the file was last written' in finding['reason']
    assert str(child.pid) in finding['reason'] and 'time.sleep(120)' in finding['reason']


def test_pid_file_of_exited_process_and_empty_file_are_dead(tmp_path):
    exited = subprocess.Popen([sys.executable, '-c', 'pass'])
    exited.wait()
    (tmp_path / 'gone.pid').write_text('%d\n' % exited.pid)
    (tmp_path / 'empty.pid').write_text('')
    findings = pid_findings([str(tmp_path)])
    assert findings[str(tmp_path / 'gone.pid')]['status'] == 'dead'
    assert (findings[str(tmp_path / 'empty.pid')]['status'], findings[str(tmp_path / 'empty.pid')]['pid']) == ('dead', None)


def test_pid_file_declared_by_the_unit_of_its_process_is_alive(tmp_path, child, monkeypatch):
    # The unit declares the file through a symlinked directory, as /var/run -> /run.
    (tmp_path / 'run').mkdir()
    (tmp_path / 'var-run').symlink_to(tmp_path / 'run')
    path = tmp_path / 'run' / 'app.pid'
    path.write_text('%d\n' % child.pid)
    past = time.time() - 60
    os.utime(str(path), (past, past))
    real_describer = _file_usage.process_describer

    def describer(proc='/proc'):
        describe = real_describer(proc)
        return lambda pid: dict(describe(pid), unit='app.service') if pid == child.pid else describe(pid)

    monkeypatch.setattr(_file_usage, 'process_describer', describer)
    declared = {str(tmp_path / 'var-run' / 'app.pid'): 'app.service'}
    finding = pid_findings([str(tmp_path / 'run')], pid_file_units=declared)[str(path)]
    assert (finding['status'], finding['risk']) == ('alive', 'low')
    assert 'PIDFile' in finding['reason']
    other = pid_findings([str(tmp_path / 'run')], pid_file_units={str(path): 'other.service'})[str(path)]
    assert other['status'] == 'reused'
