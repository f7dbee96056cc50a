# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qwf.collision_guard.plugins.modules import registry_docs

TABLE = u'| port | service |\n|---|---|\n| 8765 | sms-webhook.service |'
BLOCK = (b'<!-- BEGIN qwf.collision_guard port registry -->\n' + TABLE.encode('utf-8') + b'\n'
         b'<!-- END qwf.collision_guard port registry -->\n')


@pytest.fixture
def run(monkeypatch, capsys):
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warned.append(message))

    def run_module(**args):
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                registry_docs.main()
        return json.loads(capsys.readouterr().out)

    run_module.warned = warned
    return run_module


@pytest.fixture
def project(tmp_path):
    """A project directory its agents own, with their instructions."""
    directory = tmp_path / 'project'
    directory.mkdir()
    directory.chmod(0o777)
    agents = directory / 'AGENTS.md'
    agents.write_bytes(b'# Project\n')
    agents.chmod(0o640)
    return directory


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / 'shadow'
    path.write_bytes(b'root:*:19000:0:99999:7:::\n')
    path.chmod(0o600)
    return path


def test_writes_the_block_keeps_mode_and_is_idempotent(run, project):
    agents = project / 'AGENTS.md'
    first = run(paths=[str(agents)], block=TABLE)
    assert first['changed'] is True
    assert first['docs'] == [{'path': str(agents), 'outcome': 'updated', 'reason': ''}]
    assert agents.read_bytes() == b'# Project\n' + BLOCK
    assert stat.S_IMODE(agents.stat().st_mode) == 0o640
    assert sorted(entry.name for entry in project.iterdir()) == ['AGENTS.md']
    again = run(paths=[str(agents)], block=TABLE)
    assert (again['changed'], again['docs'][0]['outcome']) == (False, 'unchanged')


def test_check_mode_tells_the_diff_and_writes_nothing(run, project):
    agents = project / 'AGENTS.md'
    result = run(paths=[str(agents)], block=TABLE, _ansible_check_mode=True, _ansible_diff=True)
    assert result['changed'] is True
    assert result['diff'] == [{'before_header': str(agents), 'after_header': str(agents),
                               'before': '# Project\n', 'after': '# Project\n' + BLOCK.decode('utf-8')}]
    assert agents.read_bytes() == b'# Project\n'


def test_a_link_to_a_root_only_file_is_refused_and_the_others_are_written(run, project, secret, tmp_path):
    (project / 'AGENTS.md').unlink()
    (project / 'AGENTS.md').symlink_to(secret)
    other = tmp_path / 'motd'
    result = run(paths=[str(project / 'AGENTS.md'), str(other)], block=TABLE)
    reason = 'is a symbolic link to %s; root does not write through links' % secret
    assert result['changed'] is True
    assert [doc['outcome'] for doc in result['docs']] == ['refused', 'created']
    assert result['refused'] == ['%s: not written: %s' % (project / 'AGENTS.md', reason)]
    assert run.warned == result['refused']
    assert secret.read_bytes() == b'root:*:19000:0:99999:7:::\n'
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert os.readlink(str(project / 'AGENTS.md')) == str(secret)
    assert other.read_bytes() == BLOCK
    assert stat.S_IMODE(other.stat().st_mode) == 0o644


def test_removal_refuses_the_link_too(run, project, secret):
    secret.write_bytes(b'root\n' + BLOCK)
    (project / 'AGENTS.md').unlink()
    (project / 'AGENTS.md').symlink_to(secret)
    result = run(paths=[str(project / 'AGENTS.md')], state='absent')
    assert (result['changed'], result['docs'][0]['outcome']) == (False, 'refused')
    assert secret.read_bytes() == b'root\n' + BLOCK


@pytest.mark.parametrize('make, kind', [
    (lambda path: os.mkfifo(str(path)), 'is a named pipe, not a regular file'),
    (lambda path: path.mkdir(), 'is a directory, not a regular file'),
])
def test_special_files_are_refused(run, project, make, kind):
    (project / 'AGENTS.md').unlink()
    make(project / 'AGENTS.md')
    result = run(paths=[str(project / 'AGENTS.md')], block=TABLE)
    assert result['refused'] == ['%s: not written: %s' % (project / 'AGENTS.md', kind)]


def test_a_directory_reached_through_a_planted_link_is_refused(run, project, tmp_path):
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc' / 'motd').write_bytes(b'welcome\n')
    (project / 'docs').symlink_to(tmp_path / 'etc')
    result = run(paths=[str(project / 'docs' / 'motd')], block=TABLE)
    assert result['docs'][0]['outcome'] == 'refused'
    assert 'is a symbolic link in a directory that another account can write' in result['refused'][0]
    assert (tmp_path / 'etc' / 'motd').read_bytes() == b'welcome\n'


def test_a_missing_directory_is_refused_when_present_and_fine_when_absent(run, tmp_path):
    path = str(tmp_path / 'nowhere' / 'AGENTS.md')
    assert run(paths=[path], block=TABLE)['docs'][0]['outcome'] == 'refused'
    assert run(paths=[path], state='absent')['docs'][0]['outcome'] == 'unchanged'
    assert not (tmp_path / 'nowhere').exists()


def test_absent_removes_the_block_only_and_keeps_mode(run, project):
    agents = project / 'AGENTS.md'
    agents.write_bytes(b'# Project\n' + BLOCK + b'tail\n')
    result = run(paths=[str(agents)], state='absent')
    assert (result['changed'], result['docs'][0]['outcome']) == (True, 'block removed')
    assert agents.read_bytes() == b'# Project\ntail\n'
    assert stat.S_IMODE(agents.stat().st_mode) == 0o640
    assert run(paths=[str(agents)], state='absent')['changed'] is False


def test_a_bad_marker_fails(run, project):
    result = run(paths=[str(project / 'AGENTS.md')], block=TABLE, marker='no mark')
    assert result['failed'] is True
    assert result['msg'] == "Cannot keep the registry docs: marker: 'no mark' has no {mark}"


def test_a_relative_path_is_refused(run):
    result = run(paths=['AGENTS.md'], block=TABLE)
    assert result['refused'] == ['AGENTS.md: not written: is not an absolute path']
