# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Stale PID and lock files, cleared by the eviction helper before a unit starts.

A file left by a killed process names a pid that is dead, or that the kernel
has since given to a stranger: a start script that checks it refuses to run,
and one that signals it hits the stranger. Before each start of a unit, the
helper removes each listed file whose pid is dead or runs outside the unit,
and keeps the ones its own live processes wrote.

``pid_file_verdict`` decides on plain data. ``clear_stale_pid_files`` reads
and removes as root in directories other accounts may control, so it never
follows a link at the file and removes by directory descriptor only the
entry it read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import stat

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._file_usage import parse_pid, parse_proc_locks
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import kind_of, open_directory
from ansible_collections.qwf.collision_guard.plugins.module_utils._journal import NOTICE, WARNING
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import cgroup_root, describe_process, read_text

REMOVE = 'remove'
KEEP = 'keep'
# A PID or lock file holds a number and maybe a host name: more is not one.
READ_MAX = 256
_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)


def is_own_process(process, unit):
    """Whether ``process`` runs in ``unit`` itself: not under a user's service manager or in a container there."""
    return bool(process) and process.get('unit') == unit and not process.get('user_manager') \
        and not process.get('container')


def describe_owner(process):
    """What a process is, for a receipt: name, user and unit."""
    details = ['user %s' % (process.get('user') or '?')]
    if process.get('user_manager'):
        details.append('unit %s of %s' % (process.get('unit'), process['user_manager']))
    elif process.get('container'):
        details.append('container %s' % process['container'])
    else:
        details.append('unit %s' % (process.get('unit') or '-'))
    return '%s (%s)' % (process.get('name') or 'an unnamed process', ', '.join(details))


def pid_file_verdict(pid, process, unit, lockers=()):
    """``(REMOVE or KEEP, reason)`` for a PID file of ``unit`` that names ``pid``.

    ``process`` is ``describe_process``'s answer for ``pid``, None when it
    is dead. ``lockers`` are the live pids that hold a lock on the file: a
    lock file in use is never removed under its holder, whatever it says.
    """
    if pid is None:
        return KEEP, 'holds no pid; left alone'
    live_lockers = sorted(set(lockers))
    if live_lockers:
        return KEEP, 'is locked by pid %s; left alone' % ', '.join(str(locker) for locker in live_lockers)
    if process is None:
        return REMOVE, 'pid %d is dead' % pid
    if is_own_process(process, unit):
        return KEEP, 'pid %d is %s, a live process of %s' % (pid, describe_owner(process), unit)
    return REMOVE, 'pid %d is now %s, outside %s' % (pid, describe_owner(process), unit)


def pid_file_receipt(event, path, pid, process, reason):
    """One key=value journal line about one PID file."""
    process = process or {}
    fields = [event, 'path=%s' % path, 'pid=%s' % (pid if pid is not None else '-'),
              'user=%s' % (process.get('user') or '-'), 'unit=%s' % (process.get('unit') or '-'),
              'reason=%s' % json.dumps(reason)]
    if process.get('cmdline') or process.get('name'):
        fields.append('cmdline=%s' % json.dumps(' '.join(process.get('cmdline') or [process['name']])[:1024]))
    return ' '.join(fields)


def _read_entry(dir_fd, name):
    """``(text, stat)`` of the regular file ``name``, or ``(None, None)`` when it is missing; never follows a link."""
    try:
        entry = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return None, None
        raise CollisionGuardError('cannot look at it: %s' % os.strerror(error.errno))
    if stat.S_ISLNK(entry.st_mode):
        raise CollisionGuardError('is a symbolic link to %s; root does not follow it' % json.dumps(
            os.readlink(name, dir_fd=dir_fd)))
    if not stat.S_ISREG(entry.st_mode):
        raise CollisionGuardError('is %s, not a regular file' % kind_of(entry.st_mode))
    # O_NONBLOCK: a named pipe swapped in meanwhile must not hang a start; fstat refuses it below.
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC, dir_fd=dir_fd)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise CollisionGuardError('is %s, not a regular file' % kind_of(opened.st_mode))
        data = os.read(fd, READ_MAX)
    finally:
        os.close(fd)
    return data.decode('ascii', 'replace'), opened


