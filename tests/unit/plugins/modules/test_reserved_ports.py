# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qwf.collision_guard.plugins.modules import reserved_ports


@pytest.fixture
def host(monkeypatch, capsys, tmp_path):
    """A host in a directory: /proc/sys's file, a sysctl.d, and the module run against them."""
    proc = tmp_path / 'ip_local_reserved_ports'
    proc.write_text(u'8766,40000-40010\n')
    sysctl_d = tmp_path / 'sysctl.d'
    sysctl_d.mkdir()
    monkeypatch.setattr(reserved_ports, 'PROC_PATH', str(proc))
    monkeypatch.setattr(reserved_ports, 'SYSCTL_CONFIG_GLOBS', (str(sysctl_d / '*.conf'),))
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warned.append(message))

    def run(**args):
        args.setdefault('path', str(sysctl_d / '99-zz-collision-guard.conf'))
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                reserved_ports.main()
        return json.loads(capsys.readouterr().out)

    run.proc = proc
    run.conf = sysctl_d / '99-zz-collision-guard.conf'
    run.sysctl_d = sysctl_d
    run.warned = warned
    return run


def test_reserves_merged_then_is_idempotent_then_releases_only_its_own(host):
    first = host(ports=[8765, 8766, 5514])
    assert first['changed'] is True
    assert (first['reserved'], first['added'], first['applied']) == ('5514,8765-8766,40000-40010', [5514, 8765], True)
    assert host.proc.read_text() == '5514,8765-8766,40000-40010\n'
    assert host.conf.read_text().endswith('net.ipv4.ip_local_reserved_ports = 5514,8765-8766,40000-40010\n')
    assert oct(os.stat(str(host.conf)).st_mode & 0o777) == '0o644'

    assert host(ports=[8765, 8766, 5514])['changed'] is False

    released = host(state='absent')
    assert (released['changed'], released['reserved']) == (True, '8766,40000-40010')
    assert host.proc.read_text() == '8766,40000-40010\n'
    assert not host.conf.exists()
    assert host(state='absent')['changed'] is False


def test_check_mode_reports_and_writes_nothing(host):
    result = host(ports=[8765], _ansible_check_mode=True, _ansible_diff=True)
    assert result['changed'] is True
    assert result['reserved'] == '8765-8766,40000-40010'
    assert [diff['after_header'] for diff in result['diff']] == [str(host.conf), 'net.ipv4.ip_local_reserved_ports']
    assert host.proc.read_text() == '8766,40000-40010\n'
    assert not host.conf.exists()


def test_keeps_what_other_sysctl_files_reserve(host):
    (host.sysctl_d / '50-other.conf').write_text(u'net.ipv4.ip_local_reserved_ports = 3000\n')
    assert host(ports=[8765])['reserved'] == '3000,8765-8766,40000-40010'
    assert host(state='absent')['reserved'] == '3000,8766,40000-40010'


def test_read_only_proc_sys_writes_the_file_and_warns(host, monkeypatch):
    monkeypatch.setattr(reserved_ports.os, 'access', lambda path, mode: False)
    result = host(ports=[8765])
    assert (result['changed'], result['applied'], result['reserved']) == (True, False, '8766,40000-40010')
    assert host.conf.exists()
    assert host.proc.read_text() == '8766,40000-40010\n'
    assert len(host.warned) == 1 and 'is read-only here' in host.warned[0]
    # The file is right already; only the warning repeats.
    assert host(ports=[8765])['changed'] is False


@pytest.mark.parametrize('ports, named', [
    ([8765, 0], 'ports[1]: 0 is out of range 1-65535'),
    (['80; reboot'], "ports[0]: '80; reboot' is not an integer"),
    ([True], 'ports[0]: True is not an integer'),
])
def test_bad_ports_change_nothing(host, ports, named):
    result = host(ports=ports)
    assert result['failed'] is True and named in result['msg']
    assert host.proc.read_text() == '8766,40000-40010\n'
    assert not host.conf.exists()


def test_a_file_someone_else_wrote_is_left_alone(host):
    host.conf.write_text(u'net.ipv4.ip_local_reserved_ports = 1\n')
    result = host(ports=[8765])
    assert result['failed'] is True and 'not written by qwf.collision_guard' in result['msg']
    assert host.conf.read_text() == 'net.ipv4.ip_local_reserved_ports = 1\n'
