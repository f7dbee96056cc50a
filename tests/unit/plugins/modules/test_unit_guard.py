# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry
from ansible_collections.qwf.collision_guard.plugins.modules import unit_guard

REGISTRY = validate_registry([
    {'port': 8765, 'service': 'sms-webhook'},
    {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
    {'port': 9100, 'service': 'billing-worker'},
])
# What systemctl show prints for the three units, in registry order.
SHOW_OUTPUT = ('Id=sms-webhook.service\nLoadState=loaded\nActiveState=active\nNeedDaemonReload=no\n\n'
               'Id=syslog-relay.service\nLoadState=loaded\nActiveState=active\nNeedDaemonReload=no\n\n'
               'Id=billing-worker.service\nLoadState=not-found\nActiveState=inactive\nNeedDaemonReload=no\n')


@pytest.fixture
def run_module(monkeypatch, capsys):
    calls = []

    def fake_run_command(self, argv, *args, **kwargs):
        calls.append(argv)
        return 0, run.show_output, ''

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', fake_run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, required=False: '/usr/bin/' + name)

    def run(args):
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                unit_guard.main()
        return json.loads(capsys.readouterr().out)

    # Recorded here: where warnings end up depends on what else the test
    # process has imported (controller code reroutes them).
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warned.append(message))
    run.calls = calls
    run.warned = warned
    run.show_output = SHOW_OUTPUT
    return run


def test_writes_one_dropin_per_present_unit_then_is_idempotent(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    first = run_module(args)
    assert first['changed'] is True
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*.conf')) == [
        'sms-webhook.service.d/port-cleanup.conf',
        'syslog-relay.service.d/port-cleanup.conf',
    ]
    assert [entry['service'] for entry in first['absent']] == ['billing-worker.service']
    assert [diff['after_header'] for diff in first['diff']] == [
        str(tmp_path / 'sms-webhook.service.d/port-cleanup.conf'),
        str(tmp_path / 'syslog-relay.service.d/port-cleanup.conf'),
    ]
    assert 'udp 5514' in (tmp_path / 'syslog-relay.service.d/port-cleanup.conf').read_text()
    assert run_module.calls[0][-4:] == ['--', 'sms-webhook.service', 'syslog-relay.service', 'billing-worker.service']

    second = run_module(args)
    assert second['changed'] is False
    assert second['diff'] == []


def test_check_mode_reports_exactly_and_writes_nothing(run_module, tmp_path):
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), '_ansible_check_mode': True})
    assert result['changed'] is True
    assert len(result['diff']) == 2
    assert result['diff'][0]['before'] == ''
    assert list(tmp_path.iterdir()) == []


def test_a_hand_edited_dropin_is_put_back(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    run_module(args)
    path = tmp_path / 'sms-webhook.service.d/port-cleanup.conf'
    path.write_text('[Service]\nExecStartPre=\n')
    result = run_module(args)
    assert result['changed'] is True
    assert [item['changed'] for item in result['protected']] == [True, False]
    assert path.read_text().startswith('# Managed by qwf.collision_guard.')


def test_reports_when_fuser_is_missing(run_module, monkeypatch, tmp_path):
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                        lambda self, name, required=False: None if name == 'fuser' else '/usr/bin/' + name)
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    assert result['fuser_found'] is False


def test_first_run_asks_for_a_reload_and_the_second_does_not(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    assert run_module(args)['daemon_reload'] is True
    assert run_module(args)['daemon_reload'] is False


def test_a_reload_left_pending_by_an_earlier_run_is_reported(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    run_module(args)
    run_module.show_output = SHOW_OUTPUT.replace('NeedDaemonReload=no', 'NeedDaemonReload=yes', 1)
    result = run_module(args)
    assert result['diff'] == []
    assert result['daemon_reload'] is True
    assert result['changed'] is True


def test_a_loose_mode_is_tightened(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    run_module(args)
    path = tmp_path / 'sms-webhook.service.d/port-cleanup.conf'
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o666)
    result = run_module(args)
    assert result['changed'] is True
    assert path.stat().st_mode & 0o777 == 0o644


def test_replacing_a_foreign_file_warns(run_module, tmp_path):
    path = tmp_path / 'sms-webhook.service.d/port-cleanup.conf'
    path.parent.mkdir()
    path.write_bytes(b'[Service]\nExecStartPre=/usr/local/bin/mine \xff\n')
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    assert result['changed'] is True
    assert any('was not written by qwf.collision_guard' in message for message in run_module.warned)
    assert path.read_text().startswith('# Managed by qwf.collision_guard.')


def test_unvalidated_input_is_validated_before_anything_is_written(run_module, tmp_path):
    registry = [{'port': '8765', 'service': 'sms-webhook', 'protocol': 'tcp\nExecStartPre=/bin/sh -c id'}]
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path)})
    assert result['failed'] is True
    assert "registry[0].protocol: 'tcp\\nExecStartPre=/bin/sh -c id' is not one of tcp, udp" in result['msg']
    assert list(tmp_path.iterdir()) == []
    assert run_module.calls == []


def test_raw_entries_are_normalised(run_module, tmp_path):
    run_module.show_output = SHOW_OUTPUT.split('\n\n', maxsplit=1)[0]
    result = run_module({'registry': [{'port': '8765', 'service': 'sms-webhook'}], 'unit_dir': str(tmp_path)})
    assert result['protected'][0]['path'].endswith('/sms-webhook.service.d/port-cleanup.conf')
