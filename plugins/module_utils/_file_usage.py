# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Shared files and how each is protected: SQLite databases, locks, PID files, temp paths.

The functions that judge take plain data and are tested on fixtures; the
gatherers at the end read /proc and the file system.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import (
    fd_targets,
    process_describer,
    process_dirs,
    read_text,
)

SQLITE_MAGIC = b'SQLite format 3\x00'
SQLITE_HEADER_SIZE = 100
O_ACCMODE = 0o3
O_WRONLY = 0o1
O_RDWR = 0o2
O_APPEND = 0o2000
SHARED_TEMP_DIRS = ('/tmp', '/var/tmp')
COMPANION_SUFFIXES = ('-wal', '-shm', '-journal')
LOCK_SUFFIXES = ('.lock', '.lck')
PID_SUFFIX = '.pid'
# Seconds a process may seem to start after its PID file was written: btime is
# whole seconds, and some file systems keep coarse mtimes.
PID_FILE_CLOCK_TOLERANCE = 1.0
RISK_ORDER = {'critical': 0, 'medium': 1, 'low': 2}
_LOCK_LINE = re.compile(
    r'^\d+:\s+(?:->\s+)?(?P<kind>\S+)\s+(?P<mode>\S+)\s+(?P<access>\S+)\s+(?P<pid>-?\d+)\s+'
    r'(?P<major>[0-9a-f]+):(?P<minor>[0-9a-f]+):(?P<inode>\d+)\s')


def sqlite_journal_mode(header):
    """``wal`` or ``rollback`` for a SQLite header, None when the bytes are not SQLite.

    Header bytes 18 and 19 are the file format write and read versions:
    1 for the legacy rollback journal, 2 for WAL.
    """
    if len(header) < SQLITE_HEADER_SIZE or not header.startswith(SQLITE_MAGIC):
        return None
    write_version, read_version = bytearray(header[18:20])
    return 'wal' if (write_version, read_version) == (2, 2) else 'rollback'


def parse_proc_locks(text):
    """Parse /proc/locks into lock records with the device and inode they lock."""
    locks = []
    for line in text.splitlines():
        match = _LOCK_LINE.match(line)
        if not match:
            continue
        locks.append({
            'kind': match.group('kind'),
            'mode': match.group('mode'),
            'access': match.group('access'),
            'pid': int(match.group('pid')),
            'device': os.makedev(int(match.group('major'), 16), int(match.group('minor'), 16)),
            'inode': int(match.group('inode')),
            'blocked': '->' in line.split(':', 1)[1][:6],
        })
    return locks


def fdinfo_flags(text):
    """The open flags from /proc/PID/fdinfo/FD text (octal), or None."""
    for line in text.splitlines():
        if line.startswith('flags:'):
            return int(line.split()[1], 8)
    return None


def opened_for_writing(flags):
    return flags is not None and (flags & O_ACCMODE) in (O_WRONLY, O_RDWR)


def write_mode(flags):
    """``append``, ``write`` or None (read only), from open flags."""
    if not opened_for_writing(flags):
        return None
    return 'append' if flags & O_APPEND else 'write'


def parse_start_ticks(text):
    """Field 22 of /proc/PID/stat, when the process started in clock ticks since boot, or None.

    Field 2 is the command name in parentheses, which may itself hold spaces
    and ')'; the fields after it start after the last ')'.
    """
    end = text.rfind(')') if text else -1
    if end < 0:
        return None
    fields = text[end + 1:].split()
    # fields[0] is field 3 (state), so field 22 is fields[19].
    if len(fields) < 20 or not fields[19].isdigit():
        return None
    return int(fields[19])


def parse_boot_time(text):
    """``btime`` from /proc/stat: when the host booted, in seconds since the epoch, or None."""
    for line in (text or '').splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == 'btime' and parts[1].isdigit():
            return int(parts[1])
    return None


