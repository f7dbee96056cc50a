# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import fnmatch
import json
import os
import socket
import sys

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qwf.collision_guard.plugins.module_utils import _ownership, _sockets
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry
from ansible_collections.qwf.collision_guard.plugins.modules import guard_dropins

REGISTRY = validate_registry([
    {'port': 8765, 'service': 'sms-webhook'},
    {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
    {'port': 9100, 'service': 'billing-worker'},
])

# What systemctl show prints for a unit it does not know.
NOT_FOUND = {'LoadState': 'not-found', 'ActiveState': 'inactive', 'NeedDaemonReload': 'no'}


class FakeSystemd(object):
    """The host's systemd as the module asks it: show, list-units, list-sockets and --version.

    ``units`` maps a unit's canonical name to its properties; aliases are the
    extra words of its ``Names``. ``socket_lines`` is what list-sockets prints.
    """

    def __init__(self, lib):
        self.lib = lib
        self.units = {}
        self.socket_lines = []
        self.version = 252
        self.calls = []

    def add(self, name, **props):
        """A loaded unit, its unit file under ``lib`` unless FragmentPath says otherwise."""
        values = {'Id': name, 'Names': name, 'LoadState': 'loaded', 'ActiveState': 'active',
                  'Type': 'simple' if name.endswith('.service') else '', 'ConsistsOf': '', 'TriggeredBy': '',
                  'Triggers': '', 'FragmentPath': str(self.lib / name), 'DropInPaths': '', 'MainPID': '0',
                  'Restart': 'no', 'NeedDaemonReload': 'no'}
        values.update(props)
        self.units[name] = values
        return values

    def lookup(self, name):
        for props in self.units.values():
            if name in props['Names'].split():
                return props
        return dict(NOT_FOUND, Id=name, Names=name)

    def show(self, properties, names):
        # One block per unit, in the order asked, a blank line between them;
        # an alias answers with the properties of the unit it names.
        blocks = ['\n'.join('%s=%s' % (key, self.lookup(name).get(key, '')) for key in properties) for name in names]
        return '\n\n'.join(blocks) + '\n'

    def list_units(self, patterns):
        return ''.join('%s loaded %s running %s\n' % (name, props['ActiveState'], name)
                       for name, props in sorted(self.units.items())
                       if name.endswith('.service') and props['LoadState'] != 'not-found'
                       and any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns))

    def __call__(self, argv):
        self.calls.append(argv)
        assert argv[0].endswith('systemctl'), argv
        if argv[1:] == ['--version']:
            return 0, 'systemd %d (%d.1-1)\n+PAM +AUDIT\n' % (self.version, self.version), ''
        if argv[1] == 'show':
            assert argv[2].startswith('--property=') and argv[3] == '--', argv
            return 0, self.show(argv[2][len('--property='):].split(','), argv[4:]), ''
        if argv[1] == 'list-units':
            assert '--type=service' in argv, argv
            return 0, self.list_units(argv[argv.index('--') + 1:]), ''
        if argv[1] == 'list-sockets':
            return 0, ''.join(line + '\n' for line in self.socket_lines), ''
        raise AssertionError('unexpected command %r' % (argv,))


def listener(unit, port, protocol='tcp', pid=4242, address='0.0.0.0', name='python3', user_manager=None):
    """One socket as ``_sockets.read_listeners`` describes it."""
    family = 'ipv6' if ':' in address else 'ipv4'
    return {'protocol': protocol, 'family': family, 'address': address, 'port': port,
            'remote_address': '::' if family == 'ipv6' else '0.0.0.0', 'remote_port': 0,
            'state': 'LISTEN' if protocol == 'tcp' else 'UNCONN', 'uid': 0, 'inode': port * 100000 + pid,
            'v6only': None, 'dual_stack': None if address == '::' else False, 'pid': pid, 'ppid': 1, 'session': None,
            'name': name, 'user': 'root', 'cmdline': [name], 'exe': '/usr/bin/' + name, 'unit': unit,
            'user_manager': user_manager, 'container': None}


