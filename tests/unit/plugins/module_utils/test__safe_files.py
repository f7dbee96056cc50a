# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _safe_files
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import (
    directory_is_shared,
    kind_of,
    open_directory,
    read_bytes,
    read_plain_file,
    replace_file,
    write_atomically,
)


def mode_of(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


@pytest.fixture
def shared_dir(tmp_path):
    """A directory every account can write, as node_exporter's textfile directory is to its owner."""
    directory = tmp_path / 'textfile'
    directory.mkdir()
    directory.chmod(0o777)
    return directory


@pytest.fixture
def secret(tmp_path):
    """A root-only file an attacker would like root to chmod, chown or write."""
    path = tmp_path / 'secret'
    path.write_bytes(b'root:only\n')
    path.chmod(0o600)
    return path


def test_write_atomically_replaces_the_file_and_leaves_no_temp(tmp_path):
    path = str(tmp_path / 'textfile' / 'collision_guard.prom')
    write_atomically(path, b'old\n')
    write_atomically(path, b'new\n')
    assert [entry.name for entry in (tmp_path / 'textfile').iterdir()] == ['collision_guard.prom']
    assert (tmp_path / 'textfile' / 'collision_guard.prom').read_text() == 'new\n'
    assert mode_of(tmp_path / 'textfile' / 'collision_guard.prom') == 0o644


def test_write_atomically_sets_the_mode_asked_for(tmp_path):
    path = tmp_path / 'monitor.json'
    write_atomically(str(path), b'{}\n', mode=0o600)
    assert mode_of(path) == 0o600
    write_atomically(str(path), b'{"a": 1}\n', mode=0o600)
    assert (path.read_bytes(), mode_of(path)) == (b'{"a": 1}\n', 0o600)


def test_a_failed_replace_leaves_the_old_file_and_no_temp(tmp_path):
    path = str(tmp_path / 'file.conf')
    write_atomically(path, b'old\n')

    def failing_replace(source, destination):
        raise OSError('no room')

    with pytest.raises(OSError):
        write_atomically(path, b'new\n', failing_replace)
    assert [entry.name for entry in tmp_path.iterdir()] == ['file.conf']
    assert read_bytes(path) == b'old\n'


def test_replace_runs_on_the_temp_file_in_a_directory_of_ours(tmp_path):
    seen = []

    def replace(source, destination):
        seen.append((source, destination, mode_of(os.path.dirname(source))))
        os.rename(source, destination)

    path = str(tmp_path / 'file.conf')
    write_atomically(path, b'new\n', replace)
    [(source, destination, temp_dir_mode)] = seen
    assert os.path.dirname(os.path.dirname(source)) == str(tmp_path)
    assert (destination, temp_dir_mode) == (path, 0o700)
    assert read_bytes(path) == b'new\n'


def test_in_a_shared_directory_the_path_based_replace_is_not_used(shared_dir):
    def path_based_replace(source, destination):
        raise AssertionError('called with %s' % source)

    path = str(shared_dir / 'collision_guard.prom')
    write_atomically(path, b'new\n', path_based_replace)
    assert (read_bytes(path), mode_of(path)) == (b'new\n', 0o644)


def test_a_link_planted_at_the_name_is_replaced_and_its_target_untouched(shared_dir, secret):
    path = shared_dir / 'collision_guard.prom'
    path.symlink_to(secret)
    write_atomically(str(path), b'metrics\n')
    assert not path.is_symlink()
    assert (path.read_bytes(), mode_of(path)) == (b'metrics\n', 0o644)
    assert (secret.read_bytes(), mode_of(secret)) == (b'root:only\n', 0o600)


def racer(directory, secret, prefix):
    """What the owner of ``directory`` can do to every temp entry it sees: move it away, plant a link, chmod."""
    def race(*args):
        for entry in os.listdir(str(directory)):
            if not entry.startswith(prefix):
                continue
            planted = os.path.join(str(directory), entry)
            try:
                os.rename(planted, planted + '.moved')
                os.symlink(str(secret), planted)
            except OSError:
                pass
    return race


@pytest.mark.parametrize('replace', [None, os.rename])
def test_a_racer_in_the_directory_cannot_redirect_the_write(shared_dir, secret, monkeypatch, replace):
    real_fsync = os.fsync

    def fsync_then_race(fd):
        real_fsync(fd)
        racer(shared_dir, secret, '.collision_guard.prom.')()

    monkeypatch.setattr(_safe_files.os, 'fsync', fsync_then_race)
    path = shared_dir / 'collision_guard.prom'
    write_atomically(str(path), b'metrics\n', replace)
    assert (secret.read_bytes(), mode_of(secret)) == (b'root:only\n', 0o600)
    assert not path.is_symlink()
    assert (path.read_bytes(), mode_of(path)) == (b'metrics\n', 0o644)


def test_the_previous_chmod_by_path_loses_that_race(shared_dir, secret):
    """The same racer against a chmod by path, as write_atomically did before: the secret becomes 0644."""
    temp = shared_dir / '.collision_guard.prom.abc123'
    temp.write_bytes(b'metrics\n')
    racer(shared_dir, secret, '.collision_guard.prom.')()
    os.chmod(str(temp), 0o644)
    assert mode_of(secret) == 0o644


def test_replace_file_sets_mode_and_owner_on_the_descriptor(tmp_path):
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        replace_file(fd, 'doc.md', b'text\n', 0o640, os.getuid(), os.getgid())
    finally:
        os.close(fd)
    result = os.lstat(str(tmp_path / 'doc.md'))
    assert (stat.S_IMODE(result.st_mode), result.st_uid, result.st_gid) == (0o640, os.getuid(), os.getgid())
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ['doc.md']


def test_replace_file_tries_another_temp_name_when_one_is_taken(tmp_path, monkeypatch):
    names = iter([b'\x00' * 6, b'\x00' * 6, b'\x01' * 6])
    monkeypatch.setattr(_safe_files.os, 'urandom', lambda size: next(names))
    (tmp_path / '.doc.md.000000000000').mkdir()
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        replace_file(fd, 'doc.md', b'text\n')
    finally:
        os.close(fd)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ['.doc.md.000000000000', 'doc.md']


def test_read_bytes_of_a_missing_file_is_none(tmp_path):
    assert read_bytes(str(tmp_path / 'missing')) is None


@pytest.mark.parametrize('uid, mode, shared', [
    (0, 0o755, False),
    (os.geteuid(), 0o700, False),
    (1500, 0o755, True),
    (0, 0o775, True),
    (0, 0o1777, True),
])
def test_directory_is_shared(uid, mode, shared):
    fake = os.stat_result((stat.S_IFDIR | mode, 0, 0, 2, uid, 0, 0, 0, 0, 0))
    assert directory_is_shared(fake) is shared


def test_directory_is_shared_is_judged_for_the_account_given():
    fake = os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 2, 1500, 0, 0, 0, 0, 0))
    assert directory_is_shared(fake, uid=1500) is False


