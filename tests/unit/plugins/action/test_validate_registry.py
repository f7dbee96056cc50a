# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from unittest import mock

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.template import Templar

from ansible_collections.qwf.collision_guard.plugins.action.validate_registry import (
    ActionModule,
    check_values,
    hosts_with_another_registry,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import DEFAULT_NEVER_EVICT

FLEET = [{'port': 8765, 'service': 'sms-webhook'}]
OTHER = [{'port': 8765, 'service': 'sms-gateway'}]


def task_vars(registries, me='web1'):
    return {
        'inventory_hostname': me,
        'ansible_play_hosts_all': sorted(registries),
        'hostvars': dict((host, {} if registry is None else {'collision_guard_registry': registry})
                         for host, registry in registries.items()),
    }


@pytest.mark.parametrize('registries, differing', [
    ({'web1': FLEET, 'web2': FLEET, 'db1': FLEET}, []),
    ({'web1': FLEET, 'web2': FLEET, 'db1': OTHER}, ['db1']),
    ({'web1': FLEET, 'web2': None}, ['web2']),
    # From role parameters or defaults only: nothing in inventory to compare.
    ({'web1': None, 'web2': None}, []),
], ids=['same', 'one-differs', 'one-lacks-it', 'not-in-inventory'])
def test_hosts_with_another_registry(registries, differing):
    assert hosts_with_another_registry(task_vars(registries), 'collision_guard_registry') == differing


def test_free_text_source_skips_the_comparison():
    assert hosts_with_another_registry(task_vars({'web1': FLEET, 'db1': OTHER}), 'group_vars/all registry') == []


def run_action(args, task_vars=None):
    """Run the action plugin as a task would, without a connection; returns (result, warnings)."""
    task = Task()
    task.args = args
    loader = DataLoader()
    connection = mock.MagicMock()
    connection._shell.tmpdir = '/nonexistent'
    action = ActionModule(task, connection, PlayContext(), loader, Templar(loader), None)
    with mock.patch.object(action, '_display') as display:
        result = action.run(task_vars=task_vars or {})
    return result, [call.args[0] for call in display.warning.call_args_list]


def test_a_good_registry_comes_back_normalised_with_warnings():
    result, warnings = run_action({'registry': [
        {'port': 53, 'service': 'dnsmasq', 'protocol': 'udp', 'address': '127.0.0.2'},
        {'port': 53, 'service': 'systemd-resolved', 'protocol': 'udp', 'address': '127.0.0.53'},
        {'port': 8765, 'service': 'sms-webhook', 'evict_holders': ['old-webhook'], 'restart': 'always'},
    ]})
    assert not result.get('failed')
    assert result['changed'] is False
    assert [(entry['service'], entry['address'], entry['evict_holders']) for entry in result['registry']] == [
        ('dnsmasq.service', '127.0.0.2', []), ('systemd-resolved.service', '127.0.0.53', []),
        ('sms-webhook.service', None, ['old-webhook.service'])]
    assert warnings == [
        'collision_guard_registry: 127.0.0.2:53/udp (dnsmasq.service) is a well-known system port; make sure no '
        'system service of the hosts needs it',
        'collision_guard_registry: 127.0.0.53:53/udp (systemd-resolved.service) is a well-known system port; make '
        'sure no system service of the hosts needs it']


def test_the_default_never_evict_list_passes():
    result, dummy = run_action({'registry': [], 'never_evict': list(DEFAULT_NEVER_EVICT)})
    assert not result.get('failed') and result['registry'] == []


def test_registry_and_never_evict_problems_come_in_one_message():
    result, dummy = run_action({
        'registry': [{'port': 53, 'service': 'a', 'address': '0.0.0.0'},
                     {'port': 53, 'service': 'b', 'address': '127.0.0.1'},
                     {'port': 80, 'service': 'c', 'address': 'localhost'}],
        'never_evict': ['sshd.service', 'bad name'],
        'source': 'group_vars/all registry',
    })
    assert result['failed'] is True
    assert result['problems'] == [
        'group_vars/all registry[1]: 127.0.0.1:53/tcp is already registered to a.service at group_vars/all '
        'registry[0]; it cannot also belong to b.service',
        "group_vars/all registry[2].address: 'localhost' is not an IPv4 or IPv6 address",
        'collision_guard_never_evict[1]: \'bad name\' contains characters systemd does not allow in unit names '
        '(allowed: letters, digits, ":", "-", "_", ".", "\\", one "@" and the globs "*" and "?")',
    ]
    assert result['msg'].startswith('group_vars/all registry has 3 bad value(s); no host was changed\n  - ')


def test_both_protocols_is_an_error_only_when_asked():
    registry = [{'port': 53, 'service': 'dns'}, {'port': 53, 'service': 'dns', 'protocol': 'udp'}]
    result, dummy = run_action({'registry': registry})
    assert not result.get('failed')
    result, dummy = run_action({'registry': registry, 'both_protocols': 'error'})
    assert result['problems'] == ['collision_guard_registry: dns.service is registered for 53 under both tcp and udp']


def test_a_registry_that_is_not_a_list_fails():
    result, dummy = run_action({'registry': {'port': 80, 'service': 'web'}})
    assert result['failed'] is True
    assert result['msg'] == 'collision_guard_registry must be a list of entries, got dict'
    assert result['problems'] == []


def test_another_registry_on_another_host_fails():
    result, dummy = run_action({'registry': FLEET}, task_vars({'web1': FLEET, 'db1': OTHER}))
    assert result['failed'] is True
    assert 'db1 hold(s) another value than web1' in result['msg']


def test_check_values():
    entries, problems = check_values([{'port': 80, 'service': 'web'}], 'r', ['*'])
    assert (len(entries), problems) == (1, [])
    entries, problems = check_values([{'port': 0, 'service': 'web'}], 'r', 'sshd.service')
    assert entries == []
    assert problems == ['r[0].port: 0 is out of range 1-65535',
                        "collision_guard_never_evict: 'sshd.service' is not a list of unit names or globs"]
    with pytest.raises(CollisionGuardError, match='must be a list'):
        check_values('text', 'r', [])