def process_start_time(start_ticks, boot_time, clock_ticks):
    """When a process started, in seconds since the epoch, or None when a part is unknown."""
    if start_ticks is None or boot_time is None or not clock_ticks or clock_ticks < 0:
        return None
    return boot_time + start_ticks / float(clock_ticks)


def _runs_declared_unit(process, declared_unit):
    """Whether the process belongs to the unit that declares the PID file as its PIDFile=."""
    return bool(declared_unit) and (process or {}).get('unit') == declared_unit


def pid_file_status(pid, process, written, started, declared_unit=None):
    """Judge a PID file: ``alive``, ``dead`` (stale) or ``reused`` (stale: another process has the pid).

    ``process`` is None when the pid does not exist, else a dict with at least
    ``unit`` (from its cgroup). ``written`` is the file's mtime and ``started``
    the process's start time, both in seconds since the epoch or None when
    unknown. ``declared_unit`` is the systemd unit whose PIDFile= is this file,
    or None.

    The pid is the file's own when it runs in the unit that declares the file.
    Otherwise a process can only have written the file if it was already
    running then: one that started after the file's mtime (beyond
    ``PID_FILE_CLOCK_TOLERANCE``) has taken a reused pid. Names are never
    compared: a program's name says nothing about which process wrote a file.
    Without both times there is no evidence of reuse, so the file counts as
    alive.
    """
    if pid is None or process is None:
        return 'dead'
    if _runs_declared_unit(process, declared_unit):
        return 'alive'
    if written is not None and started is not None and started > written + PID_FILE_CLOCK_TOLERANCE:
        return 'reused'
    return 'alive'


def parse_pid(text):
    """The pid in a PID file's text, or None when it holds none."""
    first = text.strip().split('\n', 1)[0].strip() if text else ''
    return int(first) if first.isdigit() and int(first) > 0 else None


def owners_label(holders):
    """'unit (pid N)' labels, one per distinct holder, sorted."""
    labels = set()
    for holder in holders:
        labels.add('%s (pid %s)' % (holder.get('unit') or holder.get('name') or '?', holder['pid']))
    return sorted(labels)


def _owner_key(holder):
    """Who is behind a process: its systemd unit, else its login session, else the process itself.

    Processes of one shell session or one service share files on purpose
    (a pipeline's output, a worker pool's log); only different owners collide.
    """
    if holder.get('unit'):
        return holder['unit']
    if holder.get('session'):
        return 'session %s' % holder['session']
    return 'pid %s' % holder['pid']


def _distinct_owners(holders):
    return set(_owner_key(holder) for holder in holders)


def assess_sqlite(path, mode, holders, companions):
    """A finding for one SQLite database."""
    owners = _distinct_owners(holders)
    if mode == 'wal':
        risk, protection = 'low', 'WAL journal'
        reason = 'WAL lets readers work beside one writer; writers still need busy_timeout'
    elif len(owners) > 1:
        risk, protection = 'critical', 'none'
        reason = ('rollback journal opened by %d owners: a writer locks out every reader and writer, '
                  'so the others fail with "database is locked"' % len(owners))
    else:
        risk, protection = 'medium', 'none'
        reason = 'rollback journal: a second process (cron job, agent, backup) would lock out the owner'
    return {
        'type': 'sqlite', 'path': path, 'journal_mode': mode, 'companions': companions,
        'holders': holders, 'owners': owners_label(holders), 'risk': risk, 'reason': reason,
        'protection': protection,
    }


def assess_lock(path, locks, holders):
    """A finding for one locked file (``locks`` non-empty) or a lock file nobody holds."""
    if locks:
        waiting = [lock for lock in locks if lock['blocked']]
        kinds = sorted(set(lock['kind'] for lock in locks))
        risk = 'medium' if waiting else 'low'
        reason = ('%d process(es) wait for the lock' % len(waiting)) if waiting else 'held, nobody waits'
        protection = '%s lock' % '/'.join(kinds)
    else:
        risk, protection = 'medium', 'none'
        reason = 'lock file that nobody holds: a stale lock a careful program may wait on forever'
    return {
        'type': 'lock', 'path': path, 'holders': holders, 'owners': owners_label(holders), 'risk': risk,
        'reason': reason, 'protection': protection,
        'lock_pids': sorted(set(lock['pid'] for lock in locks)),
    }


