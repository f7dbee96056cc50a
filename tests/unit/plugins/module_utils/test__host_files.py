# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.qwf.collision_guard.plugins.module_utils._host_files import read_bytes, write_atomically


def test_write_atomically_replaces_the_file_and_leaves_no_temp(tmp_path):
    path = str(tmp_path / 'textfile' / 'collision_guard.prom')
    write_atomically(path, b'old\n')
    write_atomically(path, b'new\n')
    assert [entry.name for entry in (tmp_path / 'textfile').iterdir()] == ['collision_guard.prom']
    assert (tmp_path / 'textfile' / 'collision_guard.prom').read_text() == 'new\n'
    assert (tmp_path / 'textfile' / 'collision_guard.prom').stat().st_mode & 0o777 == 0o644


def test_a_failed_replace_leaves_the_old_file_and_no_temp(tmp_path):
    path = str(tmp_path / 'file.conf')
    write_atomically(path, b'old\n')

    def failing_replace(source, destination):
        raise OSError('no room')

    try:
        write_atomically(path, b'new\n', failing_replace)
    except OSError:
        pass
    assert [entry.name for entry in tmp_path.iterdir()] == ['file.conf']
    assert read_bytes(path) == b'old\n'


def test_read_bytes_of_a_missing_file_is_none(tmp_path):
    assert read_bytes(str(tmp_path / 'missing')) is None