@pytest.fixture
def run_module(monkeypatch, capsys, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('helper')
    # The helper as the harden role installs it.
    (tmp_path / 'helper').mkdir()
    (tmp_path / 'helper' / 'collision-guard-evict').write_text('')
    systemd = FakeSystemd(tmp_path_factory.mktemp('lib'))
    systemd.add('sms-webhook.service')
    systemd.add('syslog-relay.service')

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, argv, *args, **kwargs: systemd(argv))
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, required=False: '/usr/bin/' + name)

    def read_listeners(port=None, protocol=None, include_non_listening=False, proc='/proc', targets=None, bound_ports=()):
        run.targets.append(targets)
        # Copies: the survey names the socket units of PID 1's sockets in place.
        return [copy.deepcopy(item) for item in run.listeners
                if targets is None or (item['port'], item['protocol']) in targets], True

    monkeypatch.setattr(_ownership, 'read_listeners', read_listeners)
    # The units of the Ansible connection: a local one here, unless a test says otherwise.
    monkeypatch.setattr(guard_dropins, 'ancestor_units', lambda pid, proc='/proc': list(run.connection))

    def run(args):
        # The helper's Python must exist on the host; this test's own does.
        args = dict(args, eviction=dict(args.get('eviction', {}), helper_python=sys.executable,
                                        helper_dir=str(tmp_path / 'helper')))
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                guard_dropins.main()
        return json.loads(capsys.readouterr().out)

    # Recorded here: where warnings end up depends on what else the test
    # process has imported (controller code reroutes them).
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warned.append(message))
    run.systemd = systemd
    run.helper = tmp_path / 'helper' / 'collision-guard-evict'
    run.calls = systemd.calls
    run.warned = warned
    run.listeners = []
    run.targets = []
    run.connection = ['session-3.scope']
    return run


ALL_DROPINS = [
    'sms-webhook.service.d/port-cleanup.conf',
    'sms-webhook.service.d/restart-policy.conf',
    'syslog-relay.service.d/port-cleanup.conf',
    'syslog-relay.service.d/restart-policy.conf',
]


def written(tmp_path):
    return sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*.conf'))


def commands(calls, verb):
    return [argv for argv in calls if argv[1] == verb]


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
    # Only the registered ports of the units present are read.
    assert run_module.targets == [{(8765, 'tcp'), (5514, 'udp')}]
    assert first['protected'][0] == {
        'service': 'sms-webhook.service', 'changed': True, 'load_state': 'loaded', 'active_state': 'active',
        'path': str(tmp_path / ALL_DROPINS[0]), 'dropins': [str(tmp_path / path) for path in ALL_DROPINS[:2]],
        'ports': ['8765/tcp'], 'sockets': [], 'socket_activated': False, 'registered_as': ['sms-webhook.service'],
        'restart_note': None, 'private_tmp': False, 'pid_files': []}
    assert first['registry'] == REGISTRY[:2]
    assert first['systemd_version'] == 252
    assert run_module.warned == []

    second = run_module(args)
    assert second['changed'] is False
    assert second['diff'] == []


def test_check_mode_reports_exactly_and_writes_nothing(run_module, tmp_path):
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), '_ansible_check_mode': True})
    assert result['changed'] is True
    assert len(result['diff']) == 4
    assert result['diff'][0]['before'] == ''
    assert result['registry'] == REGISTRY[:2]
    assert list(tmp_path.iterdir()) == []
    assert run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})['diff'] == result['diff']


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
    run_module.systemd.units['sms-webhook.service']['NeedDaemonReload'] = 'yes'
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
    result = run_module({'registry': [{'port': '8765', 'service': 'sms-webhook'}], 'unit_dir': str(tmp_path)})
    assert result['protected'][0]['path'].endswith('/sms-webhook.service.d/port-cleanup.conf')
    assert result['registry'] == [{'port': 8765, 'service': 'sms-webhook.service', 'protocol': 'tcp',
                                   'address': None, 'restart': '', 'evict_holders': [], 'private_tmp': False,
                                   'pid_files': [], 'notes': ''}]


def test_the_restart_backoff_is_written_only_where_systemd_knows_it(run_module, tmp_path):
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    run_module(args)
    policy = tmp_path / 'sms-webhook.service.d/restart-policy.conf'
    assert 'RestartSteps' not in policy.read_text()
    run_module.systemd.version = 254
    assert run_module(args)['changed'] is True
    assert 'RestartSteps=5\nRestartMaxDelaySec=30s\n' in policy.read_text()


def test_the_fuser_method_writes_one_command_per_port(run_module, tmp_path):
    run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), 'cleanup_method': 'fuser'})
    assert 'ExecStartPre=-+fuser --kill --namespace udp 5514\n' in (
        tmp_path / 'syslog-relay.service.d/port-cleanup.conf').read_text()


def test_the_fuser_method_refuses_an_entry_with_an_address(run_module, tmp_path):
    registry = validate_registry([{'port': 8765, 'service': 'sms-webhook', 'address': '127.0.0.2'}])
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path), 'cleanup_method': 'fuser'})
    assert result['failed'] is True
    assert ('sms-webhook.service: the fuser method kills by port alone and cannot spare the other addresses of '
            '127.0.0.2:8765/tcp; use the evict method') in result['msg']
    assert list(tmp_path.iterdir()) == []


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


