# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import sqlite3
import time

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _sqlite
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._sqlite import (
    busy_warning,
    database_uri,
    decide,
    header_mode,
    holders_of,
    inspect_database,
    journal_diff,
    mount_holding,
    normalise_sqlite,
    parse_mountinfo,
    plan_database,
    sqlite_problems,
    switch_journal_mode,
)

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')

# A host with an NFS export on /srv/nfs, a local disk and a container's overlay mounted below it, a CIFS share,
# a stacked mount on /data and a mount point with a space (written \040 by the kernel).
MOUNTINFO = """\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
40 27 0:45 / /srv/nfs rw,relatime shared:30 - nfs4 fileserver:/export/app rw,vers=4.2,rsize=1048576,wsize=1048576
41 40 254:17 / /srv/nfs/local rw,relatime shared:31 - ext4 /dev/vdb1 rw
42 40 0:52 / /srv/nfs/containers/web/merged rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
43 27 0:53 / /mnt/share rw,relatime shared:32 - cifs //nas/share rw,vers=3.1.1,cache=strict
44 27 254:33 / /data rw,relatime shared:33 - ext4 /dev/vdc1 rw
45 44 0:54 / /data rw,relatime shared:34 - nfs nas:/data rw,vers=3
46 27 254:49 / /media/backup\\040disk ro,relatime shared:35 - ext4 /dev/vdd1 ro
47 27 0:55 / /srv/fuse rw,nosuid,nodev,relatime shared:36 master:2 - fuse.sshfs user@host:/srv rw,user_id=0
"""


def fixture_bytes(name):
    with open(os.path.join(FIXTURES, name), 'rb') as handle:
        return handle.read()


def header_of(path):
    with open(str(path), 'rb') as handle:
        return handle.read(100)


def make_database(path, mode='delete'):
    connection = sqlite3.connect(str(path), isolation_level=None)
    connection.execute('CREATE TABLE t (x)')
    connection.execute('INSERT INTO t VALUES (1)')
    connection.execute('PRAGMA journal_mode=%s' % mode)
    connection.close()
    return path


def plan(path, wanted='wal'):
    return plan_database(str(path), wanted, parse_mountinfo(MOUNTINFO.replace('/srv/nfs', '/nowhere')))


@pytest.mark.parametrize('header, mode', [
    (fixture_bytes('sqlite_wal_header.bin'), 'wal'),
    (fixture_bytes('sqlite_rollback_header.bin'), 'delete'),
    (fixture_bytes('sqlite_wal_header.bin')[:50], None),
    (b'PK\x03\x04' + b'\0' * 96, None),
    (b'', None),
], ids=['wal', 'rollback-is-delete', 'short', 'zip', 'empty'])
def test_header_mode(header, mode):
    assert header_mode(header) == mode


def test_parse_mountinfo():
    mounts = parse_mountinfo(MOUNTINFO + 'a short line\n')
    assert [(mount['mount_point'], mount['fstype'], mount['read_only']) for mount in mounts] == [
        ('/proc', 'proc', False), ('/', 'ext4', False), ('/srv/nfs', 'nfs4', False), ('/srv/nfs/local', 'ext4', False),
        ('/srv/nfs/containers/web/merged', 'overlay', False), ('/mnt/share', 'cifs', False), ('/data', 'ext4', False),
        ('/data', 'nfs', False), ('/media/backup disk', 'ext4', True), ('/srv/fuse', 'fuse.sshfs', False),
    ]
    assert mounts[2]['source'] == 'fileserver:/export/app'


@pytest.mark.parametrize('path, fstype, network', [
    ('/srv/nfs/app.db', 'nfs4', True),
    ('/srv/nfs', 'nfs4', True),
    ('/mnt/share/data/app.db', 'cifs', True),
    ('/srv/fuse/app.db', 'fuse.sshfs', True),
    ('/data/app.db', 'nfs', True),
    ('/srv/nfs/local/app.db', 'ext4', False),
    ('/srv/nfs/localx/app.db', 'nfs4', True),
    ('/srv/nfs/containers/web/merged/var/lib/app.db', 'overlay', False),
    ('/srv/app/app.db', 'ext4', False),
    ('/media/backup disk/app.db', 'ext4', False),
], ids=['nfs4', 'mount-point-itself', 'cifs', 'sshfs', 'stacked-nfs-on-top', 'ext4-below-nfs', 'sibling-name-of-a-mount',
        'overlay-below-nfs', 'root', 'escaped-space'])
