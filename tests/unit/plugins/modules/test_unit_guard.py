# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import sys

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
def run_module(monkeypatch, capsys, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('helper')
    calls = []

    def fake_run_command(self, argv, *args, **kwargs):
        calls.append(argv)
        if argv[1:] == ['--version']:
            return 0, 'systemd %d (%d.1-1)\n+PAM +AUDIT\n' % (run.systemd_version, run.systemd_version), ''
        return 0, run.show_output, ''

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', fake_run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, required=False: '/usr/bin/' + name)

    def run(args):
        # The helper's Python must exist on the host; this test's own does.
        args = dict(args, eviction=dict(args.get('eviction', {}), helper_python=sys.executable,
                                        helper_dir=str(tmp_path / 'helper')))
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
    run.systemd_version = 252
    return run


ALL_DROPINS = [
    'sms-webhook.service.d/port-cleanup.conf',
    'sms-webhook.service.d/restart-policy.conf',
    'syslog-relay.service.d/port-cleanup.conf',
    'syslog-relay.service.d/restart-policy.conf',
]


def written(tmp_path):
    return sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*.conf'))


def test_writes_the_dropins_of_each_present_unit_then_is_idempotent(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    first = run_module(args)
    assert first['changed'] is True
    assert written(tmp_path) == ALL_DROPINS
    assert [entry['service'] for entry in first['absent']] == ['billing-worker.service']
    assert [diff['after_header'] for diff in first['diff']] == [str(tmp_path / path) for path in ALL_DROPINS]
    assert '--timeout-sec 10 syslog-relay.service 5514/udp\n' in (
        tmp_path / 'syslog-relay.service.d/port-cleanup.conf').read_text()
    assert run_module.calls[0][-4:] == ['--', 'sms-webhook.service', 'syslog-relay.service', 'billing-worker.service']
    assert first['protected'][0]['dropins'] == [str(tmp_path / path) for path in ALL_DROPINS[:2]]
    assert first['systemd_version'] == 252

    second = run_module(args)
    assert second['changed'] is False
    assert second['diff'] == []


def test_check_mode_reports_exactly_and_writes_nothing(run_module, tmp_path):
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), '_ansible_check_mode': True})
    assert result['changed'] is True
    assert len(result['diff']) == 4
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


def test_the_restart_backoff_is_written_only_where_systemd_knows_it(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    run_module(args)
    policy = tmp_path / 'sms-webhook.service.d/restart-policy.conf'
    assert 'RestartSteps' not in policy.read_text()
    run_module.systemd_version = 254
    assert run_module(args)['changed'] is True
    assert 'RestartSteps=5\nRestartMaxDelaySec=30s\n' in policy.read_text()


def test_the_fuser_method_writes_one_command_per_port(run_module, tmp_path):
    run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), 'cleanup_method': 'fuser'})
    assert 'ExecStartPre=-+fuser --kill --namespace udp 5514\n' in (
        tmp_path / 'syslog-relay.service.d/port-cleanup.conf').read_text()


