# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Prevention in check.yml: port_ownership_info's prevent_in and prevention, and the check_table filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qwf.collision_guard.plugins.filter.check_table import FilterModule
from ansible_collections.qwf.collision_guard.plugins.module_utils import _monitor
from ansible_collections.qwf.collision_guard.plugins.modules import port_ownership_info

REGISTRY = [{'port': 8765, 'protocol': 'tcp', 'service': 'sms-webhook.service'}]
MALLORY = {'pid': 4242, 'name': 'python3', 'user': 'mallory', 'unit': 'run-u7.service', 'container': None,
           'cmdline': ['python3', '-m', 'http.server', '8765'], 'reason': 'not registered for this port'}
SQUATTED = {'port': 8765, 'protocol': 'tcp', 'address': None, 'service': 'sms-webhook.service', 'severity': 'critical',
            'holders': [MALLORY], 'message': 'held by run-u7.service (pid 4242), not by sms-webhook.service'}
ARMED = {'state': 'active', 'summary': 'active', 'units': ['user.slice'], 'rules': ['tcp:8765']}


@pytest.fixture
def host(monkeypatch, capsys):
    """port_ownership_info on a host where mallory's transient unit in user.slice holds 8765."""
    seen = {'record': ARMED, 'outcome': 'allowed', 'warned': [], 'asked': []}
    monkeypatch.setattr(port_ownership_info, 'module_systemd', lambda module: (None, None))
    monkeypatch.setattr(port_ownership_info, 'gather_findings',
                        lambda registry, show, run: ([dict(SQUATTED)], [], True, [], True))
    monkeypatch.setattr(port_ownership_info, 'guard_status', lambda: (True, []))

    def record(prevent_in):
        seen['asked'].append(prevent_in)
        return _monitor.prevention_record(seen['record']) if prevent_in else _monitor.prevention_record(None)
    monkeypatch.setattr(port_ownership_info, 'host_prevention_record', record)
    monkeypatch.setattr(_monitor, 'probe_bind', lambda unit, rule, timeout: {
        'unit': unit, 'rule': rule, 'outcome': seen['outcome'], 'errno': 1 if seen['outcome'] == 'denied' else 0,
        'sec': 3e-05, 'detail': 'bind() succeeded' if seen['outcome'] == 'allowed' else 'bind() refused'})
    monkeypatch.setattr(_monitor, 'process_cgroup', lambda pid, root, proc: (
        '/user.slice/user-1500.slice/user@1500.service/app.slice/run-u7.service' if pid == 4242 else ''))
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: seen['warned'].append(message))

    def run(**args):
        args.setdefault('registry', REGISTRY)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                port_ownership_info.main()
        return json.loads(capsys.readouterr().out)

    run.seen = seen
    return run


def test_without_prevent_in_prevention_is_off_and_nothing_is_probed(host):
    result = host()
    assert result['prevention'] == {'state': 'off', 'summary': 'off', 'active': False, 'units': [], 'rules': [],
                                    'probes': []}
    assert result['findings'][0]['prevention_bypassed'] is False
    assert result['findings'][0]['message'] == SQUATTED['message']
    assert host.seen['asked'] == [[]]


def test_prevention_lost_and_a_squatter_in_user_slice_is_a_bypass(host):
    result = host(prevent_in=['user.slice'])
    assert (result['prevention']['state'], result['prevention']['active']) == ('degraded', False)
    assert result['prevention']['probes'][0]['outcome'] == 'allowed'
    found = result['findings'][0]
    assert (found['severity'], found['prevention_bypassed']) == ('critical', True)
    assert found['message'].startswith('prevention bypassed: run-u7.service (pid 4242) inside user.slice holds it')
    assert found['holders'][0]['inside'] == 'user.slice'
    assert any(line.startswith('Prevention lost on user.slice') for line in host.seen['warned'])


def test_prevention_holding(host):
    host.seen['outcome'] = 'denied'
    result = host(prevent_in=['user.slice'])
    assert result['prevention'] == dict(ARMED, active=True, probes=[{
        'unit': 'user.slice', 'rule': 'tcp:8765', 'outcome': 'denied', 'errno': 1, 'sec': 3e-05,
        'detail': 'bind() refused'}])
    assert host.seen['warned'] == []


def test_unavailable_is_reported_and_no_squatter_is_a_bypass(host):
    host.seen['record'] = {'state': 'unavailable', 'summary': 'unavailable (systemd 252 without BPF_FRAMEWORK)'}
    result = host(prevent_in=['user.slice'])
    assert result['prevention']['summary'] == 'unavailable (systemd 252 without BPF_FRAMEWORK)'
    assert result['prevention']['probes'] == []
    assert result['findings'][0]['prevention_bypassed'] is False


def test_prevent_in_that_cannot_carry_the_deny_fails_naming_it(host):
    result = host(prevent_in=['-.slice', 'user'])
    assert result['failed'] is True
    assert 'prevent_in[0]="-.slice": is the root slice' in result['msg']
    assert 'prevent_in[1]="user"' in result['msg']


# The check_table filter

def table(findings, guards=None, prevention=None):
    return FilterModule().filters()['check_table'](findings, guards, prevention)


def test_each_hosts_prevention_and_each_bypass_in_the_table():
    bypassed = dict(SQUATTED, host='deb13', prevention_bypassed=True, holders=[dict(MALLORY, inside='user.slice')])
    lines = table([bypassed], {}, {
        'deb13': {'state': 'degraded', 'summary': 'degraded (lost on user.slice: a test bind was not refused)'},
        'deb12': {'state': 'unavailable', 'summary': 'unavailable (systemd 252 without BPF_FRAMEWORK)'},
        'web-1': {'state': 'active', 'summary': 'active'},
        'old': {}})
    assert lines[lines.index('') + 1:] == [
        'host   prevention',
        'deb12  unavailable (systemd 252 without BPF_FRAMEWORK)',
        'deb13  degraded (lost on user.slice: a test bind was not refused)',
        'old    off',
        'web-1  active',
        'deb13  BYPASSED 8765/tcp sms-webhook.service: run-u7.service pid 4242 inside user.slice',
    ]
    assert lines[1].split()[3] == 'CRITICAL'


def test_no_prevention_given_leaves_the_table_out():
    assert table([dict(SQUATTED, host='a')]) == table([dict(SQUATTED, host='a')], {}, {})
    assert '' not in table([dict(SQUATTED, host='a')])
