# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""SQLite journal modes: the list of databases, ``collision_guard_sqlite``, and switching each to WAL or back.

A database is looked at first, without changing anything, and every refusal is known before any database
is switched. The functions that judge take plain data and are tested on fixtures; the gatherers at the end
read the host and open the databases, as root, in directories other accounts may control. So the path is
never followed through a link planted there, and the file SQLite opens is checked to be the one looked at.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import sqlite3
import stat
from urllib.parse import quote

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._file_usage import (
    COMPANION_SUFFIXES,
    SQLITE_HEADER_SIZE,
    owners_label,
    sqlite_journal_mode,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import (
    open_directory,
    plain_file_problem,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import printable, shown

JOURNAL_MODES = ('wal', 'delete')
DEFAULT_JOURNAL_MODE = 'wal'
ENTRY_KEYS = ('path', 'journal_mode')
DEFAULT_BUSY_TIMEOUT_MS = 2000
BUSY_TIMEOUT_MS_MAX = 60000
# The kernel's PATH_MAX, with its terminating NUL.
PATH_MAX = 4095
WAL_DOCS = 'https://www.sqlite.org/wal.html'
# File systems that hosts share. WAL keeps its index in the -shm file, memory that every process opening
# the database maps, which these do not share between hosts, and their locks are unreliable.
NETWORK_FILESYSTEMS = (
    'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', '9p', 'afs', 'coda', 'ncpfs',
    'ceph', 'fuse.ceph', 'fuse.ceph-fuse', 'glusterfs', 'fuse.glusterfs', 'lustre', 'gpfs', 'beegfs',
    'ocfs2', 'gfs2', 'orangefs', 'davfs', 'fuse.sshfs', 'fuse.s3fs', 'fuse.rclone', 'fuse.gcsfuse',
    'fuse.juicefs',
)
MOUNTINFO = '/proc/self/mountinfo'
_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
_OCTAL_ESCAPE = re.compile(r'\\([0-7]{3})')


# Validation of collision_guard_sqlite, on the controller.

def path_problem(value):
    """Why ``value`` cannot name a database file, or None."""
    if not isinstance(value, str):
        return 'is not a string'
    if not value:
        return 'is empty'
    for offset, char in enumerate(value):
        # printable() leaves tabs and newlines, which free text may hold and a path may not.
        if char in '\t\n' or printable(char) != char:
            return ('holds the control character %s at offset %d; a database path may hold printable characters only'
                    % (repr(char)[1:-1], offset))
    if not value.startswith('/'):
        return 'is not an absolute path'
    if len(value) > PATH_MAX:
        return 'is longer than %d characters, the longest path the kernel takes' % PATH_MAX
    if value.endswith('/'):
        return 'ends with "/", so it names a directory, not a database file'
    parts = value[1:].split('/')
    if '' in parts:
        return 'holds an empty component ("//"); write each path one way, so a database is not listed twice'
    if '.' in parts or '..' in parts:
        return 'has a "." or ".." component; write the path without them'
    if value.endswith(COMPANION_SUFFIXES):
        return 'names one of the files SQLite keeps beside a database (%s), not the database' % ', '.join(COMPANION_SUFFIXES)
    return None


def sqlite_problems(value, where='collision_guard_sqlite'):
    """Every bad value of a list of databases, one line each, naming where it is; empty when all is well."""
    if value is None:
        return []
    if not isinstance(value, list):
        return ['%s: %s is not a list of databases, each with path and journal_mode' % (where, shown(value))]
    problems = []
    listed = {}
    for index, entry in enumerate(value):
        here = '%s[%d]' % (where, index)
        if not isinstance(entry, dict):
            problems.append('%s: %s is not a mapping with path and journal_mode' % (here, shown(entry)))
            continue
        for key in sorted(set(entry) - set(ENTRY_KEYS), key=shown):
            problems.append('%s: unknown key %s (known keys: %s)' % (here, shown(key), ', '.join(ENTRY_KEYS)))
        if 'path' not in entry:
            problems.append('%s.path: missing' % here)
        else:
            path = entry['path']
            problem = path_problem(path)
            if problem:
                problems.append('%s.path: %s %s' % (here, shown(path), problem))
            elif path in listed:
                problems.append('%s.path: %s is already listed at %s[%d]; list each database once'
                                % (here, shown(path), where, listed[path]))
            else:
                listed[path] = index
        mode = entry.get('journal_mode')
        if mode is not None and (not isinstance(mode, str) or mode not in JOURNAL_MODES):
            problems.append('%s.journal_mode: %s is not one of %s' % (here, shown(mode), ', '.join(JOURNAL_MODES)))
    return problems


def normalise_sqlite(value, where='collision_guard_sqlite'):
    """The databases as ``{path, journal_mode}``, the mode defaulted to wal; CollisionGuardError lists every bad value."""
    problems = sqlite_problems(value, where)
    if problems:
        raise CollisionGuardError('%s has %d bad value(s); no host was changed' % (where, len(problems)), problems)
    return [{'path': entry['path'], 'journal_mode': entry.get('journal_mode') or DEFAULT_JOURNAL_MODE}
            for entry in value or []]


# Judging a database, from plain data.

def header_mode(header):
    """``wal`` or ``delete`` from a database's first 100 bytes (rollback is reported as delete), None when not SQLite."""
    mode = sqlite_journal_mode(header)
    return 'delete' if mode == 'rollback' else mode


def _unescape(field):
    """A mountinfo path field with its octal escapes (``\\040`` for a space) undone."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text):
    """The mounts of /proc/PID/mountinfo, in its order, each ``{mount_point, fstype, source, read_only}``."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(' ')
        if '-' not in fields[6:]:
            continue
        separator = fields.index('-', 6)
        if len(fields) < separator + 3:
            continue
        super_options = fields[separator + 3].split(',') if len(fields) > separator + 3 else []
        mounts.append({
            'mount_point': _unescape(fields[4]),
            'fstype': fields[separator + 1],
            'source': _unescape(fields[separator + 2]),
            'read_only': 'ro' in fields[5].split(',') or 'ro' in super_options,
        })
    return mounts


def mount_holding(path, mounts):
    """The mount that holds ``path`` (a real path): the longest mount point it lies under, the last one mounted when tied."""
    best = None
    for mount in mounts:
        point = mount['mount_point']
        if point == '/' or path == point or path.startswith(point.rstrip('/') + '/'):
            if best is None or len(point) >= len(best['mount_point']):
                best = mount
    return best


def network_filesystem_problem(mount):
    """Why a database on ``mount`` must not be in WAL mode, or None when the mount is local."""
    if mount is None:
        return 'is on a file system that cannot be told: %s cannot be read' % MOUNTINFO
    if mount['fstype'] not in NETWORK_FILESYSTEMS:
        return None
    return ('is on %s, a network file system (%s, mounted on %s): WAL needs the -shm shared-memory index that '
            'every process opening the database maps, which a network file system does not share between hosts, '
            'and its locks are unreliable; see %s' % (mount['fstype'], mount['source'], mount['mount_point'], WAL_DOCS))


def decide(wanted, mode, mount):
    """What a database in ``mode`` (None: missing) on ``mount`` needs to reach ``wanted``.

    Returns ``absent``, ``current`` or ``convert``; raises CollisionGuardError when it is refused. A
    database on a network file system is refused WAL, and may still go back to delete, the safe mode there.
    """
    if mode is None:
        return 'absent'
    if wanted == 'wal':
        problem = network_filesystem_problem(mount)
        if problem:
            raise CollisionGuardError(problem)
    if mode == wanted:
        return 'current'
    if mount is not None and mount['read_only']:
        raise CollisionGuardError('is on a read-only mount (%s on %s), so its journal mode cannot change'
                                  % (mount['fstype'], mount['mount_point']))
    return 'convert'


def is_busy(error):
    """Whether a sqlite3 error means another connection holds the database."""
    text = str(error).lower()
    return 'locked' in text or 'busy' in text


def busy_warning(path, mode, reason, holders):
    """The warning for a database left in ``mode`` because it is busy, naming who holds it open."""
    if holders:
        held = 'held open by %s' % ', '.join(holders)
    else:
        held = 'and no process holding it open was found (one in a container is not seen)'
    return '%s stays in %s mode: it is busy (%s), %s; retry at the next run' % (path, mode, reason, held)


def journal_diff(path, before, after):
    return {'before_header': path, 'after_header': path,
            'before': 'journal_mode: %s\n' % before, 'after': 'journal_mode: %s\n' % after}


def holders_of(real_path, open_files):
    """``unit (pid N)`` labels of the processes that have the database or its companion files open."""
    holders = []
    for path in [real_path] + [real_path + suffix for suffix in COMPANION_SUFFIXES]:
        holders.extend(open_files.get(path, []))
    return owners_label(holders)


# Gatherers: the only part of this file that reads the host or opens a database.

def read_mounts(path=MOUNTINFO):
    """This process's mounts, or None when they cannot be read."""
    try:
        with open(path, 'rb') as handle:
            return parse_mountinfo(handle.read().decode('utf-8', 'surrogateescape'))
    except (IOError, OSError):
        return None


def _descriptor_path(fd):
    """The path the kernel knows an open directory by, or None."""
    try:
        path = os.readlink('/proc/self/fd/%d' % fd)
    except OSError:
        return None
    return path if path.startswith('/') and not path.endswith(' (deleted)') else None


def _read_header(dir_fd, name):
    """The first 100 bytes of ``name`` in ``dir_fd``, opened without following a link, and its stat."""
    # O_NONBLOCK: a named pipe swapped in meanwhile must not hang the read; fstat refuses it below.
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC, dir_fd=dir_fd)
    try:
        opened = os.fstat(fd)
        problem = plain_file_problem(opened)
        if problem:
            raise CollisionGuardError(problem)
        header = os.read(fd, SQLITE_HEADER_SIZE)
    finally:
        os.close(fd)
    return header, opened


def _companion_problem(dir_fd, name):
    """Why a -wal, -shm or -journal file beside the database must stop root from opening it, or None."""
    for suffix in COMPANION_SUFFIXES:
        try:
            entry = os.stat(name + suffix, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as error:
            if error.errno == errno.ENOENT:
                continue
            return 'its %s file cannot be looked at: %s' % (suffix, os.strerror(error.errno))
        problem = plain_file_problem(entry)
        if problem:
            return 'its %s file %s; root does not open a database with such a companion file' % (suffix, problem)
    return None


def inspect_database(path):
    """Look at a database without changing anything.

    Returns ``{path, real_path, mode, identity}``, ``mode`` being ``wal``, ``delete`` or None when the
    database (or its directory) is missing. Raises CollisionGuardError saying why root must not open it.
    """
    directory, name = os.path.split(path)
    missing = {'path': path, 'real_path': path, 'mode': None, 'identity': None}
    try:
        dir_fd = open_directory(directory)
    except CollisionGuardError:
        if not os.path.exists(directory):
            return missing
        raise
    try:
        real_path = os.path.join(_descriptor_path(dir_fd) or os.path.realpath(directory), name)
        try:
            entry = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return missing
            raise CollisionGuardError('cannot be looked at: %s' % os.strerror(error.errno)) from error
        if stat.S_ISLNK(entry.st_mode):
            raise CollisionGuardError('is a symbolic link to %s; root does not open databases through links'
                                      % os.readlink(name, dir_fd=dir_fd))
        problem = plain_file_problem(entry)
        if problem:
            raise CollisionGuardError(problem)
        header, opened = _read_header(dir_fd, name)
        mode = header_mode(header)
        if mode is None:
            raise CollisionGuardError('is not a SQLite database: %s' % (
                'it is empty' if not header else 'it does not start with the %d-byte SQLite header' % SQLITE_HEADER_SIZE))
        problem = _companion_problem(dir_fd, name)
        if problem:
            raise CollisionGuardError(problem)
    finally:
        os.close(dir_fd)
    return {'path': path, 'real_path': real_path, 'mode': mode, 'identity': (opened.st_dev, opened.st_ino)}


def plan_database(path, wanted, mounts):
    """The inspection of one database, with ``wanted`` and its ``state``: absent, current or convert.

    Raises CollisionGuardError when the database is refused.
    """
    found = inspect_database(path)
    mount = mount_holding(found['real_path'], mounts) if mounts is not None else None
    return dict(found, wanted=wanted, state=decide(wanted, found['mode'], mount))


def _descriptors():
    """``{(fd, (device, inode))}`` of this process's open files, or None when /proc cannot tell."""
    try:
        names = os.listdir('/proc/self/fd')
    except OSError:
        return None
    found = set()
    for name in names:
        try:
            info = os.stat('/proc/self/fd/' + name)
        except OSError:
            # The descriptor that listed the directory, closed since.
            continue
        found.add((name, (info.st_dev, info.st_ino)))
    return found


def _opened_files(before):
    """The (device, inode) of the files this process opened since ``before``, or None when it cannot tell."""
    after = _descriptors()
    if before is None or after is None:
        return None
    return set(identity for dummy, identity in after - before)


def database_uri(real_path):
    """A read-write URI that never creates the database: SQLite opens an existing file or fails."""
    return 'file:%s?mode=rw' % quote(os.fsencode(real_path))


def switch_journal_mode(plan, busy_timeout_ms, connect=sqlite3.connect):
    """Switch a database planned by ``plan_database`` to its wanted mode, waiting at most ``busy_timeout_ms``.

    Returns ``(state, journal_mode, busy_reason)``: ``converted`` with the new mode, ``busy`` with the
    mode it keeps and why, or ``current``/``absent`` when it changed meanwhile. Raises
    CollisionGuardError for a refusal found now, or a failure other than a busy database.
    """
    wanted = plan['wanted']
    found = inspect_database(plan['path'])
    if found['mode'] is None:
        return 'absent', None, None
    if found['mode'] == wanted:
        return 'current', wanted, None
    before = _descriptors()
    try:
        connection = connect(database_uri(found['real_path']), uri=True, timeout=busy_timeout_ms / 1000.0,
                             isolation_level=None)
    except sqlite3.Error as error:
        if is_busy(error):
            return 'busy', found['mode'], '%s after %d ms' % (error, busy_timeout_ms)
        raise CollisionGuardError('cannot be opened: %s' % error) from error
    try:
        opened = _opened_files(before)
        if opened is not None and found['identity'] not in opened:
            raise CollisionGuardError('was replaced by another file while it was opened; it is left as it is')
        try:
            row = connection.execute('PRAGMA journal_mode=%s' % wanted.upper()).fetchone()
        except sqlite3.Error as error:
            if is_busy(error):
                return 'busy', found['mode'], '%s after %d ms' % (error, busy_timeout_ms)
            raise CollisionGuardError('PRAGMA journal_mode=%s failed: %s' % (wanted.upper(), error)) from error
    finally:
        connection.close()
    mode = str(row[0]).lower() if row else None
    if mode == wanted:
        return 'converted', wanted, None
    if mode == found['mode']:
        return 'busy', found['mode'], 'SQLite kept %s mode, as it does while another connection uses the database' % mode
    raise CollisionGuardError('PRAGMA journal_mode=%s answered %s' % (wanted.upper(), shown(mode)))