def test_turning_features_off_removes_only_the_collections_own_files(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    run_module(args)
    foreign = tmp_path / 'syslog-relay.service.d/port-cleanup.conf'
    foreign.write_text('[Service]\nExecStartPre=/usr/local/bin/mine\n')
    off = dict(args, cleanup_method='none', restart_policy={'enabled': False})

    checked = run_module(dict(off, _ansible_check_mode=True))
    assert checked['changed'] is True
    assert written(tmp_path) == ALL_DROPINS

    result = run_module(off)
    assert result['changed'] is True
    assert written(tmp_path) == ['syslog-relay.service.d/port-cleanup.conf']
    assert not (tmp_path / 'sms-webhook.service.d').exists()
    assert [diff['after_header'] for diff in result['diff']] == [
        str(tmp_path / path) + ' (removed)' for path in ALL_DROPINS if path != 'syslog-relay.service.d/port-cleanup.conf']
    assert any('left in place' in message for message in run_module.warned)
    assert result['protected'][0]['path'] is None
    assert run_module(off)['changed'] is False


def test_bad_settings_are_all_named_and_nothing_is_touched(run_module, tmp_path):
    result = run_module({
        'registry': REGISTRY, 'unit_dir': str(tmp_path),
        'eviction': {'grace_sec': 0, 'timeout_sec': 900},
        'restart_policy': {'start_limit_burst': 0, 'restart_sec': -1},
    })
    assert result['failed'] is True
    for expected in ('4 bad setting(s)', 'eviction.grace_sec: 0.0 is out of range',
                     'eviction.timeout_sec: 900.0 is out of range', 'restart_policy.start_limit_burst: 0 is out of range',
                     'restart_policy.restart_sec: -1.0 is out of range'):
        assert expected in result['msg']
    assert list(tmp_path.iterdir()) == []
    assert run_module.calls == []


def test_a_missing_helper_python_fails_before_writing(run_module, tmp_path, capsys):
    with patch_module_args({'registry': REGISTRY, 'unit_dir': str(tmp_path),
                            'eviction': {'helper_python': str(tmp_path / 'no-python')}}):
        with pytest.raises(SystemExit):
            unit_guard.main()
    result = json.loads(capsys.readouterr().out)
    assert result['failed'] is True
    assert 'no-python is not an executable on this host' in result['msg']
    assert list(tmp_path.iterdir()) == []


def test_exclusive_removes_the_collections_dropins_of_units_that_left_the_registry(run_module, tmp_path):
    run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    foreign = tmp_path / 'other.service.d/port-cleanup.conf'
    foreign.parent.mkdir()
    foreign.write_text('[Service]\nExecStartPre=/usr/local/bin/mine\n')
    smaller = [entry for entry in REGISTRY if entry['service'] != 'syslog-relay.service']
    run_module.show_output = SHOW_OUTPUT.replace(
        'Id=syslog-relay.service\nLoadState=loaded\nActiveState=active\nNeedDaemonReload=no\n\n', '')

    kept = run_module({'registry': smaller, 'unit_dir': str(tmp_path)})
    assert kept['removed'] == []
    assert 'syslog-relay.service.d/port-cleanup.conf' in written(tmp_path)

    args = {'registry': smaller, 'unit_dir': str(tmp_path), 'exclusive': True}
    checked = run_module(dict(args, _ansible_check_mode=True))
    assert checked['removed'] == [str(tmp_path / 'syslog-relay.service.d/port-cleanup.conf'),
                                  str(tmp_path / 'syslog-relay.service.d/restart-policy.conf')]
    assert 'syslog-relay.service.d/port-cleanup.conf' in written(tmp_path)

    purged = run_module(args)
    assert purged['changed'] is True and purged['daemon_reload'] is True
    assert written(tmp_path) == ['other.service.d/port-cleanup.conf'] + ALL_DROPINS[:2]
    assert run_module(args)['changed'] is False


def test_state_absent_removes_every_dropin_the_collection_wrote_and_nothing_else(run_module, tmp_path):
    run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    foreign = tmp_path / 'sms-webhook.service.d/override.conf'
    foreign.write_text('[Service]\nEnvironment=A=1\n')
    result = run_module({'registry': [], 'unit_dir': str(tmp_path), 'state': 'absent'})
    assert result['removed'] == [str(tmp_path / path) for path in ALL_DROPINS]
    assert result['protected'] == []
    assert written(tmp_path) == ['sms-webhook.service.d/override.conf']
    assert not (tmp_path / 'syslog-relay.service.d').exists()
    assert run_module({'registry': [], 'unit_dir': str(tmp_path), 'state': 'absent'})['changed'] is False


def test_only_ephemeral_ports_draw_a_warning_on_the_host(run_module, monkeypatch, tmp_path):
    # Well-known ports were warned about on the controller; the host's own ephemeral range is checked here.
    monkeypatch.setattr(unit_guard, 'parse_port_range', lambda text: (32768, 60999))
    registry = validate_registry([{'port': 80, 'service': 'sms-webhook'}, {'port': 40000, 'service': 'syslog-relay'}])
    run_module.show_output = SHOW_OUTPUT.rsplit('\n\n', 1)[0]
    assert run_module({'registry': registry, 'unit_dir': str(tmp_path)})['changed'] is True
    assert [message for message in run_module.warned if message.startswith('On this host')] == [
        "On this host, 40000/tcp (syslog-relay.service) is in the ephemeral range 32768-60999: unless it is reserved "
        "(net.ipv4.ip_local_reserved_ports, which harden sets by default), the kernel may hand it out as the source "
        "port of an outgoing connection, which blocks the service's bind"]