def test_a_bad_never_evict_glob_is_named_and_nothing_is_touched(run_module, tmp_path):
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), 'never_evict': ['ssh.service', 'a b']})
    assert result['failed'] is True
    assert 'never_evict has 1 bad value(s)' in result['msg']
    assert "never_evict[1]: 'a b'" in result['msg']
    assert list(tmp_path.iterdir()) == []
    assert run_module.calls == []


def test_a_missing_helper_python_fails_before_writing(run_module, tmp_path, capsys):
    with patch_module_args({'registry': REGISTRY, 'unit_dir': str(tmp_path),
                            'eviction': {'helper_python': str(tmp_path / 'no-python')}}):
        with pytest.raises(SystemExit):
            guard_dropins.main()
    result = json.loads(capsys.readouterr().out)
    assert result['failed'] is True
    assert 'no-python is not an executable on this host' in result['msg']
    assert list(tmp_path.iterdir()) == []


def test_a_missing_helper_draws_a_warning_except_in_check_mode(run_module, tmp_path):
    run_module.helper.unlink()
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    run_module(dict(args, _ansible_check_mode=True))
    assert run_module.warned == []
    assert run_module(args)['changed'] is True
    assert run_module.warned == [
        'The eviction helper %s is not installed; starts of the protected units fail until it is (the '
        'qwf.collision_guard.harden role installs it).' % run_module.helper]
    del run_module.warned[:]
    run_module(dict(args, cleanup_method='fuser'))
    assert run_module.warned == []


def test_exclusive_removes_the_collections_dropins_of_units_that_left_the_registry(run_module, tmp_path):
    run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    foreign = tmp_path / 'other.service.d/port-cleanup.conf'
    foreign.parent.mkdir()
    foreign.write_text('[Service]\nExecStartPre=/usr/local/bin/mine\n')
    smaller = [entry for entry in REGISTRY if entry['service'] != 'syslog-relay.service']

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


def test_exclusive_also_removes_the_units_that_left_the_host(run_module, tmp_path):
    run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    del run_module.systemd.units['syslog-relay.service']
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), 'exclusive': True})
    assert [entry['service'] for entry in result['absent']] == ['syslog-relay.service', 'billing-worker.service']
    assert result['removed'] == [str(tmp_path / path) for path in ALL_DROPINS[2:]]
    assert written(tmp_path) == ALL_DROPINS[:2]


def test_state_absent_removes_every_dropin_the_collection_wrote_and_nothing_else(run_module, tmp_path):
    run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    foreign = tmp_path / 'sms-webhook.service.d/override.conf'
    foreign.write_text('[Service]\nEnvironment=A=1\n')
    del run_module.calls[:]
    del run_module.targets[:]
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), 'state': 'absent'})
    assert result['removed'] == [str(tmp_path / path) for path in ALL_DROPINS]
    assert result['protected'] == [] and result['registry'] == [] and result['absent'] == []
    assert written(tmp_path) == ['sms-webhook.service.d/override.conf']
    assert not (tmp_path / 'syslog-relay.service.d').exists()
    # Whatever the registry says: systemd is asked nothing about it, and no socket is read.
    assert [argv[1:] for argv in run_module.calls] == [['--version']]
    assert run_module.targets == []
    assert run_module({'registry': [], 'unit_dir': str(tmp_path), 'state': 'absent'})['changed'] is False


def test_only_ephemeral_ports_draw_a_warning_on_the_host(run_module, monkeypatch, tmp_path):
    # Well-known ports were warned about on the controller; the host's own ephemeral range is checked here.
    monkeypatch.setattr(guard_dropins, 'parse_port_range', lambda text: (32768, 60999))
    registry = validate_registry([{'port': 80, 'service': 'sms-webhook'}, {'port': 40000, 'service': 'syslog-relay'}])
    assert run_module({'registry': registry, 'unit_dir': str(tmp_path)})['changed'] is True
    assert [message for message in run_module.warned if message.startswith('On this host')] == [
        "On this host, 40000/tcp (syslog-relay.service) is in the ephemeral range 32768-60999: unless it is reserved "
        "(net.ipv4.ip_local_reserved_ports, which harden sets by default), the kernel may hand it out as the source "
        "port of an outgoing connection, which blocks the service's bind"]


# Resolving the registry on the host: aliases, globs.

def test_an_alias_gets_the_dropins_of_the_unit_it_names(run_module, tmp_path):
    run_module.systemd.add('redis-server.service', Names='redis-server.service redis.service')
    run_module.listeners = [listener('redis-server.service', 6379, pid=812, name='redis-server'),
                            listener('redis-server.service', 6379, pid=812, address='::', name='redis-server')]
    result = run_module({'registry': [{'port': 6379, 'service': 'redis'}], 'unit_dir': str(tmp_path)})
    assert result['changed'] is True
    assert written(tmp_path) == ['redis-server.service.d/port-cleanup.conf', 'redis-server.service.d/restart-policy.conf']
    assert (tmp_path / 'redis-server.service.d/port-cleanup.conf').read_text().endswith(
        ' --timeout-sec 10 redis-server.service 6379/tcp\n')
    assert [(item['service'], item['registered_as']) for item in result['protected']] == [
        ('redis-server.service', ['redis.service'])]
    assert [entry['service'] for entry in result['registry']] == ['redis-server.service']
    assert result['absent'] == []
    assert run_module.warned == []