def describe_pid_owner(process):
    """What a process is, for a reason text: name, unit and command line, as far as known."""
    process = process or {}
    details = []
    if process.get('unit'):
        details.append('unit %s' % process['unit'])
    if process.get('cmdline'):
        command = ' '.join(process['cmdline'])
        details.append('command %s' % (command if len(command) <= 120 else command[:117] + '...'))
    name = process.get('name') or 'an unnamed process'
    return '%s (%s)' % (name, ', '.join(details)) if details else name


def assess_pid_file(path, pid, status, process, written=None, started=None, declared_unit=None):
    """A finding for one PID file, judged by ``pid_file_status`` with the same arguments."""
    if status == 'alive':
        risk = 'low'
        if _runs_declared_unit(process, declared_unit):
            reason = 'pid %s runs in %s, the unit that declares this file as its PIDFile' % (pid, declared_unit)
        elif written is not None and started is not None:
            reason = ('pid %s, %s, was already running when the file was last written'
                      % (pid, describe_pid_owner(process)))
        else:
            reason = ('pid %s, %s, is alive; its start time or the file\'s mtime is unknown, so a reused pid '
                      'cannot be told' % (pid, describe_pid_owner(process)))
    elif status == 'reused':
        risk = 'critical'
        later = ' %.0f s' % (started - written) if written is not None and started is not None else ''
        reason = ('pid %s is now %s, which started%s after the file was last written: whoever trusts this file '
                  'signals the wrong process' % (pid, describe_pid_owner(process), later))
    else:
        risk = 'medium'
        reason = ('pid %s is dead: a start script may refuse to start, or a new process may take the pid'
                  % pid if pid else 'the file holds no pid')
    return {
        'type': 'pidfile', 'path': path, 'pid': pid, 'status': status, 'stale': status != 'alive',
        'holders': [], 'owners': [], 'risk': risk, 'reason': reason,
        'protection': 'stale-PID check' if status == 'alive' else 'none',
    }


def assess_shared_path(path, holders, writers, kind):
    """A finding for a file or temp path used by two or more processes."""
    owners = _distinct_owners(holders)
    writing_owners = _distinct_owners(writers)
    if len(writing_owners) > 1 and any(writer['writing'] == 'write' for writer in writers):
        risk = 'critical'
        reason = 'written by %d owners at once: their writes overwrite each other' % len(writing_owners)
    elif len(writing_owners) > 1:
        risk = 'medium'
        reason = 'appended to by %d owners: their lines can interleave' % len(writing_owners)
    elif len(owners) > 1 and kind == 'temp':
        risk = 'medium'
        reason = 'fixed path in a shared temp directory used by %d owners; per-process temp dirs avoid it' % len(owners)
    else:
        risk = 'low'
        reason = 'used by %d processes of one owner' % len(set(holder['pid'] for holder in holders))
    return {
        'type': 'shared-' + kind, 'path': path, 'holders': holders, 'owners': owners_label(holders),
        'writers': owners_label(writers), 'risk': risk, 'reason': reason, 'protection': 'none',
    }


def sort_findings(findings):
    return sorted(findings, key=lambda finding: (RISK_ORDER[finding['risk']], finding['type'], finding['path']))


def in_shared_temp(path):
    return any(path == top or path.startswith(top + '/') for top in SHARED_TEMP_DIRS)


# Gatherers: the only part of this file that reads the host.

def _is_plain_path(target):
    return (target.startswith('/') and not target.endswith(' (deleted)')
            and not target.startswith(('/proc/', '/dev/', '/sys/', '/memfd:')))