def _lockers(file_stat, proc):
    """The live pids holding a lock on the file ``file_stat`` describes, from /proc/locks."""
    return [lock['pid'] for lock in parse_proc_locks(read_text(os.path.join(proc, 'locks')) or '')
            if (lock['device'], lock['inode']) == (file_stat.st_dev, file_stat.st_ino) and lock['pid'] > 0
            and os.path.exists(os.path.join(proc, str(lock['pid'])))]


def _describe_live(pid, root, proc):
    """``describe_process`` for a live pid, None when it is dead (a zombie counts as dead: it runs nothing)."""
    if pid is None or not os.path.isdir(os.path.join(proc, str(pid))):
        return None
    process = describe_process(pid, root, proc)
    status = read_text(os.path.join(proc, str(pid), 'stat')) or ''
    if not status or status.rpartition(')')[2].split()[:1] in (['Z'], ['X']):
        return None
    return process


def check_pid_file(path, unit, proc='/proc', root=None):
    """``(verdict, reason, pid, process, dir_fd, name, stat)`` of one PID file; dir_fd is the caller's to close.

    The verdict is None when the file is missing. CollisionGuardError says
    why the file cannot be judged (a link, not a regular file, a link in a
    directory another account can write on the way).
    """
    directory, name = os.path.split(path)
    dir_fd = open_directory(directory)
    try:
        text, file_stat = _read_entry(dir_fd, name)
        if text is None:
            return None, None, None, None, dir_fd, name, None
        pid = parse_pid(text)
        process = _describe_live(pid, cgroup_root(proc) if root is None else root, proc)
        verdict, reason = pid_file_verdict(pid, process, unit, _lockers(file_stat, proc))
    except BaseException:
        os.close(dir_fd)
        raise
    return verdict, reason, pid, process, dir_fd, name, file_stat


def remove_entry(dir_fd, name, file_stat):
    """Remove ``name`` if it is still the file that was read; False when it was replaced or is gone meanwhile."""
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    if not os.path.samestat(now, file_stat):
        return False
    os.unlink(name, dir_fd=dir_fd)
    return True


def clear_stale_pid_files(paths, unit, journal, dry_run=False, proc='/proc'):
    """Remove the stale files of ``paths`` before ``unit`` starts, with a receipt each; returns the paths removed.

    Nothing here fails a start: a file that cannot be judged is left alone
    with a warning, as it would be without the guard.
    """
    removed = []
    root = cgroup_root(proc)
    for path in paths:
        try:
            verdict, reason, pid, process, dir_fd, name, file_stat = check_pid_file(path, unit, proc, root)
        except (CollisionGuardError, OSError) as error:
            journal.log(WARNING, pid_file_receipt('pid-file-left-alone', path, None, None, '%s %s' % (path, error)))
            continue
        try:
            if verdict == KEEP:
                journal.log(NOTICE if pid is not None else WARNING, pid_file_receipt('pid-file-kept', path, pid, process, reason))
            elif verdict == REMOVE and dry_run:
                journal.log(NOTICE, pid_file_receipt('would-remove-stale-pid-file', path, pid, process, reason))
            elif verdict == REMOVE:
                if remove_entry(dir_fd, name, file_stat):
                    removed.append(path)
                    journal.log(NOTICE, pid_file_receipt('removed-stale-pid-file', path, pid, process, reason))
                else:
                    journal.log(WARNING, pid_file_receipt('pid-file-left-alone', path, pid, process,
                                                          'it was replaced while it was judged'))
        except OSError as error:
            journal.log(WARNING, pid_file_receipt('pid-file-left-alone', path, pid, process,
                                                  'cannot remove it: %s' % os.strerror(error.errno)))
        finally:
            os.close(dir_fd)
    return removed