def test_mount_holding_and_network_filesystems(path, fstype, network):
    mount = mount_holding(path, parse_mountinfo(MOUNTINFO))
    assert mount['fstype'] == fstype
    assert (_sqlite.network_filesystem_problem(mount) is not None) is network


def test_the_network_refusal_says_where_and_why():
    mount = mount_holding('/srv/nfs/app.db', parse_mountinfo(MOUNTINFO))
    with pytest.raises(CollisionGuardError) as raised:
        decide('wal', 'delete', mount)
    assert str(raised.value) == (
        'is on nfs4, a network file system (fileserver:/export/app, mounted on /srv/nfs): WAL needs the -shm '
        'shared-memory index that every process opening the database maps, which a network file system does not '
        'share between hosts, and its locks are unreliable; see https://www.sqlite.org/wal.html')


MOUNTS = parse_mountinfo(MOUNTINFO)
LOCAL = mount_holding('/srv/app/app.db', MOUNTS)
NFS = mount_holding('/srv/nfs/app.db', MOUNTS)
READ_ONLY = mount_holding('/media/backup disk/app.db', MOUNTS)


@pytest.mark.parametrize('wanted, mode, mount, state', [
    ('wal', 'delete', LOCAL, 'convert'),
    ('wal', 'wal', LOCAL, 'current'),
    ('delete', 'wal', LOCAL, 'convert'),
    ('delete', 'delete', LOCAL, 'current'),
    ('wal', None, LOCAL, 'absent'),
    ('wal', None, NFS, 'absent'),
    ('delete', 'wal', NFS, 'convert'),
    ('delete', 'delete', NFS, 'current'),
    ('wal', 'wal', READ_ONLY, 'current'),
], ids=['to-wal', 'already-wal', 'back-to-delete', 'already-delete', 'missing', 'missing-on-nfs',
        'back-to-delete-on-nfs-is-the-safe-way', 'delete-on-nfs', 'read-only-but-current'])
def test_decide(wanted, mode, mount, state):
    assert decide(wanted, mode, mount) == state


@pytest.mark.parametrize('wanted, mode, mount, problem', [
    ('wal', 'delete', NFS, 'is on nfs4, a network file system'),
    ('wal', 'wal', NFS, 'is on nfs4, a network file system'),
    ('wal', 'delete', mount_holding('/mnt/share/app.db', MOUNTS), 'is on cifs, a network file system (//nas/share'),
    ('wal', 'delete', READ_ONLY, 'is on a read-only mount (ext4 on /media/backup disk)'),
    ('wal', 'delete', None, 'is on a file system that cannot be told: /proc/self/mountinfo cannot be read'),
], ids=['nfs', 'already-wal-on-nfs', 'cifs', 'read-only', 'no-mountinfo'])
def test_decide_refuses(wanted, mode, mount, problem):
    with pytest.raises(CollisionGuardError) as raised:
        decide(wanted, mode, mount)
    assert str(raised.value).startswith(problem)


@pytest.mark.parametrize('value', [
    None,
    [],
    [{'path': '/srv/app/data/app.db'}],
    [{'path': '/srv/app/app.db', 'journal_mode': 'wal'}, {'path': '/srv/app/other.db', 'journal_mode': 'delete'}],
    [{'path': '/srv/app/app.db', 'journal_mode': None}],
    [{'path': '/srv/caf\u00e9/my app.db'}],
], ids=['none', 'empty', 'default-mode', 'both-modes', 'null-mode', 'unicode-and-space'])
def test_sqlite_problems_accepts(value):
    assert sqlite_problems(value) == []


