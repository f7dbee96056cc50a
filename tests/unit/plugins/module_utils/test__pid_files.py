# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _eviction
from ansible_collections.qwf.collision_guard.plugins.module_utils._journal import Journal
from ansible_collections.qwf.collision_guard.plugins.module_utils._pid_files import (
    KEEP,
    REMOVE,
    check_pid_file,
    clear_stale_pid_files,
    pid_file_receipt,
    pid_file_verdict,
    remove_entry,
)

UNIT = 'cg-pidfile.service'
OWN = {'pid': 300, 'name': 'app', 'user': 'cgapp', 'unit': UNIT, 'user_manager': None, 'container': None,
       'cmdline': ['/usr/local/bin/app']}
STRANGER = {'pid': 300, 'name': 'sleep', 'user': 'nobody', 'unit': 'cg-stranger.service', 'user_manager': None,
            'container': None, 'cmdline': ['sleep', '600']}
# A user may name a unit of her own service manager after the system unit: it is still hers.
NAMESAKE = dict(OWN, user='mallory', user_manager='user@1500.service')
IN_CONTAINER = dict(OWN, container='0123456789ab')
SESSION = dict(STRANGER, unit='session-4.scope', name='bash', cmdline=['bash'])


@pytest.mark.parametrize('pid, process, lockers, verdict, reason', [
    (300, None, (), REMOVE, 'pid 300 is dead'),
    (300, STRANGER, (), REMOVE, 'pid 300 is now sleep (user nobody, unit cg-stranger.service), outside cg-pidfile.service'),
    (300, SESSION, (), REMOVE, 'pid 300 is now bash (user nobody, unit session-4.scope), outside cg-pidfile.service'),
    (300, NAMESAKE, (), REMOVE,
     'pid 300 is now app (user mallory, unit cg-pidfile.service of user@1500.service), outside cg-pidfile.service'),
    (300, IN_CONTAINER, (), REMOVE, 'pid 300 is now app (user cgapp, container 0123456789ab), outside cg-pidfile.service'),
    (300, OWN, (), KEEP, 'pid 300 is app (user cgapp, unit cg-pidfile.service), a live process of cg-pidfile.service'),
    # A lock file in use stays under its holder, whatever pid it names.
    (300, None, (412,), KEEP, 'is locked by pid 412; left alone'),
    (300, STRANGER, (412, 412, 9), KEEP, 'is locked by pid 9, 412; left alone'),
    (None, None, (), KEEP, 'holds no pid; left alone'),
    (None, STRANGER, (), KEEP, 'holds no pid; left alone'),
], ids=['dead', 'stranger', 'session', 'user-unit-namesake', 'container', 'own', 'locked-dead', 'locked-stranger',
        'no-pid', 'no-pid-live'])
def test_pid_file_verdict(pid, process, lockers, verdict, reason):
    assert pid_file_verdict(pid, process, UNIT, lockers) == (verdict, reason)


def test_receipt_quotes_what_the_process_controls():
    line = pid_file_receipt('removed-stale-pid-file', '/run/x.pid', 300, dict(STRANGER, cmdline=['sleep', '600 x="y"\n']),
                            'pid 300 is now sleep')
    assert line == ('removed-stale-pid-file path=/run/x.pid pid=300 user=nobody unit=cg-stranger.service '
                    'reason="pid 300 is now sleep" cmdline="sleep 600 x=\\"y\\"\\n"')
    assert '\n' not in line
    assert pid_file_receipt('pid-file-left-alone', '/run/x.pid', None, None, 'why') == (
        'pid-file-left-alone path=/run/x.pid pid=- user=- unit=- reason="why"')


# The gatherer on a fixture /proc: the pids named in the files below exist there or not.

def make_process(proc, pid, cgroup, state='S', uid=0, name='sleep', cmdline=b'sleep\x00600\x00'):
    base = proc / str(pid)
    base.mkdir(parents=True)
    (base / 'status').write_text(u'Name:\t%s\nState:\t%s\nPPid:\t1\nUid:\t%d\t%d\t%d\t%d\n' % (name, state, uid, uid, uid, uid))
    (base / 'stat').write_text(u'%d (%s) %s 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0\n' % (pid, name, state))
    (base / 'cgroup').write_text(u'0::%s\n' % cgroup)
    (base / 'comm').write_text(u'%s\n' % name)
    (base / 'cmdline').write_bytes(cmdline)
    return base