def test_a_glob_that_fits_one_loaded_unit_resolves_to_it(run_module, tmp_path):
    run_module.systemd.add('postgresql@15-main.service')
    run_module.systemd.add('postgresql@13-old.service')
    run_module.listeners = [listener('postgresql@15-main.service', 5432, pid=900, name='postgres')]
    result = run_module({'registry': [{'port': 5432, 'service': 'postgresql@*-main'}], 'unit_dir': str(tmp_path)})
    assert result['changed'] is True
    [list_units] = commands(run_module.calls, 'list-units')
    assert list_units[-2:] == ['--', 'postgresql@*-main.service']
    assert written(tmp_path) == ['postgresql@15-main.service.d/port-cleanup.conf',
                                 'postgresql@15-main.service.d/restart-policy.conf']
    assert result['registry'] == [{'port': 5432, 'service': 'postgresql@15-main.service', 'protocol': 'tcp',
                                   'address': None, 'restart': '', 'evict_holders': [], 'private_tmp': False,
                                   'pid_files': [], 'notes': ''}]
    assert result['protected'][0]['registered_as'] == ['postgresql@*-main.service']


def test_a_glob_that_fits_no_loaded_unit_is_absent(run_module, tmp_path):
    result = run_module({'registry': [{'port': 5432, 'service': 'postgresql@*-main'}], 'unit_dir': str(tmp_path)})
    assert result['changed'] is False
    assert [entry['service'] for entry in result['absent']] == ['postgresql@*-main.service']
    assert result['registry'] == [] and result['protected'] == []
    assert list(tmp_path.iterdir()) == []


def test_a_glob_that_fits_two_units_fails_naming_both_and_writes_nothing(run_module, tmp_path):
    run_module.systemd.add('postgresql@15-main.service')
    run_module.systemd.add('postgresql@16-main.service')
    registry = [{'port': 5432, 'service': 'postgresql@*-main'}, {'port': 8765, 'service': 'sms-webhook'}]
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path)})
    assert result['failed'] is True
    assert 'the registry does not fit this host; nothing was changed' in result['msg']
    assert ('postgresql@*-main.service fits 2 loaded units here (postgresql@15-main.service, '
            'postgresql@16-main.service)') in result['msg']
    assert list(tmp_path.iterdir()) == []


# Looking before arming.

def test_a_oneshot_wrapper_fails_naming_the_member_to_register(run_module, tmp_path):
    # Debian's postgresql.service runs /bin/true; its member postgresql@15-main.service is the server.
    run_module.systemd.add('postgresql.service', Type='oneshot', ConsistsOf='postgresql@15-main.service',
                           FragmentPath='/lib/systemd/system/postgresql.service')
    run_module.systemd.add('postgresql@15-main.service', FragmentPath='/lib/systemd/system/postgresql@.service')
    run_module.listeners = [listener('postgresql@15-main.service', 5432, pid=900, name='postgres'),
                            listener('postgresql@15-main.service', 5432, pid=900, address='::1', name='postgres')]
    result = run_module({'registry': REGISTRY + [{'port': 5432, 'service': 'postgresql'}], 'unit_dir': str(tmp_path)})
    assert result['failed'] is True
    assert 'the registered ports cannot be armed on this host (1 problem(s)); nothing was changed' in result['msg']
    assert ('5432/tcp (postgresql.service): postgresql.service is a oneshot wrapper (Type=oneshot) that holds no port '
            'itself; its member postgresql@15-main.service holds the port. Register postgresql@15-main.service '
            'instead') in result['msg']
    assert list(tmp_path.iterdir()) == []


SSH = {'FragmentPath': '/lib/systemd/system/ssh.service', 'Names': 'ssh.service sshd.service'}


def ssh_on_22(run_module):
    run_module.systemd.add('redis-server.service')
    run_module.systemd.add('ssh.service', **SSH)
    run_module.listeners = [listener('ssh.service', 22, pid=700, name='sshd'),
                            listener('ssh.service', 22, pid=700, address='::', name='sshd')]


