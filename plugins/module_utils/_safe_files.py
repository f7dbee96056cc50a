# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Reading and writing the files the modules manage on a host.

Root writes into directories that other accounts may control: node_exporter's textfile directory, owned
by prometheus on Debian, or a project directory owned by its user. Whoever controls such a directory can
rename, remove and plant entries in it at any moment. So there every step works on file descriptors: the
last component of a path is never followed, a file is judged by fstat on the descriptor that reads it,
mode and owner are set on the open temp file, and that temp file sits in a directory of its own that only
the writer's account can enter, so no one can swap it for a link before the rename puts it in place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import errno
import grp
import hashlib
import os
import pwd
import stat

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError

_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC
# The kernel's own limit on the links in one path.
MAX_LINKS = 40
# Attempts at a fresh temp directory when its random name is taken.
MAX_TEMP_ATTEMPTS = 10
TEMP_NAME = 'new'

_KINDS = (
    (stat.S_ISLNK, 'a symbolic link'),
    (stat.S_ISDIR, 'a directory'),
    (stat.S_ISFIFO, 'a named pipe'),
    (stat.S_ISSOCK, 'a socket'),
    (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'),
    (stat.S_ISREG, 'a regular file'),
)


def read_bytes(path):
    """The file's bytes, or None when it cannot be read (most often: it does not exist)."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


# A probed file larger than this gets no checksum: the collection's own files are far smaller.
MAX_PROBE_BYTES = 8 * 1024 * 1024
_PROBE_TYPES = ((stat.S_ISREG, 'file'), (stat.S_ISDIR, 'directory'), (stat.S_ISLNK, 'link'))


def probe_path(path):
    """What is at ``path``, not following a link: ``{exists, type, uid, gid, owner, group, mode, sha1, ...}``.

    ``type`` is file, directory, link or other; ``mode`` the permission bits
    as four octal digits (``0644``); ``sha1`` the checksum of a regular file
    of at most MAX_PROBE_BYTES, else None. The plan module returns these, so
    the role can leave alone the files that already hold what it would write,
    without a round trip of its own for each.
    """
    try:
        found = os.lstat(path)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return {'exists': False, 'path': path}
        return {'exists': True, 'path': path, 'type': 'other', 'error': str(error)}
    kind = next((name for test, name in _PROBE_TYPES if test(found.st_mode)), 'other')
    try:
        group = grp.getgrgid(found.st_gid).gr_name
    except KeyError:
        group = str(found.st_gid)
    try:
        owner = pwd.getpwuid(found.st_uid).pw_name
    except KeyError:
        owner = str(found.st_uid)
    probed = {'exists': True, 'path': path, 'type': kind, 'uid': found.st_uid, 'gid': found.st_gid, 'owner': owner,
              'group': group, 'mode': '%04o' % stat.S_IMODE(found.st_mode), 'sha1': None,
              'group_writable': bool(found.st_mode & stat.S_IWGRP), 'other_writable': bool(found.st_mode & stat.S_IWOTH)}
    if kind == 'file' and found.st_size <= MAX_PROBE_BYTES:
        probed['sha1'] = _sha1_of(path, found)
    return probed


def path_chain(path):
    """``/`` and each directory down to the absolute ``path``, ``path`` last: ``/``, ``/usr``, ``/usr/local``..."""
    parts = [part for part in path.split('/') if part]
    return ['/'] + ['/' + '/'.join(parts[:depth]) for depth in range(1, len(parts) + 1)]


def _sha1_of(path, expected):
    """The SHA-1 of the regular file at ``path``, if it is still the one lstat saw; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC)
    except OSError:
        return None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (expected.st_dev, expected.st_ino) or not stat.S_ISREG(opened.st_mode):
            return None
        digest = hashlib.sha1()
        while True:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_text(path):
    """The file's text (undecodable bytes replaced), or None when it cannot be read."""
    content = read_bytes(path)
    return None if content is None else content.decode('utf-8', 'replace')