@pytest.fixture
def host(tmp_path):
    """A fixture /proc (PID 1, the unit's own process 300, a stranger 400, a zombie 500) and a directory of PID files."""
    proc = tmp_path / 'proc'
    make_process(proc, 1, '/init.scope', name='systemd', cmdline=b'/sbin/init\x00')
    make_process(proc, 300, '/system.slice/cg-pidfile.service', name='app', cmdline=b'/usr/local/bin/app\x00')
    make_process(proc, 400, '/system.slice/cg-stranger.service')
    make_process(proc, 500, '/system.slice/cg-stranger.service', state='Z')
    (proc / 'locks').write_text(u'')
    run = tmp_path / 'run'
    run.mkdir()
    return {'proc': str(proc), 'run': run, 'tmp': tmp_path}


def journal():
    return Journal('collision-guard-evict', stream=io.StringIO(), environ={})


@pytest.mark.parametrize('content, removed, event, reason', [
    (u'999\n', True, 'removed-stale-pid-file', 'pid 999 is dead'),
    (u'500\n', True, 'removed-stale-pid-file', 'pid 500 is dead'),
    (u'400\n', True, 'removed-stale-pid-file',
     'pid 400 is now sleep (user root, unit cg-stranger.service), outside cg-pidfile.service'),
    (u'1\n', True, 'removed-stale-pid-file', 'pid 1 is now systemd (user root, unit init.scope), outside cg-pidfile.service'),
    (u'300\n', False, 'pid-file-kept', 'pid 300 is app (user root, unit cg-pidfile.service), a live process of cg-pidfile.service'),
    (u'', False, 'pid-file-kept', 'holds no pid; left alone'),
    (u'not a pid\n', False, 'pid-file-kept', 'holds no pid; left alone'),
], ids=['dead', 'zombie', 'stranger', 'pid-1', 'own', 'empty', 'garbage'])
def test_clear_stale_pid_files_on_a_fixture_host(host, content, removed, event, reason):
    path = host['run'] / 'app.pid'
    path.write_text(content)
    log = journal()
    assert clear_stale_pid_files([str(path)], UNIT, log, proc=host['proc']) == ([str(path)] if removed else [])
    assert path.exists() is not removed
    assert len(log.lines) == 1
    assert log.lines[0].startswith('%s path=%s ' % (event, path))
    assert 'reason="%s"' % reason in log.lines[0]


def test_a_stranger_is_named_in_the_receipt_and_left_alive(host):
    path = host['run'] / 'app.pid'
    path.write_text(u'400\n')
    log = journal()
    clear_stale_pid_files([str(path)], UNIT, log, proc=host['proc'])
    assert 'pid=400 user=root unit=cg-stranger.service' in log.lines[0]
    assert log.lines[0].endswith('cmdline="sleep 600"')
    assert os.path.isdir(os.path.join(host['proc'], '400'))


def test_a_dry_run_removes_nothing(host):
    path = host['run'] / 'app.pid'
    path.write_text(u'999\n')
    log = journal()
    assert clear_stale_pid_files([str(path)], UNIT, log, dry_run=True, proc=host['proc']) == []
    assert path.exists()
    assert log.lines[0].startswith('would-remove-stale-pid-file ')


def test_a_missing_file_says_nothing(host):
    log = journal()
    assert clear_stale_pid_files([str(host['run'] / 'none.pid')], UNIT, log, proc=host['proc']) == []
    assert log.lines == []