def test_a_port_held_by_a_packaged_service_fails_naming_it_and_writes_nothing(run_module, tmp_path):
    ssh_on_22(run_module)
    result = run_module({'registry': [{'port': 22, 'service': 'redis-server'}], 'unit_dir': str(tmp_path)})
    assert result['failed'] is True
    # Held on IPv4 and IPv6 by one process: one problem.
    assert 'cannot be armed on this host (1 problem(s)); nothing was changed' in result['msg']
    assert result['msg'].count('is held by ssh.service (pid 700)') == 1
    assert ("22/tcp (redis-server.service) is held by ssh.service (pid 700), which is neither redis-server.service "
            "nor part of it: ssh.service is never evicted (collision_guard_never_evict: ssh.service)") in result['msg']
    assert "add ssh.service to the entry's evict_holders" in result['msg']
    assert list(tmp_path.iterdir()) == []


def test_evict_holders_arms_against_a_named_holder(run_module, tmp_path):
    ssh_on_22(run_module)
    registry = [{'port': 22, 'service': 'redis-server', 'evict_holders': ['ssh']}]
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path)})
    assert result['changed'] is True
    assert written(tmp_path) == ['redis-server.service.d/port-cleanup.conf', 'redis-server.service.d/restart-policy.conf']
    assert result['registry'][0]['evict_holders'] == ['ssh.service']
    # never_evict still spares it, and the warning says the start will fail instead.
    assert run_module.warned == [
        '22/tcp (redis-server.service) is held by ssh.service (pid 700), which evict_holders names: yet the helper '
        'will not evict it: ssh.service is never evicted (collision_guard_never_evict: ssh.service)']

    del run_module.warned[:]
    assert run_module({'registry': registry, 'unit_dir': str(tmp_path), 'never_evict': []})['changed'] is False
    assert run_module.warned == [
        '22/tcp (redis-server.service) is held by ssh.service (pid 700), which evict_holders names: the next start '
        'of redis-server.service evicts it']


def test_the_unit_of_the_ansible_connection_is_never_armed_against(run_module, tmp_path):
    ssh_on_22(run_module)
    run_module.connection = ['session-3.scope', 'ssh.service']
    registry = [{'port': 22, 'service': 'redis-server', 'evict_holders': ['ssh.service']}]
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path), 'never_evict': []})
    assert result['failed'] is True
    assert ('22/tcp (redis-server.service) is held by ssh.service (pid 700), a unit of this Ansible connection; '
            'it is never armed against it') in result['msg']
    assert list(tmp_path.iterdir()) == []


def test_a_squatter_in_a_login_session_only_draws_a_warning(run_module, tmp_path):
    run_module.listeners = [listener('sms-webhook.service', 8765, pid=10),
                            listener('session-7.scope', 8765, pid=4242, address='::')]
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    assert result['changed'] is True
    assert run_module.warned == [
        '8765/tcp (sms-webhook.service) is held by session-7.scope (pid 4242) now; the next start of '
        'sms-webhook.service evicts it']


def test_a_socket_on_another_address_is_no_collision(run_module, tmp_path):
    registry = validate_registry([{'port': 53, 'service': 'sms-webhook', 'protocol': 'udp', 'address': '127.0.0.2'}])
    run_module.systemd.add('systemd-resolved.service', FragmentPath='/lib/systemd/system/systemd-resolved.service')
    run_module.listeners = [listener('systemd-resolved.service', 53, protocol='udp', pid=300, address='127.0.0.53')]
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path)})
    assert result['changed'] is True
    assert result['protected'][0]['ports'] == ['127.0.0.2:53/udp']
    assert (tmp_path / 'sms-webhook.service.d/port-cleanup.conf').read_text().endswith(
        ' sms-webhook.service 127.0.0.2:53/udp\n')
    assert run_module.warned == []


def test_real_sockets_of_this_machine_are_read(run_module, monkeypatch, tmp_path):
    # No fixture listeners: this test's own socket, as the kernel and /proc show it.
    monkeypatch.setattr(_ownership, 'read_listeners', _sockets.read_listeners)
    me = _sockets.describe_process(os.getpid(), _sockets.cgroup_root())
    if me['unit'] and me['unit'].endswith('.service') and not me['user_manager']:
        pytest.skip('this test runs inside %s, a system service, which guard_dropins would refuse to arm against'
                    % me['unit'])
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        held.bind(('127.0.0.1', 0))
        held.listen(1)
        port = held.getsockname()[1]
        elsewhere = run_module({'registry': [{'port': port, 'service': 'sms-webhook', 'address': '127.0.0.2'}],
                                'unit_dir': str(tmp_path), '_ansible_check_mode': True})
        assert elsewhere['changed'] is True
        # The port is a free one the kernel chose, so it may be in the ephemeral range.
        assert [message for message in run_module.warned if not message.startswith('On this host')] == []
        del run_module.warned[:]

        result = run_module({'registry': [{'port': port, 'service': 'sms-webhook'}], 'unit_dir': str(tmp_path),
                             '_ansible_check_mode': True})
    finally:
        held.close()
    assert result['changed'] is True
    [warning] = [message for message in run_module.warned if not message.startswith('On this host')]
    assert warning.startswith('%d/tcp (sms-webhook.service) is held by ' % port)
    assert warning.endswith('(pid %d) now; the next start of sms-webhook.service evicts it' % os.getpid())