@pytest.mark.parametrize('value, problems', [
    ({'path': '/srv/app.db'}, ["collision_guard_sqlite: {'path': '/srv/app.db'} is not a list of databases, each with path and journal_mode"]),
    (['/srv/app.db'], ["collision_guard_sqlite[0]: '/srv/app.db' is not a mapping with path and journal_mode"]),
    ([{'path': '/a.db', 'mode': 'wal', 'owner': 'x'}], [
        "collision_guard_sqlite[0]: unknown key 'mode' (known keys: path, journal_mode)",
        "collision_guard_sqlite[0]: unknown key 'owner' (known keys: path, journal_mode)"]),
    ([{'journal_mode': 'wal'}], ['collision_guard_sqlite[0].path: missing']),
    ([{'path': 42}], ['collision_guard_sqlite[0].path: 42 is not a string']),
    ([{'path': ''}], ["collision_guard_sqlite[0].path: '' is empty"]),
    ([{'path': '/a.db'}, {'path': '/b.db'}, {'path': 'relative.db'}],
     ["collision_guard_sqlite[2].path: 'relative.db' is not an absolute path"]),
    ([{'path': '/srv/a\x00.db'}], ["collision_guard_sqlite[0].path: '/srv/a\\x00.db' holds the control character \\x00 at offset 6; "
                                   "a database path may hold printable characters only"]),
    ([{'path': '/srv/a\n.db'}], ["collision_guard_sqlite[0].path: '/srv/a\\n.db' holds the control character \\n at offset 6; "
                                 "a database path may hold printable characters only"]),
    ([{'path': '/srv/\u202eapp.db'}], ["collision_guard_sqlite[0].path: '/srv/\\u202eapp.db' holds the control character "
                                       "\\u202e at offset 5; a database path may hold printable characters only"]),
    ([{'path': '/srv/../etc/app.db'}], ["collision_guard_sqlite[0].path: '/srv/../etc/app.db' has a \".\" or \"..\" component; "
                                        "write the path without them"]),
    ([{'path': '/srv/./app.db'}], ["collision_guard_sqlite[0].path: '/srv/./app.db' has a \".\" or \"..\" component; "
                                   "write the path without them"]),
    ([{'path': '/srv//app.db'}], ["collision_guard_sqlite[0].path: '/srv//app.db' holds an empty component (\"//\"); write each "
                                  "path one way, so a database is not listed twice"]),
    ([{'path': '/srv/app/'}], ["collision_guard_sqlite[0].path: '/srv/app/' ends with \"/\", so it names a directory, not a database file"]),
    ([{'path': '/srv/app.db-wal'}], ["collision_guard_sqlite[0].path: '/srv/app.db-wal' names one of the files SQLite keeps beside a "
                                     "database (-wal, -shm, -journal), not the database"]),
    ([{'path': '/' + 'a' * 4095}], ["collision_guard_sqlite[0].path: '/%s... (4098 characters) is longer than 4095 characters, the "
                                    "longest path the kernel takes" % ('a' * 298)]),
    ([{'path': '/a.db', 'journal_mode': 'WAL'}], ["collision_guard_sqlite[0].journal_mode: 'WAL' is not one of wal, delete"]),
    ([{'path': '/a.db', 'journal_mode': 'truncate'}], ["collision_guard_sqlite[0].journal_mode: 'truncate' is not one of wal, delete"]),
    ([{'path': '/a.db', 'journal_mode': True}], ["collision_guard_sqlite[0].journal_mode: True is not one of wal, delete"]),
    ([{'path': '/a.db', 'journal_mode': ['wal']}], ["collision_guard_sqlite[0].journal_mode: ['wal'] is not one of wal, delete"]),
    ([{'path': '/srv/app.db'}, {'path': '/b.db'}, {'path': '/srv/app.db', 'journal_mode': 'delete'}],
     ["collision_guard_sqlite[2].path: '/srv/app.db' is already listed at collision_guard_sqlite[0]; list each database once"]),
], ids=['not-a-list', 'entry-not-a-mapping', 'unknown-keys', 'path-missing', 'path-not-a-string', 'path-empty', 'relative',
        'nul', 'newline', 'bidi-override', 'dot-dot', 'dot', 'double-slash', 'trailing-slash', 'companion-file', 'too-long',
        'mode-upper-case', 'mode-unknown', 'mode-bool', 'mode-list', 'listed-twice'])
def test_sqlite_problems(value, problems):
    assert sqlite_problems(value) == problems