def scan_open_files(describe, proc='/proc', skip_pids=()):
    """Map each regular path to the processes that have it open, or use it as cwd in a temp dir.

    ``describe(pid)`` returns a process's name and unit. Each holder is
    ``{pid, name, unit, writing, cwd}``, ``writing`` being ``write``,
    ``append`` or None. Processes in another mount namespace (containers)
    are left out: their paths are not this host's. Also returns whether
    every process could be read.
    """
    paths = {}
    complete = True
    own_mounts = _namespace(os.path.join(proc, 'self'))
    for pid, base in process_dirs(proc, skip_pids):
        try:
            targets = fd_targets(base)
        except (IOError, OSError):
            complete = False
            continue
        if own_mounts and _namespace(base) not in (own_mounts, None):
            continue
        seen = {}
        for fd, target in targets:
            if _is_plain_path(target):
                writing = write_mode(fdinfo_flags(read_text(os.path.join(base, 'fdinfo', fd)) or ''))
                seen[target] = seen.get(target) or writing
        try:
            cwd = os.readlink(os.path.join(base, 'cwd'))
        except (IOError, OSError):
            cwd = None
        if cwd and _is_plain_path(cwd) and in_shared_temp(cwd) and cwd not in SHARED_TEMP_DIRS:
            seen.setdefault(cwd, None)
        if not seen:
            continue
        who = describe(pid)
        for target, writing in seen.items():
            paths.setdefault(target, []).append({
                'pid': pid, 'name': who.get('name'), 'unit': who.get('unit'), 'session': who.get('session'),
                'user_manager': who.get('user_manager'), 'writing': writing, 'cwd': target == cwd,
            })
    return paths, complete


def _namespace(base):
    try:
        return os.readlink(os.path.join(base, 'ns', 'mnt'))
    except (IOError, OSError):
        return None


def walk_files(roots, max_depth, max_files, want):
    """Paths under ``roots`` (depth and count bounded) for which ``want(path)`` holds.

    Returns ``(paths, truncated)``. Symlinks are not followed.
    """
    found = []
    visited = 0
    for root in roots:
        root = root.rstrip('/') or '/'
        base_depth = root.count('/')
        for directory, subdirs, files in os.walk(root):
            if directory.count('/') - base_depth >= max_depth:
                subdirs[:] = []
            for name in sorted(files):
                visited += 1
                if visited > max_files:
                    return found, True
                path = os.path.join(directory, name)
                if not os.path.islink(path) and want(path):
                    found.append(path)
    return found, False


def read_sqlite_mode(path):
    header = read_text(path, 'rb', SQLITE_HEADER_SIZE)
    return sqlite_journal_mode(header) if header else None


def file_identity(path):
    try:
        info = os.stat(path)
    except (IOError, OSError):
        return None
    return (info.st_dev, info.st_ino)


def looks_like_database(path):
    """Whether a path may hold a SQLite database: a regular file big enough for the header."""
    if path.endswith(COMPANION_SUFFIXES + LOCK_SUFFIXES + (PID_SUFFIX,)):
        return False
    try:
        return os.path.isfile(path) and os.path.getsize(path) >= SQLITE_HEADER_SIZE
    except OSError:
        return False


def clock_ticks():
    """Clock ticks per second, the unit of /proc/PID/stat times, or None when unknown."""
    try:
        return os.sysconf('SC_CLK_TCK')
    except (AttributeError, ValueError, OSError):
        return None


def file_mtime(path):
    try:
        return os.stat(path).st_mtime
    except (IOError, OSError):
        return None


def _real_paths(pid_file_units):
    """``pid_file_units`` keyed by real path, so /var/run/x.pid matches /run/x.pid."""
    return dict((os.path.realpath(path), unit) for path, unit in (pid_file_units or {}).items())