# Socket units.

def socket_activated(run_module, port=8765, active='active'):
    run_module.systemd.units['sms-webhook.service'].update(TriggeredBy='sms-webhook.socket', ActiveState='inactive')
    run_module.systemd.add('sms-webhook.socket', Triggers='sms-webhook.service', ActiveState=active)
    run_module.systemd.socket_lines = ['0.0.0.0:%d Stream sms-webhook.socket sms-webhook.service' % port,
                                       '[::]:%d Stream sms-webhook.socket sms-webhook.service' % port,
                                       '/run/dbus/system_bus_socket Stream dbus.socket dbus.service']
    # PID 1 holds the listening socket of a socket unit.
    run_module.listeners = [listener(None, port, pid=1, name='systemd'),
                            listener(None, port, pid=1, address='::', name='systemd')]


def test_a_socket_unit_that_starts_the_service_gets_its_own_dropin(run_module, tmp_path):
    socket_activated(run_module)
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    result = run_module(args)
    assert result['changed'] is True
    assert written(tmp_path) == sorted(ALL_DROPINS + ['sms-webhook.socket.d/port-cleanup.conf'])
    content = (tmp_path / 'sms-webhook.socket.d/port-cleanup.conf').read_text()
    assert '\n[Socket]\nExecStartPre=+' in content
    assert content.endswith(' --timeout-sec 10 --starting sms-webhook.socket sms-webhook.service 8765/tcp\n')
    assert '[Service]' in (tmp_path / 'sms-webhook.service.d/port-cleanup.conf').read_text()
    webhook = result['protected'][0]
    assert (webhook['service'], webhook['sockets'], webhook['socket_activated'], webhook['active_state']) == (
        'sms-webhook.service', ['sms-webhook.socket'], True, 'inactive')
    assert webhook['path'] == str(tmp_path / 'sms-webhook.service.d/port-cleanup.conf')
    assert webhook['dropins'] == [str(tmp_path / path) for path in ALL_DROPINS[:2]] + [
        str(tmp_path / 'sms-webhook.socket.d/port-cleanup.conf')]
    assert result['protected'][1]['sockets'] == []
    assert run_module.warned == []

    assert run_module(args)['changed'] is False
    run_module.systemd.units['sms-webhook.socket']['NeedDaemonReload'] = 'yes'
    assert run_module(args)['daemon_reload'] is True


def test_a_socket_unit_on_another_port_gets_no_dropin_and_loses_an_old_one(run_module, tmp_path):
    socket_activated(run_module, active='inactive')
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    assert run_module(args)['protected'][0]['socket_activated'] is False
    assert 'sms-webhook.socket.d/port-cleanup.conf' in written(tmp_path)

    # The socket unit now listens elsewhere: its drop-in would free a port that is not its own.
    socket_activated(run_module, port=9999)
    result = run_module(args)
    assert result['changed'] is True
    assert written(tmp_path) == ALL_DROPINS
    assert result['protected'][0]['sockets'] == []
    assert result['protected'][0]['changed'] is True
    assert [diff['after_header'] for diff in result['diff']] == [
        str(tmp_path / 'sms-webhook.socket.d/port-cleanup.conf') + ' (removed)']
    assert run_module(args)['changed'] is False


def test_a_socket_units_own_foreign_dropin_is_left_alone(run_module, tmp_path):
    socket_activated(run_module, port=9999)
    foreign = tmp_path / 'sms-webhook.socket.d/port-cleanup.conf'
    foreign.parent.mkdir()
    foreign.write_text('[Socket]\nExecStartPre=/usr/local/bin/mine\n')
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    assert result['changed'] is True
    assert foreign.read_text() == '[Socket]\nExecStartPre=/usr/local/bin/mine\n'
    assert run_module.warned == []


def test_cleanup_none_removes_the_socket_dropin_too(run_module, tmp_path):
    socket_activated(run_module)
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path)}
    run_module(args)
    result = run_module(dict(args, cleanup_method='none'))
    assert result['changed'] is True
    assert written(tmp_path) == [path for path in ALL_DROPINS if path.endswith('restart-policy.conf')]


# Restart=.