@pytest.mark.parametrize('mode, kind', [
    (stat.S_IFLNK, 'a symbolic link'),
    (stat.S_IFIFO, 'a named pipe'),
    (stat.S_IFDIR, 'a directory'),
    (stat.S_IFREG, 'a regular file'),
    (stat.S_IFCHR, 'a character device'),
])
def test_kind_of(mode, kind):
    assert kind_of(mode | 0o644) == kind


def read_in(directory, name):
    fd = open_directory(str(directory))
    try:
        return read_plain_file(fd, name)
    finally:
        os.close(fd)


def test_read_plain_file_reads_a_regular_file_and_tells_a_missing_one(tmp_path):
    (tmp_path / 'AGENTS.md').write_bytes(b'# Project\n')
    content, found = read_in(tmp_path, 'AGENTS.md')
    assert content == b'# Project\n' and stat.S_ISREG(found.st_mode)
    assert read_in(tmp_path, 'missing.md') == (None, None)


def test_read_plain_file_refuses_a_link_and_names_its_target(tmp_path, secret):
    (tmp_path / 'AGENTS.md').symlink_to(secret)
    with pytest.raises(CollisionGuardError, match='is a symbolic link to %s; root does not write through links' % secret):
        read_in(tmp_path, 'AGENTS.md')


def test_read_plain_file_refuses_a_named_pipe_without_opening_it(tmp_path):
    os.mkfifo(str(tmp_path / 'AGENTS.md'))
    with pytest.raises(CollisionGuardError, match='is a named pipe, not a regular file'):
        read_in(tmp_path, 'AGENTS.md')