def read_pid_file(path, describe, boot_time, ticks, pid_file_units, proc='/proc'):
    """The finding for one PID file: its pid, that process, and their times read from the host.

    ``pid_file_units`` maps real paths (see ``_real_paths``) to the unit whose PIDFile= each is.
    """
    written = file_mtime(path)
    pid = parse_pid(read_text(path, size=64) or '')
    process = describe(pid) if pid and os.path.exists(os.path.join(proc, str(pid))) else None
    started = None
    if process is not None:
        start_ticks = parse_start_ticks(read_text(os.path.join(proc, str(pid), 'stat')) or '')
        started = process_start_time(start_ticks, boot_time, ticks)
    declared_unit = pid_file_units.get(path) or pid_file_units.get(os.path.realpath(path))
    status = pid_file_status(pid, process, written, started, declared_unit)
    return assess_pid_file(path, pid, status, process, written, started, declared_unit)


def find_shared_files(paths, pid_file_paths, max_depth, max_files, skip_pids=(), proc='/proc', pid_file_units=None):
    """Every finding on this host, the most risky first.

    ``pid_file_units`` maps a PID file's path to the systemd unit that
    declares it as its PIDFile=; files missing from it are judged by time.

    Returns ``(findings, complete, truncated)``: whether every process could
    be read, and whether a search stopped at ``max_files``.
    """
    describe = process_describer(proc)
    open_files, complete = scan_open_files(describe, proc, skip_pids)
    named = LOCK_SUFFIXES + (PID_SUFFIX,)
    walked, truncated = walk_files(paths, max_depth, max_files,
                                   lambda path: path.endswith(named) or looks_like_database(path))
    pid_walk, pid_truncated = walk_files(pid_file_paths, max_depth, max_files, lambda path: path.endswith(PID_SUFFIX))

    findings = []
    claimed = set()

    # The walk already kept only files that look like databases or are named as locks or PID files.
    databases = set(path for path in walked if not path.endswith(named))
    databases.update(path for path in open_files if looks_like_database(path))
    for path in sorted(databases):
        mode = read_sqlite_mode(path)
        if mode is None:
            continue
        companions = [suffix for suffix in COMPANION_SUFFIXES if os.path.exists(path + suffix)]
        claimed.update([path] + [path + suffix for suffix in COMPANION_SUFFIXES])
        findings.append(assess_sqlite(path, mode, open_files.get(path, []), companions))

    by_identity = {}
    for path in open_files:
        identity = file_identity(path)
        if identity:
            by_identity.setdefault(identity, path)
    locks_by_path = {}
    for lock in parse_proc_locks(read_text(os.path.join(proc, 'locks')) or ''):
        path = by_identity.get((lock['device'], lock['inode']))
        if path and path not in claimed:
            locks_by_path.setdefault(path, []).append(lock)
    for path in sorted(set(locks_by_path) | set(p for p in walked if p.endswith(LOCK_SUFFIXES))):
        if path not in claimed:
            claimed.add(path)
            findings.append(assess_lock(path, locks_by_path.get(path, []), open_files.get(path, [])))

    boot_time = parse_boot_time(read_text(os.path.join(proc, 'stat')))
    ticks = clock_ticks()
    units = _real_paths(pid_file_units)
    for path in sorted(set(pid_walk) | set(p for p in walked if p.endswith(PID_SUFFIX))):
        if path in claimed:
            continue
        claimed.add(path)
        findings.append(read_pid_file(path, describe, boot_time, ticks, units, proc))

    for path in sorted(open_files):
        holders = open_files[path]
        if path in claimed or len(set(holder['pid'] for holder in holders)) < 2:
            continue
        writers = [holder for holder in holders if holder['writing']]
        if in_shared_temp(path):
            findings.append(assess_shared_path(path, holders, writers, 'temp'))
        elif len(set(writer['pid'] for writer in writers)) > 1:
            findings.append(assess_shared_path(path, holders, writers, 'file'))

    return sort_findings(findings), complete, truncated or pid_truncated