def test_a_units_own_restart_always_is_not_weakened(run_module, tmp_path):
    unit_file = run_module.systemd.lib / 'sms-webhook.service'
    unit_file.write_text('[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/bin/sms-webhook\nRestart=always\n')
    args = {'registry': REGISTRY, 'unit_dir': str(tmp_path), 'restart_policy': {'restart': 'on-failure'}}
    result = run_module(args)
    assert result['changed'] is True
    kept = (tmp_path / 'sms-webhook.service.d/restart-policy.conf').read_text()
    assert '\nRestart=' not in kept
    assert '\nRestart=on-failure\n' in (tmp_path / 'syslog-relay.service.d/restart-policy.conf').read_text()
    note = 'keeps its own Restart=always: Restart=on-failure would not restart it after some exits that it does'
    assert run_module.warned == ['sms-webhook.service ' + note]
    assert [item['restart_note'] for item in result['protected']] == [note, None]

    # A drop-in of the unit's own counts too, in systemd's order.
    override = run_module.systemd.lib / 'sms-webhook.service.d' / 'override.conf'
    override.parent.mkdir()
    override.write_text('[Service]\nRestart=on-abort\n')
    run_module.systemd.units['sms-webhook.service']['DropInPaths'] = str(override)
    assert run_module(args)['changed'] is True
    assert '\nRestart=on-failure\n' in (tmp_path / 'sms-webhook.service.d/restart-policy.conf').read_text()


def test_an_entrys_restart_wins_and_the_collections_own_dropin_is_not_the_units_own(run_module, tmp_path):
    ours = tmp_path / 'sms-webhook.service.d/restart-policy.conf'
    vendor = run_module.systemd.lib / 'sms-webhook.service.d' / 'restart-policy.conf'
    run_module.systemd.units['sms-webhook.service']['DropInPaths'] = str(ours)
    registry = [{'port': 8765, 'service': 'sms-webhook', 'restart': 'always'}]
    args = {'registry': registry, 'unit_dir': str(tmp_path), 'restart_policy': {'restart': 'on-failure'}}
    run_module(args)
    assert '\nRestart=always\n' in ours.read_text()

    # Our own Restart=always is not the unit's: lowering the entry's is no weakening.
    lowered = dict(args, registry=[{'port': 8765, 'service': 'sms-webhook'}])
    result = run_module(lowered)
    assert result['changed'] is True
    assert '\nRestart=on-failure\n' in ours.read_text()
    assert run_module.warned == []

    # A file of the same name elsewhere is the unit's own.
    vendor.parent.mkdir()
    vendor.write_text('[Service]\nRestart=always\n')
    run_module.systemd.units['sms-webhook.service']['DropInPaths'] = '%s %s' % (vendor, ours)
    result = run_module(lowered)
    assert '\nRestart=' not in ours.read_text()
    assert result['protected'][0]['restart_note'].startswith('keeps its own Restart=always')


def test_no_restart_policy_reads_no_unit_file(run_module, monkeypatch, tmp_path):
    monkeypatch.setattr(guard_dropins, 'own_restart', lambda *args: pytest.fail('read a unit file'))
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), 'restart_policy': {'enabled': False}})
    assert written(tmp_path) == [path for path in ALL_DROPINS if path.endswith('port-cleanup.conf')]
    assert [item['restart_note'] for item in result['protected']] == [None, None]


def test_the_returned_registry_holds_canonical_names(run_module, tmp_path):
    run_module.systemd.add('redis-server.service', Names='redis-server.service redis.service')
    run_module.systemd.add('postgresql@15-main.service')
    registry = [{'port': 6379, 'service': 'redis', 'notes': 'cache'},
                {'port': 5432, 'service': 'postgresql@*-main'},
                {'port': 8765, 'service': 'sms-webhook.service'},
                {'port': 9100, 'service': 'billing-worker'}]
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path), '_ansible_check_mode': True})
    assert [(entry['service'], entry['port'], entry['notes']) for entry in result['registry']] == [
        ('redis-server.service', 6379, 'cache'), ('postgresql@15-main.service', 5432, ''),
        ('sms-webhook.service', 8765, '')]
    assert [entry['service'] for entry in result['absent']] == ['billing-worker.service']
    # The host's registry file: the present entries by their canonical names, then the absent ones.
    assert [entry['service'] for entry in result['host_registry']] == [
        'redis-server.service', 'postgresql@15-main.service', 'sms-webhook.service', 'billing-worker.service']
    assert [(item['service'], item['registered_as']) for item in result['protected']] == [
        ('redis-server.service', ['redis.service']), ('postgresql@15-main.service', ['postgresql@*-main.service']),
        ('sms-webhook.service', ['sms-webhook.service'])]


def test_entries_that_meet_on_one_unit_must_agree_on_its_restart(run_module, tmp_path):
    run_module.systemd.add('redis-server.service', Names='redis-server.service redis.service')
    registry = [{'port': 6379, 'service': 'redis', 'restart': 'always'},
                {'port': 6380, 'service': 'redis-server', 'restart': 'on-failure'}]
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path)})
    assert result['failed'] is True
    assert 'redis-server.service is given different restart values here (always, on-failure)' in result['msg']
    assert list(tmp_path.iterdir()) == []


