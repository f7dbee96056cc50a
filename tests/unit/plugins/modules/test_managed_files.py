# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""managed_files: the collection's files in one run, each written only when it differs, never through a link."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.qwf.collision_guard.plugins.modules import managed_files

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the files are root-owned, as on a host')


@pytest.fixture
def run(capsys):
    def run_module(args):
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                managed_files.main()
        return json.loads(capsys.readouterr().out)
    return run_module


def mode_of(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def test_writes_what_differs_then_nothing(run, tmp_path):
    args = {'directories': [{'path': str(tmp_path / 'etc')}],
            'files': [{'path': str(tmp_path / 'etc' / 'registry.json'), 'content': '{}\n'},
                      {'path': str(tmp_path / 'etc' / 'monitor.json'), 'content': '{"token": "s3cret"}\n',
                       'mode': '0600', 'diff': False},
                      {'path': str(tmp_path / 'etc' / 'program'),
                       'content_base64': base64.b64encode(b'PK\x03\x04\xff').decode()}]}
    first = run(dict(args, _ansible_diff=True))
    assert first['changed'] is True and len(first['written']) == 4
    assert (tmp_path / 'etc' / 'registry.json').read_text() == '{}\n'
    assert (tmp_path / 'etc' / 'program').read_bytes() == b'PK\x03\x04\xff'
    assert mode_of(tmp_path / 'etc' / 'monitor.json') == 0o600 and mode_of(tmp_path / 'etc') == 0o755
    # A secret's diff names its bytes without showing them.
    secret_diff = [diff for diff in first['diff'] if diff['after_header'].endswith('monitor.json')][0]
    assert 's3cret' not in json.dumps(first['diff']) and secret_diff['after'].startswith('(20 bytes, sha1 ')
    second = run(args)
    assert (second['changed'], second['written'], second['diff']) == (False, [], [])


def test_check_mode_reports_and_writes_nothing(run, tmp_path):
    result = run({'files': [{'path': str(tmp_path / 'a'), 'content': 'x\n'}], '_ansible_check_mode': True})
    assert result['changed'] is True and result['written'] == [str(tmp_path / 'a')]
    assert not (tmp_path / 'a').exists()


def test_a_loose_mode_is_tightened_before_the_new_content_lands(run, tmp_path, monkeypatch):
    path = tmp_path / 'monitor.json'
    path.write_text('{}\n')
    path.chmod(0o644)
    seen = []
    real = managed_files.write_atomically

    def watching(target, content, replace=None, mode=0o644):
        seen.append(mode_of(target))
        return real(target, content, replace, mode)

    monkeypatch.setattr(managed_files, 'write_atomically', watching)
    run({'files': [{'path': str(path), 'content': '{"token": "x"}\n', 'mode': '0600', 'diff': False}]})
    assert seen == [0o600] and mode_of(path) == 0o600


def test_a_planted_link_is_replaced_not_followed_and_not_read(run, tmp_path):
    secret = tmp_path / 'shadow'
    secret.write_text('root:hash\n')
    link = tmp_path / 'PORTS.md'
    link.symlink_to(secret)
    result = run({'files': [{'path': str(link), 'content': 'ports\n'}], '_ansible_diff': True})
    assert result['changed'] is True
    assert not link.is_symlink() and link.read_text() == 'ports\n'
    assert secret.read_text() == 'root:hash\n' and 'root:hash' not in json.dumps(result)


def test_a_mode_change_alone_is_a_change(run, tmp_path):
    path = tmp_path / 'a'
    path.write_text('x\n')
    path.chmod(0o666)
    assert run({'files': [{'path': str(path), 'content': 'x\n'}]})['written'] == [str(path)]
    assert mode_of(path) == 0o644


@pytest.mark.parametrize('entry, named', [
    ({'path': 'relative/file', 'content': 'x'}, "files[0].path: 'relative/file' is not an absolute path"),
    ({'path': '/tmp/x', 'content': 'x', 'mode': '644'}, "files[0].mode: '644' is not four octal digits"),
])
def test_bad_entries_change_nothing_and_are_named(run, entry, named):
    result = run({'files': [entry]})
    assert result['failed'] is True and named in result['msg']


def test_a_directory_that_is_a_link_is_refused(run, tmp_path):
    (tmp_path / 'real').mkdir()
    (tmp_path / 'dir').symlink_to(tmp_path / 'real')
    result = run({'directories': [{'path': str(tmp_path / 'dir')}]})
    assert result['failed'] is True and 'is not a directory' in result['msg']


def test_programs_are_the_action_plugins_to_build(run, tmp_path):
    result = run({'programs': [{'src': 'x', 'dest': str(tmp_path / 'x'), 'description': 'x'}]})
    assert result['failed'] is True and 'action plugin' in result['msg']