def test_sqlite_problems_lists_every_bad_value_where_it_came_from():
    problems = sqlite_problems([{'path': 'a.db'}, 7, {'path': '/b.db', 'journal_mode': 'off'}], where='hostvars[web1].sqlite')
    assert problems == [
        "hostvars[web1].sqlite[0].path: 'a.db' is not an absolute path",
        'hostvars[web1].sqlite[1]: 7 is not a mapping with path and journal_mode',
        "hostvars[web1].sqlite[2].journal_mode: 'off' is not one of wal, delete",
    ]


def test_normalise_sqlite():
    assert normalise_sqlite(None) == []
    assert normalise_sqlite([{'path': '/srv/a.db'}, {'path': '/srv/b.db', 'journal_mode': 'delete'},
                             {'path': '/srv/c.db', 'journal_mode': None}]) == [
        {'path': '/srv/a.db', 'journal_mode': 'wal'}, {'path': '/srv/b.db', 'journal_mode': 'delete'},
        {'path': '/srv/c.db', 'journal_mode': 'wal'}]
    with pytest.raises(CollisionGuardError) as raised:
        normalise_sqlite([{'path': 'a.db'}, {'path': '/b.db', 'journal_mode': 'off'}])
    assert raised.value.full_message() == (
        "collision_guard_sqlite has 2 bad value(s); no host was changed\n"
        "  - collision_guard_sqlite[0].path: 'a.db' is not an absolute path\n"
        "  - collision_guard_sqlite[1].journal_mode: 'off' is not one of wal, delete")


def test_busy_warning():
    assert busy_warning('/srv/app/app.db', 'delete', 'database is locked after 2000 ms',
                        ['writer.service (pid 812)', 'reader.service (pid 813)']) == (
        '/srv/app/app.db stays in delete mode: it is busy (database is locked after 2000 ms), held open by '
        'writer.service (pid 812), reader.service (pid 813); retry at the next run')
    assert busy_warning('/srv/app/app.db', 'wal', 'database is locked after 0 ms', []) == (
        '/srv/app/app.db stays in wal mode: it is busy (database is locked after 0 ms), and no process holding it '
        'open was found (one in a container is not seen); retry at the next run')


def test_holders_of_counts_the_companion_files():
    open_files = {
        '/srv/app/app.db': [{'pid': 812, 'name': 'python3', 'unit': 'writer.service'}],
        '/srv/app/app.db-journal': [{'pid': 812, 'name': 'python3', 'unit': 'writer.service'}],
        '/srv/app/app.db-wal': [{'pid': 813, 'name': 'python3', 'unit': 'reader.service'}],
        '/srv/app/app.db.bak': [{'pid': 900, 'name': 'cp', 'unit': None}],
    }
    assert holders_of('/srv/app/app.db', open_files) == ['reader.service (pid 813)', 'writer.service (pid 812)']
    assert holders_of('/srv/other.db', open_files) == []


def test_journal_diff():
    assert journal_diff('/srv/app.db', 'delete', 'wal') == {
        'before_header': '/srv/app.db', 'after_header': '/srv/app.db',
        'before': 'journal_mode: delete\n', 'after': 'journal_mode: wal\n'}


def test_database_uri_quotes_the_path():
    assert database_uri('/srv/my app/50%?#.db') == 'file:/srv/my%20app/50%25%3F%23.db?mode=rw'


# The gatherers, on real files.

@pytest.mark.parametrize('mode', ['delete', 'wal'])
def test_inspect_reads_the_mode_from_the_header(tmp_path, mode):
    path = make_database(tmp_path / 'app.db', mode)
    found = inspect_database(str(path))
    assert (found['mode'], found['real_path']) == (mode, str(path))
    assert found['identity'] == (os.stat(str(path)).st_dev, os.stat(str(path)).st_ino)


@pytest.mark.parametrize('relative', ['missing.db', 'no/such/directory/app.db'])
def test_inspect_a_missing_database(tmp_path, relative):
    assert inspect_database(str(tmp_path / relative))['mode'] is None


def _symlink(tmp_path):
    make_database(tmp_path / 'real.db')
    (tmp_path / 'app.db').symlink_to(tmp_path / 'real.db')