def test_private_tmp_and_pid_files_are_written_kept_out_of_the_host_registry_and_removed(run_module, tmp_path):
    registry = validate_registry([
        {'port': 8765, 'service': 'sms-webhook', 'private_tmp': True, 'pid_files': ['/run/sms.pid']},
        {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
    ])
    args = {'registry': registry, 'unit_dir': str(tmp_path)}
    first = run_module(args)
    assert written(tmp_path) == sorted(ALL_DROPINS + ['sms-webhook.service.d/private-tmp.conf'])
    assert (tmp_path / 'sms-webhook.service.d/private-tmp.conf').read_text().endswith('[Service]\nPrivateTmp=yes\n')
    assert '--pid-file /run/sms.pid sms-webhook.service 8765/tcp\n' in (
        tmp_path / 'sms-webhook.service.d/port-cleanup.conf').read_text()
    assert first['protected'][0]['private_tmp'] is True and first['protected'][0]['pid_files'] == ['/run/sms.pid']
    # harden never restarts a unit; the running one is told when the new /tmp comes.
    assert run_module.warned == ['sms-webhook.service gets a /tmp of its own at its next start (systemctl restart '
                                 'sms-webhook.service); until then it keeps the /tmp it started with']
    # The registry file keeps the settings of the unit that has them, and no defaults an earlier helper would refuse.
    assert first['host_registry'][0]['private_tmp'] is True
    assert 'private_tmp' not in first['host_registry'][1] and 'pid_files' not in first['host_registry'][1]

    del run_module.warned[:]
    assert run_module(args)['changed'] is False
    assert run_module.warned == []

    # Left out of the registry, the unit's private /tmp goes; a unit that is not running is not told to restart.
    run_module.systemd.units['sms-webhook.service']['ActiveState'] = 'inactive'
    third = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path)})
    assert third['changed'] is True
    assert written(tmp_path) == ALL_DROPINS
    assert '--pid-file' not in (tmp_path / 'sms-webhook.service.d/port-cleanup.conf').read_text()
    assert run_module.warned == []


def test_state_absent_removes_a_private_tmp_dropin_too(run_module, tmp_path):
    registry = validate_registry([{'port': 8765, 'service': 'sms-webhook', 'private_tmp': True}])
    run_module({'registry': registry, 'unit_dir': str(tmp_path)})
    assert (tmp_path / 'sms-webhook.service.d/private-tmp.conf').exists()
    result = run_module({'registry': registry, 'unit_dir': str(tmp_path), 'state': 'absent'})
    assert str(tmp_path / 'sms-webhook.service.d/private-tmp.conf') in result['removed']
    assert written(tmp_path) == []


def test_the_plan_probes_files_directory_chains_and_units_in_the_same_run(run_module, tmp_path):
    import hashlib
    (tmp_path / 'registry.json').write_text('{}\n')
    run_module.systemd.add('collision-guard-monitor.timer', UnitFileState='enabled')
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), '_ansible_check_mode': True,
                         'probe_files': [str(tmp_path / 'registry.json'), str(tmp_path / 'missing')],
                         'probe_chains': [str(tmp_path)],
                         'probe_units': ['collision-guard-monitor.timer']})
    assert result['probed_files'][str(tmp_path / 'registry.json')]['sha1'] == hashlib.sha1(b'{}\n').hexdigest()
    assert result['probed_files'][str(tmp_path / 'missing')] == {'exists': False, 'path': str(tmp_path / 'missing')}
    chain = result['probed_chains'][str(tmp_path)]
    assert chain[0]['path'] == '/' and chain[-1]['path'] == str(tmp_path) and chain[-1]['type'] == 'directory'
    assert result['probed_units'] == {'collision-guard-monitor.timer': {
        'LoadState': 'loaded', 'ActiveState': 'active', 'UnitFileState': 'enabled'}}
    # The units cost one question to systemd; nothing asked, nothing probed and no such question.
    probed_shows = len(commands(run_module.calls, 'show'))
    del run_module.calls[:]
    plain = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), '_ansible_check_mode': True})
    assert (plain['probed_files'], plain['probed_chains'], plain['probed_units']) == ({}, {}, {})
    assert probed_shows - len(commands(run_module.calls, 'show')) == 1


def test_a_bad_unit_name_to_probe_is_refused_by_name(run_module, tmp_path, capsys):
    result = run_module({'registry': REGISTRY, 'unit_dir': str(tmp_path), 'probe_units': ['bad/name.timer']})
    assert result['failed'] is True
    assert 'probe_units: ' in result['msg'] and written(tmp_path) == []