def test_a_symlink_is_never_followed(host):
    # A root-only file that names a dead pid, and a link to it where the PID file should be.
    target = host['tmp'] / 'important'
    target.write_text(u'999\n')
    link = host['run'] / 'app.pid'
    os.symlink(str(target), str(link))
    log = journal()
    assert clear_stale_pid_files([str(link)], UNIT, log, proc=host['proc']) == []
    assert target.read_text() == u'999\n'
    assert os.path.islink(str(link))
    assert log.lines[0].startswith('pid-file-left-alone path=%s ' % link)
    assert 'is a symbolic link to' in log.lines[0]
    # The control: the same content as a plain file at that path is removed.
    os.unlink(str(link))
    link.write_text(u'999\n')
    assert clear_stale_pid_files([str(link)], UNIT, journal(), proc=host['proc']) == [str(link)]


def test_a_link_in_a_directory_another_account_can_write_is_not_followed(host):
    shared = host['tmp'] / 'shared'
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    real = host['tmp'] / 'real'
    real.mkdir()
    (real / 'app.pid').write_text(u'999\n')
    os.symlink(str(real), str(shared / 'dir'))
    log = journal()
    assert clear_stale_pid_files([str(shared / 'dir' / 'app.pid')], UNIT, log, proc=host['proc']) == []
    assert (real / 'app.pid').exists()
    assert 'a symbolic link in a directory that another account can write' in log.lines[0]


@pytest.mark.parametrize('make', [lambda path: os.mkfifo(str(path)), lambda path: path.mkdir()], ids=['fifo', 'directory'])
def test_a_special_file_is_left_alone(host, make):
    path = host['run'] / 'app.pid'
    make(path)
    log = journal()
    assert clear_stale_pid_files([str(path)], UNIT, log, proc=host['proc']) == []
    assert path.exists()
    assert 'not a regular file' in log.lines[0]


def test_a_locked_file_is_kept(host):
    path = host['run'] / 'app.lock'
    path.write_text(u'999\n')
    info = os.stat(str(path))
    (host['tmp'] / 'proc' / 'locks').write_text(u'1: FLOCK  ADVISORY  WRITE 400 %02x:%02x:%d 0 EOF\n' % (
        os.major(info.st_dev), os.minor(info.st_dev), info.st_ino))
    log = journal()
    assert clear_stale_pid_files([str(path)], UNIT, log, proc=host['proc']) == []
    assert path.exists()
    assert 'reason="is locked by pid 400; left alone"' in log.lines[0]


def test_a_file_replaced_while_it_was_judged_is_left(host):
    path = host['run'] / 'app.pid'
    path.write_text(u'999\n')
    verdict, dummy_reason, dummy_pid, dummy_process, dir_fd, name, file_stat = check_pid_file(str(path), UNIT, host['proc'])
    try:
        assert verdict == REMOVE
        # Made while the old one still exists, so it cannot get its inode.
        (host['run'] / 'new').write_text(u'999\n')
        os.replace(str(host['run'] / 'new'), str(path))
        assert remove_entry(dir_fd, name, file_stat) is False
    finally:
        os.close(dir_fd)
    assert path.exists()


def test_the_helper_clears_pid_files_before_it_looks_at_ports(host, monkeypatch):
    path = host['run'] / 'app.pid'
    path.write_text(u'999\n')
    # No socket holds the port: the helper ends without reading the registry.
    monkeypatch.setattr(_eviction, 'read_holders', lambda targets, proc: [])
    log = journal()
    options = _eviction.parse_arguments(['--pid-file', str(path), '--pid-file=%s' % (host['run'] / 'b.pid'), UNIT, '8783/tcp'])
    assert options['pid_files'] == [str(path), str(host['run'] / 'b.pid')]
    assert _eviction.run(options, log, proc=host['proc']) == _eviction.EXIT_FREE
    assert not path.exists()
    assert log.lines[0].startswith('removed-stale-pid-file path=%s pid=999 ' % path)


@pytest.mark.parametrize('bad', ['run/x.pid', '/run/x y.pid', '/run/../etc/shadow', '/proc/1/stat'])
def test_the_helper_refuses_a_bad_pid_file_argument(host, bad):
    log = journal()
    options = _eviction.parse_arguments(['--pid-file', bad, UNIT, '8783/tcp'])
    assert _eviction.run(options, log, proc=host['proc']) == _eviction.EXIT_USAGE
    assert '--pid-file %r' % bad in log.lines[0]