def kind_of(mode):
    """What a file of this ``st_mode`` is, in words: ``a symbolic link``, ``a named pipe``..."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return 'a special file'


def plain_file_problem(file_stat):
    """Why a file is not a plain file root may rewrite (a regular file with one name), or None."""
    if not stat.S_ISREG(file_stat.st_mode):
        return 'is %s, not a regular file' % kind_of(file_stat.st_mode)
    if file_stat.st_nlink > 1:
        # Rewriting one name of a hard link would show root's copy of the other file in the diff.
        return 'is a regular file with %d hard links, so it is also another file' % file_stat.st_nlink
    return None


def directory_is_shared(dir_stat, uid=None):
    """Whether an account other than root and ``uid`` (ours by default) can add, rename or remove entries here."""
    uid = os.geteuid() if uid is None else uid
    return dir_stat.st_uid not in (0, uid) or bool(dir_stat.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def open_directory(path):
    """A descriptor of the directory ``path``, reached without following a link another account could have planted.

    A symbolic link on the way is followed only where it sits in a directory that no account but root and
    ours can write; anywhere else the path is refused. Raises CollisionGuardError naming the component.
    """
    if not isinstance(path, str) or not path.startswith('/') or '\0' in path:
        raise CollisionGuardError('%r is not an absolute path' % (path,))
    pending = [part for part in path.split('/') if part]
    walked = []
    links = 0
    fd = os.open('/', _DIRECTORY_FLAGS)
    try:
        while pending:
            name = pending.pop(0)
            if name == '.':
                continue
            if name == '..':
                # Every directory walked so far is a real one, so its ".." is the parent the path means.
                fd = _replace_fd(fd, os.open('..', _DIRECTORY_FLAGS, dir_fd=fd))
                walked = walked[:-1]
                continue
            shown = '/' + '/'.join(walked + [name])
            try:
                entry = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as error:
                raise CollisionGuardError('cannot look at %s: %s%s' % (shown, os.strerror(error.errno), _on_the_way(path, shown)))
            if stat.S_ISLNK(entry.st_mode):
                if directory_is_shared(os.fstat(fd)):
                    raise CollisionGuardError(
                        '%s is a symbolic link in a directory that another account can write; root does not follow it%s'
                        % (shown, _on_the_way(path, shown)))
                links += 1
                if links > MAX_LINKS:
                    raise CollisionGuardError('%s: more than %d symbolic links' % (path, MAX_LINKS))
                target = os.readlink(name, dir_fd=fd)
                if target.startswith('/'):
                    fd = _replace_fd(fd, os.open('/', _DIRECTORY_FLAGS))
                    walked = []
                pending[0:0] = [part for part in target.split('/') if part]
                continue
            if not stat.S_ISDIR(entry.st_mode):
                raise CollisionGuardError('%s is %s, not a directory%s' % (shown, kind_of(entry.st_mode), _on_the_way(path, shown)))
            try:
                fd = _replace_fd(fd, os.open(name, _DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=fd))
            except OSError as error:
                raise CollisionGuardError('%s changed while it was opened: %s%s' % (shown, os.strerror(error.errno), _on_the_way(path, shown)))
            walked.append(name)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _on_the_way(path, shown):
    return '' if shown == path.rstrip('/') else ' (on the way to %s)' % path


def _replace_fd(old, new):
    os.close(old)
    return new


def read_plain_file(dir_fd, name):
    """``(content, stat)`` of the file ``name`` in the directory ``dir_fd``, or ``(None, None)`` when it does not exist.

    The name is not followed: a symbolic link, anything not a regular file and a file with other names
    (hard links) raise CollisionGuardError saying what it is.
    """
    try:
        entry = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return None, None
        raise
    if stat.S_ISLNK(entry.st_mode):
        raise CollisionGuardError('is a symbolic link to %s; root does not write through links' % os.readlink(name, dir_fd=dir_fd))
    problem = plain_file_problem(entry)
    if problem:
        raise CollisionGuardError(problem)
    # O_NONBLOCK: a named pipe swapped in meanwhile must not hang the read; fstat refuses it below.
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC, dir_fd=dir_fd)
    try:
        opened = os.fstat(fd)
        problem = plain_file_problem(opened)
        if problem:
            raise CollisionGuardError(problem)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b''.join(chunks), opened


def replace_file(dir_fd, name, content, mode=0o644, uid=None, gid=None):
    """Put ``content`` (bytes) at ``name`` in the directory ``dir_fd`` in one rename, following no link.

    The temp file is made in a new directory inside ``dir_fd``, mode 0700, that only this account can
    enter. Mode, then owner (``uid``/``gid``, None keeps ours) are set on its descriptor. The rename
    replaces whatever ``name`` is then, a link planted there included, and never follows it.
    """
    temp_dir, temp_fd, fd = _make_temp_file(dir_fd, name)
    try:
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            # After fchown, which clears the set-id bits.
            os.fchmod(fd, stat.S_IMODE(mode))
        finally:
            os.close(fd)
        os.rename(TEMP_NAME, name, src_dir_fd=temp_fd, dst_dir_fd=dir_fd)
    finally:
        _remove_temp_directory(dir_fd, temp_dir, temp_fd)


def _make_temp_file(dir_fd, name):
    """``(temp directory's name, its descriptor, the temp file's descriptor)``, the file new, empty and mode 0600."""
    for dummy in range(MAX_TEMP_ATTEMPTS):
        temp_dir, temp_fd = _make_temp_directory(dir_fd, name)
        try:
            return temp_dir, temp_fd, os.open(TEMP_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC,
                                              0o600, dir_fd=temp_fd)
        except OSError as error:
            _remove_temp_directory(dir_fd, temp_dir, temp_fd)
            # The owner of the directory may move an empty directory away and remove it: take another.
            if error.errno != errno.ENOENT:
                raise
    raise CollisionGuardError('cannot make a temp file for %s: its temp directory was removed %d times by another account'
                              % (name, MAX_TEMP_ATTEMPTS))


def _make_temp_directory(dir_fd, name):
    """A new directory ``.NAME.RANDOM`` in ``dir_fd``, mode 0700 and ours, as ``(its name, its descriptor)``."""
    for dummy in range(MAX_TEMP_ATTEMPTS):
        temp_dir = '.%s.%s' % (name, binascii.hexlify(os.urandom(6)).decode('ascii'))
        try:
            os.mkdir(temp_dir, 0o700, dir_fd=dir_fd)
        except OSError as error:
            if error.errno == errno.EEXIST:
                continue
            raise
        try:
            temp_fd = os.open(temp_dir, _DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
        except OSError:
            # Swapped for a link or a file between mkdir and open: try another name.
            continue
        opened = os.fstat(temp_fd)
        if opened.st_uid == os.geteuid() and not opened.st_mode & 0o077:
            return temp_dir, temp_fd
        # Someone else's directory under our name: leave it, and ours wherever it was moved.
        os.close(temp_fd)
    raise CollisionGuardError('cannot make a private temp directory for %s: %d attempts were taken or replaced '
                              'by another account' % (name, MAX_TEMP_ATTEMPTS))


def _remove_temp_directory(dir_fd, temp_dir, temp_fd):
    try:
        try:
            os.unlink(TEMP_NAME, dir_fd=temp_fd)
        except OSError:
            pass
        try:
            # Only our own directory, if it is still where it was made; moved away, it stays where it went.
            if os.path.samestat(os.stat(temp_dir, dir_fd=dir_fd, follow_symlinks=False), os.fstat(temp_fd)):
                os.rmdir(temp_dir, dir_fd=dir_fd)
        except OSError:
            pass
    finally:
        os.close(temp_fd)


def write_atomically(path, content, replace=None, mode=0o644):
    """Replace ``path`` with ``content`` (bytes) in one rename, so a reader sees the old file or the new one.

    The new file gets ``mode`` and this account as owner. Modules pass ``module.atomic_move`` as
    ``replace``, which also keeps SELinux contexts (and the old file's mode and owner); it works by path,
    so in a directory another account can write it is not used, and the rename works on descriptors.
    A missing directory is created, mode 0755.
    """
    directory, name = os.path.split(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    dir_fd = os.open(directory, _DIRECTORY_FLAGS)
    try:
        if replace is None or directory_is_shared(os.fstat(dir_fd)):
            replace_file(dir_fd, name, content, mode)
            return
        temp_dir, temp_fd, fd = _make_temp_file(dir_fd, name)
        try:
            temp_path = os.path.join(directory, temp_dir, TEMP_NAME)
            with os.fdopen(fd, 'wb') as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
                os.fchmod(handle.fileno(), stat.S_IMODE(mode))
            replace(temp_path, path)
        finally:
            _remove_temp_directory(dir_fd, temp_dir, temp_fd)
    finally:
        os.close(dir_fd)