def test_read_plain_file_refuses_a_hard_link(tmp_path, secret):
    os.link(str(secret), str(tmp_path / 'AGENTS.md'))
    with pytest.raises(CollisionGuardError, match='with 2 hard links'):
        read_in(tmp_path, 'AGENTS.md')


def test_open_directory_follows_a_link_only_in_a_directory_no_one_else_writes(tmp_path, shared_dir):
    (tmp_path / 'real').mkdir()
    (tmp_path / 'real' / 'AGENTS.md').write_bytes(b'real\n')
    (tmp_path / 'trusted-link').symlink_to('real')
    assert read_in(tmp_path / 'trusted-link', 'AGENTS.md')[0] == b'real\n'
    (shared_dir / 'planted').symlink_to(tmp_path / 'real')
    with pytest.raises(CollisionGuardError, match='planted is a symbolic link in a directory that another account can write'):
        open_directory(str(shared_dir / 'planted'))


def test_open_directory_walks_dot_dot_from_the_real_directory(tmp_path):
    (tmp_path / 'a' / 'b').mkdir(parents=True)
    (tmp_path / 'c').mkdir()
    (tmp_path / 'c' / 'AGENTS.md').write_bytes(b'c\n')
    (tmp_path / 'a' / 'link').symlink_to(tmp_path / 'a' / 'b')
    # link/.. is a, the parent of the directory the link names.
    with pytest.raises(CollisionGuardError, match='cannot look at'):
        open_directory(str(tmp_path / 'a' / 'link' / '..' / 'c'))
    assert read_in(str(tmp_path / 'a' / 'b' / '..' / '..' / 'c'), 'AGENTS.md')[0] == b'c\n'


def test_open_directory_refuses_a_file_on_the_way_and_a_loop(tmp_path):
    (tmp_path / 'file').write_bytes(b'')
    with pytest.raises(CollisionGuardError, match='file is a regular file, not a directory'):
        open_directory(str(tmp_path / 'file' / 'sub'))
    (tmp_path / 'loop').symlink_to('loop')
    with pytest.raises(CollisionGuardError, match='more than 40 symbolic links'):
        open_directory(str(tmp_path / 'loop'))
    with pytest.raises(CollisionGuardError, match='is not an absolute path'):
        open_directory('relative/dir')


def test_a_temp_directory_removed_before_its_file_is_made_is_replaced(tmp_path, monkeypatch):
    real_make = _safe_files._make_temp_directory
    made = []

    def make_then_remove_the_first(dir_fd, name):
        temp_dir, temp_fd = real_make(dir_fd, name)
        made.append(temp_dir)
        if len(made) == 1:
            # What the directory's owner can do to an empty directory of root's: move it away and remove it.
            os.rmdir(temp_dir, dir_fd=dir_fd)
        return temp_dir, temp_fd

    monkeypatch.setattr(_safe_files, '_make_temp_directory', make_then_remove_the_first)
    path = tmp_path / 'collision_guard.prom'
    write_atomically(str(path), b'metrics\n')
    assert len(made) == 2
    assert path.read_bytes() == b'metrics\n'
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ['collision_guard.prom']


def test_a_probe_tells_what_is_at_a_path_without_following_links(tmp_path):
    import hashlib
    from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import path_chain, probe_path
    plain = tmp_path / 'plain'
    plain.write_bytes(b'content\n')
    plain.chmod(0o640)
    link = tmp_path / 'link'
    link.symlink_to(plain)
    found = probe_path(str(plain))
    assert (found['type'], found['mode'], found['sha1'], found['uid']) == (
        'file', '0640', hashlib.sha1(b'content\n').hexdigest(), os.getuid())
    assert (found['group_writable'], found['other_writable']) == (False, False)
    assert probe_path(str(link))['type'] == 'link' and probe_path(str(link))['sha1'] is None
    assert probe_path(str(tmp_path))['type'] == 'directory'
    assert probe_path(str(tmp_path / 'missing')) == {'exists': False, 'path': str(tmp_path / 'missing')}
    assert probe_path(str(plain / 'below')) == {'exists': False, 'path': str(plain / 'below')}
    assert path_chain('/usr/local/lib/collision-guard') == [
        '/', '/usr', '/usr/local', '/usr/local/lib', '/usr/local/lib/collision-guard']
    assert path_chain('/') == ['/']