def _hard_link(tmp_path):
    make_database(tmp_path / 'real.db')
    os.link(str(tmp_path / 'real.db'), str(tmp_path / 'app.db'))


def _wal_link(tmp_path):
    make_database(tmp_path / 'app.db')
    (tmp_path / 'secret').write_bytes(b'root only\n')
    (tmp_path / 'app.db-wal').symlink_to(tmp_path / 'secret')


def _planted_directory_link(tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    (tmp_path / 'private').mkdir()
    make_database(tmp_path / 'private' / 'app.db')
    (shared / 'data').symlink_to(tmp_path / 'private')


@pytest.mark.parametrize('make, relative, problem', [
    (_symlink, 'app.db', 'is a symbolic link to %(tmp)s/real.db; root does not open databases through links'),
    (_hard_link, 'app.db', 'is a regular file with 2 hard links, so it is also another file'),
    (lambda tmp: os.mkfifo(str(tmp / 'app.db')), 'app.db', 'is a named pipe, not a regular file'),
    (lambda tmp: (tmp / 'app.db').mkdir(), 'app.db', 'is a directory, not a regular file'),
    (lambda tmp: (tmp / 'app.db').write_bytes(b'id,name\n1,app\n' * 20), 'app.db',
     'is not a SQLite database: it does not start with the 100-byte SQLite header'),
    (lambda tmp: (tmp / 'app.db').write_bytes(b''), 'app.db', 'is not a SQLite database: it is empty'),
    (_wal_link, 'app.db', 'its -wal file is a symbolic link, not a regular file; root does not open a database with such a companion file'),
    (_planted_directory_link, 'shared/data/app.db',
     '%(tmp)s/shared/data is a symbolic link in a directory that another account can write; root does not follow it'),
], ids=['symlink', 'hard-link', 'fifo', 'directory', 'not-sqlite', 'empty', 'wal-file-is-a-link', 'link-in-a-shared-directory'])
def test_inspect_refuses(tmp_path, make, relative, problem):
    make(tmp_path)
    with pytest.raises(CollisionGuardError) as raised:
        inspect_database(str(tmp_path / relative))
    assert str(raised.value) == problem % {'tmp': tmp_path}


def test_a_network_mount_from_mountinfo_refuses_a_real_database(tmp_path):
    path = make_database(tmp_path / 'app.db')
    mounts = parse_mountinfo(MOUNTINFO.replace('/srv/nfs', str(tmp_path)))
    with pytest.raises(CollisionGuardError) as raised:
        plan_database(str(path), 'wal', mounts)
    assert 'is on nfs4, a network file system (fileserver:/export/app, mounted on %s)' % tmp_path in str(raised.value)
    assert plan_database(str(path), 'delete', mounts)['state'] == 'current'


# Switching, with real sqlite3.

def test_a_rollback_database_goes_to_wal_and_keeps_its_rows(tmp_path):
    path = make_database(tmp_path / 'app.db')
    planned = plan(path)
    assert (planned['state'], planned['mode']) == ('convert', 'delete')
    assert switch_journal_mode(planned, 2000) == ('converted', 'wal', None)
    assert bytearray(header_of(path)[18:20]) == bytearray([2, 2])
    assert sqlite3.connect(str(path)).execute('SELECT x FROM t').fetchall() == [(1,)]
    assert plan(path)['state'] == 'current'


def test_a_wal_database_goes_back_to_delete(tmp_path):
    path = make_database(tmp_path / 'app.db', 'wal')
    assert switch_journal_mode(plan(path, 'delete'), 2000) == ('converted', 'delete', None)
    assert bytearray(header_of(path)[18:20]) == bytearray([1, 1])


def test_a_wal_database_is_current(tmp_path):
    path = make_database(tmp_path / 'app.db', 'wal')
    assert plan(path)['state'] == 'current'


def test_a_missing_database_is_absent_and_never_created(tmp_path):
    path = tmp_path / 'app.db'
    planned = plan(path)
    assert (planned['state'], planned['mode']) == ('absent', None)
    assert switch_journal_mode(dict(planned, mode='delete', identity=(0, 0)), 2000) == ('absent', None, None)
    assert list(tmp_path.iterdir()) == []


def test_a_database_removed_before_the_switch_is_not_created(tmp_path):
    path = make_database(tmp_path / 'app.db')
    planned = plan(path)
    path.unlink()
    assert switch_journal_mode(planned, 2000) == ('absent', None, None)
    assert list(tmp_path.iterdir()) == []


def test_an_exclusive_lock_makes_it_busy_within_the_timeout(tmp_path):
    path = make_database(tmp_path / 'app.db')
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute('BEGIN EXCLUSIVE')
    try:
        started = time.time()
        state = switch_journal_mode(plan(path), 50)
        waited = time.time() - started
    finally:
        holder.execute('ROLLBACK')
        holder.close()
    assert state == ('busy', 'delete', 'database is locked after 50 ms')
    assert 0.04 < waited < 1.5
    assert bytearray(header_of(path)[18:20]) == bytearray([1, 1])


def test_going_back_to_delete_is_busy_while_another_connection_is_open(tmp_path):
    path = make_database(tmp_path / 'app.db', 'wal')
    reader = sqlite3.connect(str(path))
    reader.execute('SELECT x FROM t').fetchall()
    try:
        assert switch_journal_mode(plan(path, 'delete'), 0) == ('busy', 'wal', 'database is locked after 0 ms')
    finally:
        reader.close()


class _Keeper(object):
    """A connection whose journal_mode pragma answers the old mode, as SQLite does inside a transaction."""

    def __init__(self, connection):
        self.connection = connection

    def execute(self, dummy_sql):
        return self.connection.execute('PRAGMA journal_mode')

    def close(self):
        self.connection.close()


def test_a_pragma_that_keeps_the_old_mode_is_busy(tmp_path):
    path = make_database(tmp_path / 'app.db')
    state = switch_journal_mode(plan(path), 100, connect=lambda *args, **kwargs: _Keeper(sqlite3.connect(*args, **kwargs)))
    assert state == ('busy', 'delete', 'SQLite kept delete mode, as it does while another connection uses the database')


def test_a_database_swapped_before_sqlite_opens_it_is_left_alone(tmp_path):
    path = make_database(tmp_path / 'app.db')
    other = make_database(tmp_path / 'other.db')
    planned = plan(path)

    def swap_then_connect(*args, **kwargs):
        os.rename(str(other), str(path))
        return sqlite3.connect(*args, **kwargs)

    # The switch looks again just before it connects: the rename lands between that look and the open.
    with pytest.raises(CollisionGuardError) as raised:
        switch_journal_mode(planned, 100, connect=swap_then_connect)
    assert str(raised.value) == 'was replaced by another file while it was opened; it is left as it is'
    assert bytearray(header_of(path)[18:20]) == bytearray([1, 1])


def test_a_refusal_found_at_the_switch_is_raised(tmp_path):
    path = make_database(tmp_path / 'real.db')
    planned = plan(path)
    planned['path'] = str(tmp_path / 'app.db')
    (tmp_path / 'app.db').symlink_to(path)
    with pytest.raises(CollisionGuardError, match='is a symbolic link'):
        switch_journal_mode(planned, 100)
    assert bytearray(header_of(path)[18:20]) == bytearray([1, 1])


@pytest.mark.skipif(os.geteuid() != 0, reason='SQLite hands its files to the database owner only when it runs as root')
def test_as_root_the_wal_and_shm_files_belong_to_the_database_owner(tmp_path):
    nobody = pwd.getpwnam('nobody')
    path = make_database(tmp_path / 'app.db')
    os.chown(str(path), nobody.pw_uid, nobody.pw_gid)
    application = sqlite3.connect(str(path))
    application.execute('SELECT x FROM t').fetchall()
    try:
        assert switch_journal_mode(plan(path), 2000)[0] == 'converted'
        # The application's next read opens the WAL; its open connection keeps -wal and -shm in place.
        application.execute('SELECT x FROM t').fetchall()
        owners = dict((suffix, os.lstat(str(path) + suffix).st_uid) for suffix in ('-wal', '-shm'))
    finally:
        application.close()
    assert owners == {'-wal': nobody.pw_uid, '-shm': nobody.pw_uid}
