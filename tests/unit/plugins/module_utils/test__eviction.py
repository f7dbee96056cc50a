# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _eviction, _sockets
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._journal import Journal
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import Judge, UnitView, resolve_entries
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import (
    DEFAULT_NEVER_EVICT,
    load_registry,
    load_registry_document,
    validate_registry,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import LIST_SOCKETS_COMMAND, VIEW_PROPERTIES

REGISTRY = [
    {'port': 8765, 'service': 'sms-webhook'},
    {'port': 8766, 'service': 'status-api'},
    {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
]
HOST_NETNS = 'net:[4026531840]'
# The never-evict list of a registry file, as the role writes it.
NEVER_EVICT = list(DEFAULT_NEVER_EVICT)


def unit(name, active='active', **props):
    """One unit's properties, as ``systemctl show --property=VIEW_PROPERTIES`` gives them."""
    found = {'Id': name, 'Names': name, 'LoadState': 'loaded', 'ActiveState': active, 'Type': 'simple',
             'ConsistsOf': '', 'TriggeredBy': '', 'Triggers': '', 'FragmentPath': '/etc/systemd/system/%s' % name,
             'DropInPaths': '', 'MainPID': '0', 'Restart': 'no', 'NeedDaemonReload': 'no'}
    found.update(props)
    return found


# The host of most cases: sms-webhook.service is starting (its ExecStartPre runs the helper).
UNITS = {
    'sms-webhook.service': unit('sms-webhook.service', active='activating', Restart='on-failure'),
    'status-api.service': unit('status-api.service', MainPID='311'),
    'syslog-relay.service': unit('syslog-relay.service'),
    'session-3.scope': unit('session-3.scope', FragmentPath='/run/systemd/transient/session-3.scope'),
}


def holder(pid, inode=100, unit='session-3.scope', port=8765, protocol='tcp', netns=HOST_NETNS, **extra):
    """One ``read_holders`` entry."""
    entry = {'pid': pid, 'inode': inode, 'unit': unit, 'user_manager': None, 'port': port, 'protocol': protocol,
             'family': 'ipv4', 'address': '0.0.0.0', 'dual_stack': False, 'netns': netns, 'user': 'root',
             'cmdline': ['python3', '-m', 'http.server', str(port)], 'name': 'python3', 'container': None}
    entry.update(extra)
    return entry


def judge(registry=None, units=None, never_evict=DEFAULT_NEVER_EVICT):
    """The ``Judge`` of a host where systemd describes ``units`` (added to ``UNITS``)."""
    described = dict(UNITS)
    described.update(units or {})
    view = UnitView(described)
    entries, dummy_absent, problems = resolve_entries(validate_registry(REGISTRY if registry is None else registry,
                                                                        where='test'), view, [])
    assert problems == []
    return Judge(entries, view, never_evict, host_netns=HOST_NETNS)


def plan(listeners, service='sms-webhook.service', targets=('8765/tcp',), starting=None, **host):
    """What the helper decides for ``SERVICE TARGETS [--starting UNIT]`` on a host ``judge(**host)`` describes."""
    result, dummy = _eviction.plan_start(listeners, service, starting, [_eviction.parse_target(text) for text in targets],
                                         judge(**host))
    return result


def evicted(result):
    return [(item['holder']['pid'], item['how']) for item in result['evict']]


def kept(result):
    return [(item['holder']['pid'], item['reason']) for item in result['keep']]


def reasons(result):
    return [item['reason'] for item in result['refuse']]


def nothing(result):
    return result == {'evict': [], 'refuse': [], 'keep': []}


# Whom to evict.

def test_an_unregistered_squatter_is_signalled():
    result = plan([holder(4242)])
    assert evicted(result) == [(4242, 'signal')]
    assert result['evict'][0]['reason'] == 'not registered for this port'
    assert result['evict'][0]['port'] == '8765/tcp'
    assert result['refuse'] == []


def test_a_forked_parent_and_child_sharing_the_socket_are_both_evicted_once():
    result = plan([holder(4242), holder(4243), holder(4242, inode=101, family='ipv6', address='::')])
    assert evicted(result) == [(4242, 'signal'), (4243, 'signal')]


def test_a_leftover_of_the_unit_itself_is_evicted_while_it_starts():
    result = plan([holder(777, unit='sms-webhook.service')])
    assert evicted(result) == [(777, 'signal')]
    assert result['evict'][0]['reason'] == 'left over from an earlier run of sms-webhook.service'


def test_run_by_hand_on_the_active_unit_its_own_processes_are_the_owner():
    result = plan([holder(777, unit='sms-webhook.service')],
                  units={'sms-webhook.service': unit('sms-webhook.service', MainPID='777')})
    assert result['evict'] == [] and result['refuse'] == []
    assert kept(result) == [(777, 'held by sms-webhook.service')]


def test_the_main_process_of_a_supervised_unit_is_stopped_through_its_unit():
    units = {'squatter.service': unit('squatter.service', MainPID='4242', Restart='always')}
    result = plan([holder(4242, unit='squatter.service'), holder(4243, unit='squatter.service')], units=units)
    assert evicted(result) == [(4242, 'stop-unit'), (4243, 'signal')]
    assert result['evict'][0]['reason'] == 'squatter.service would restart it (Restart=always)'


@pytest.mark.parametrize('restart', ['no', ''])
def test_an_unsupervised_service_process_is_signalled(restart):
    units = {'report-cron.service': unit('report-cron.service', MainPID='4242', Restart=restart)}
    assert evicted(plan([holder(4242, unit='report-cron.service')], units=units)) == [(4242, 'signal')]


def test_a_service_process_that_is_not_its_main_process_is_signalled():
    units = {'report-cron.service': unit('report-cron.service', MainPID='100', Restart='always')}
    assert evicted(plan([holder(4242, unit='report-cron.service')], units=units)) == [(4242, 'signal')]


# Whom to refuse.

def test_another_registered_service_is_never_evicted_and_nobody_else_is_either():
    result = plan([holder(4242), holder(311, inode=101, unit='status-api.service')])
    assert result['evict'] == []
    assert [item['holder']['pid'] for item in result['refuse']] == [311]
    assert reasons(result)[0].startswith('status-api.service is registered for ')
    assert reasons(result)[0] == 'status-api.service is registered for 8766/tcp; a registered service is never killed'


def test_pid_1_holding_another_units_socket_is_refused():
    units = {'other.socket': unit('other.socket', Type='', Triggers='other.service'),
             'other.service': unit('other.service', TriggeredBy='other.socket')}
    result = plan([holder(1, unit='other.socket'), holder(900, inode=101, unit='other.service')], units=units)
    assert result['evict'] == []
    assert reasons(result) == ['PID 1 holds it for other.socket; systemd is never killed']
    assert result['refuse'][0]['holder']['pid'] == 1


def test_pid_1_holding_a_socket_no_socket_unit_claims_is_refused():
    result = plan([holder(1, unit='init.scope')])
    assert reasons(result) == ['PID 1 holds it for init.scope; systemd is never killed']


SOCKET_ACTIVATED = {
    'sms-webhook.service': unit('sms-webhook.service', active='inactive', TriggeredBy='sms-webhook.socket'),
    'sms-webhook.socket': unit('sms-webhook.socket', active='listening', Type='', Triggers='sms-webhook.service'),
}


@pytest.mark.parametrize('starting', [None, 'sms-webhook.socket'])
def test_the_units_own_socket_unit_is_kept(starting):
    result = plan([holder(1, unit='sms-webhook.socket')], starting=starting, units=SOCKET_ACTIVATED)
    assert result == {'evict': [], 'refuse': [], 'keep': [
        {'holder': holder(1, unit='sms-webhook.socket'), 'port': '8765/tcp',
         'reason': 'held for sms-webhook.service by its socket unit sms-webhook.socket'}]}


def test_a_socket_in_another_network_namespace_is_refused():
    result = plan([holder(5000, netns='net:[4026532999]')])
    assert reasons(result) == ['its socket is in another network namespace than PID 1\'s']


def test_a_socket_with_no_visible_process_is_refused():
    result = plan([holder(None, unit=None)])
    assert result['evict'] == []
    assert reasons(result)[0].startswith('no process this host shows holds it')


def test_a_unit_systemd_did_not_describe_is_refused():
    result = plan([holder(4242, unit='mystery.service')])
    assert reasons(result) == ['systemd did not say what mystery.service is, so it is not evicted']


# Addresses: sockets on a port collide only on colliding addresses.

DNS = [{'port': 53, 'service': 'dnsmasq', 'protocol': 'udp', 'address': '127.0.0.2'}]
DNS_UNITS = {'dnsmasq.service': unit('dnsmasq.service', active='activating'),
             'systemd-resolved.service': unit('systemd-resolved.service', MainPID='600',
                                              FragmentPath='/lib/systemd/system/systemd-resolved.service')}


def dns_holder(pid, address, unit='systemd-resolved.service', inode=200, **extra):
    return holder(pid, inode=inode, unit=unit, port=53, protocol='udp', address=address,
                  family='ipv6' if ':' in address else 'ipv4', **extra)


def test_a_holder_on_a_non_colliding_address_is_ignored():
    result = plan([dns_holder(600, '127.0.0.53')], service='dnsmasq.service', targets=('127.0.0.2:53/udp',),
                  registry=DNS, units=DNS_UNITS)
    assert nothing(result)


@pytest.mark.parametrize('address, dual_stack', [('0.0.0.0', False), ('127.0.0.2', False), ('::', None), ('::', True)])
def test_a_holder_on_a_colliding_address_is_evicted(address, dual_stack):
    squatting = dns_holder(4242, address, unit='session-3.scope', inode=201, dual_stack=dual_stack)
    result = plan([dns_holder(600, '127.0.0.53'), squatting], service='dnsmasq.service', targets=('127.0.0.2:53/udp',),
                  registry=DNS, units=DNS_UNITS)
    assert evicted(result) == [(4242, 'signal')]
    assert result['evict'][0]['port'] == '127.0.0.2:53/udp'
    assert result['refuse'] == []


def test_an_ipv6_only_wildcard_does_not_collide_with_an_ipv4_address():
    result = plan([dns_holder(4242, '::', unit='session-3.scope', dual_stack=False)], service='dnsmasq.service',
                  targets=('127.0.0.2:53/udp',), registry=DNS, units=DNS_UNITS)
    assert nothing(result)


def test_a_spared_holder_on_a_colliding_wildcard_is_refused():
    result = plan([dns_holder(600, '0.0.0.0')], service='dnsmasq.service', targets=('127.0.0.2:53/udp',),
                  registry=DNS, units=DNS_UNITS)
    assert reasons(result) == ['systemd-resolved.service is never evicted (collision_guard_never_evict: systemd-*)']


@pytest.mark.parametrize('targets', [('127.0.0.2:53/udp', '[::1]:53/udp'), ('[::1]:53/udp', '127.0.0.2:53/udp')])
@pytest.mark.parametrize('address, label', [('::1', '[::1]:53/udp'), ('127.0.0.2', '127.0.0.2:53/udp')])
def test_one_port_on_two_addresses_is_judged_against_each(targets, address, label):
    registry = DNS + [{'port': 53, 'service': 'dnsmasq', 'protocol': 'udp', 'address': '::1'}]
    listeners = [dns_holder(600, '127.0.0.53'), dns_holder(4242, address, unit='session-3.scope', inode=201)]
    result = plan(listeners, service='dnsmasq.service', targets=targets, registry=registry, units=DNS_UNITS)
    assert evicted(result) == [(4242, 'signal')]
    assert result['evict'][0]['port'] == label


def test_a_holder_colliding_with_two_entries_gets_the_most_cautious_verdict():
    # A wildcard holder collides with both entries; only the 127.0.0.2 one lets redis-server go.
    registry = [dict(CACHE[0], address='127.0.0.2', evict_holders=['redis-server']),
                dict(CACHE[0], address='0.0.0.0')]
    listeners = [holder(700, unit='redis-server.service', port=6379)]
    result = plan(listeners, service='session-cache.service', targets=('127.0.0.2:6379', '0.0.0.0:6379'),
                  registry=registry, units=packaged_units())
    assert result['evict'] == []
    assert result['refuse'][0]['port'] == '0.0.0.0:6379/tcp'


def test_the_receipts_name_the_registered_port_not_the_holders_address():
    result = plan([holder(4242, address='127.0.0.1')])
    assert result['evict'][0]['port'] == '8765/tcp'


def test_colliding_keeps_only_the_holders_on_a_colliding_address():
    listeners = [dns_holder(600, '127.0.0.53'), dns_holder(4242, '0.0.0.0', inode=201), holder(4243, port=8765)]
    targets = [(53, 'udp', '127.0.0.2'), (8765, 'tcp', None)]
    assert [item['pid'] for item in _eviction.colliding(listeners, targets)] == [4242, 4243]


# Packaged and never-evicted units.

CACHE = [{'port': 6379, 'service': 'session-cache'}]


def packaged_units(fragment='/lib/systemd/system/redis-server.service'):
    return {'session-cache.service': unit('session-cache.service', active='activating'),
            'redis-server.service': unit('redis-server.service', MainPID='700', Restart='always', FragmentPath=fragment)}


@pytest.mark.parametrize('fragment', ['/lib/systemd/system/redis-server.service',
                                      '/usr/lib/systemd/system/redis-server.service'])
def test_a_packaged_unit_on_another_services_port_is_refused(fragment):
    result = plan([holder(700, unit='redis-server.service', port=6379)], service='session-cache.service',
                  targets=('6379/tcp',), registry=CACHE, units=packaged_units(fragment))
    assert result['evict'] == []
    assert reasons(result) == ['redis-server.service is a packaged system service (%s); it is evicted only when '
                               'the entry names it in evict_holders' % fragment]


def test_a_packaged_unit_the_entry_names_in_evict_holders_is_evicted():
    registry = [dict(CACHE[0], evict_holders=['redis-server'])]
    result = plan([holder(700, unit='redis-server.service', port=6379)], service='session-cache.service',
                  targets=('6379/tcp',), registry=registry, units=packaged_units())
    assert evicted(result) == [(700, 'stop-unit')]
    assert result['evict'][0]['reason'] == 'redis-server.service would restart it (Restart=always)'


def test_ssh_is_never_evicted_even_when_evict_holders_names_it():
    registry = [{'port': 22, 'service': 'bastion', 'evict_holders': ['ssh']}]
    units = {'bastion.service': unit('bastion.service', active='activating'),
             'ssh.service': unit('ssh.service', MainPID='512', FragmentPath='/lib/systemd/system/ssh.service')}
    result = plan([holder(512, unit='ssh.service', port=22)], service='bastion.service', targets=('22/tcp',),
                  registry=registry, units=units)
    assert result['evict'] == []
    assert reasons(result) == ['ssh.service is never evicted (collision_guard_never_evict: ssh.service)']


def test_the_never_evict_list_is_the_registrys():
    units = {'backup-agent.service': unit('backup-agent.service', MainPID='4242')}
    listeners = [holder(4242, unit='backup-agent.service')]
    assert evicted(plan(listeners, units=units)) == [(4242, 'signal')]
    assert reasons(plan(listeners, units=units, never_evict=['backup-*.service'])) == [
        'backup-agent.service is never evicted (collision_guard_never_evict: backup-*.service)']


# Aliases, members, socket units and user units.

REDIS = [{'port': 6379, 'service': 'redis'}]


def redis_units(active):
    alias = unit('redis-server.service', active=active, Names='redis-server.service redis.service', MainPID='700',
                 Restart='always', FragmentPath='/lib/systemd/system/redis-server.service')
    return {'redis.service': alias}


@pytest.mark.parametrize('service', ['redis.service', 'redis-server.service'])
def test_an_aliased_unit_run_by_hand_while_active_keeps_its_own_processes(service):
    result = plan([holder(700, unit='redis-server.service', port=6379)], service=service, targets=('6379/tcp',),
                  registry=REDIS, units=redis_units('active'))
    assert result['evict'] == [] and result['refuse'] == []
    assert kept(result) == [(700, 'held by redis-server.service')]


@pytest.mark.parametrize('service', ['redis.service', 'redis-server.service'])
def test_an_aliased_unit_while_activating_evicts_its_leftovers(service):
    result = plan([holder(700, unit='redis-server.service', port=6379)], service=service, targets=('6379/tcp',),
                  registry=REDIS, units=redis_units('activating'))
    assert evicted(result) == [(700, 'signal')]
    assert result['evict'][0]['reason'] == 'left over from an earlier run of redis-server.service'


def test_a_member_of_the_unit_is_kept():
    registry = [{'port': 9100, 'service': 'billing'}]
    units = {'billing.service': unit('billing.service', active='activating', Type='oneshot',
                                     ConsistsOf='billing-api.service'),
             'billing-api.service': unit('billing-api.service', MainPID='800')}
    result = plan([holder(800, unit='billing-api.service', port=9100)], service='billing.service', targets=('9100/tcp',),
                  registry=registry, units=units)
    assert result['evict'] == [] and result['refuse'] == []
    assert kept(result) == [(800, 'held by billing-api.service, which is part of billing.service')]


def test_a_user_unit_named_like_the_registered_unit_is_a_squatter():
    registry = [{'port': 9100, 'service': 'billing-worker'}]
    # Even what systemd says of the system unit of that name is not the user unit's.
    units = {'billing-worker.service': unit('billing-worker.service', active='activating', MainPID='4242',
                                            Restart='always')}
    squatter = holder(4242, unit='billing-worker.service', user_manager='user@1000.service', port=9100, user='alice')
    result = plan([squatter], service='billing-worker.service', targets=('9100/tcp',), registry=registry, units=units)
    assert evicted(result) == [(4242, 'signal')]
    assert result['keep'] == []
    line = _eviction.receipt('evicting', result['evict'][0]['port'], squatter, signal='SIGTERM')
    assert line.startswith('evicting port=9100/tcp pid=4242 user=alice unit=user@1000.service/billing-worker.service ')
    # The receipt gives the judgement's reason: a user's unit, whatever name it wears.
    assert result['evict'][0]['reason'].startswith('a unit of ') and 'is not a system unit' in result['evict'][0]['reason']


def test_a_user_unit_is_a_squatter_when_run_by_hand_on_the_active_unit_too():
    registry = [{'port': 9100, 'service': 'billing-worker'}]
    units = {'billing-worker.service': unit('billing-worker.service', MainPID='900')}
    squatter = holder(4242, unit='billing-worker.service', user_manager='user@1000.service', port=9100)
    result = plan([squatter, holder(900, inode=101, unit='billing-worker.service', port=9100)],
                  service='billing-worker.service', targets=('9100/tcp',), registry=registry, units=units)
    assert evicted(result) == [(4242, 'signal')]
    assert kept(result) == [(900, 'held by billing-worker.service')]


# When to escalate.

@pytest.mark.parametrize('pending, now, killed, step', [
    ([], 0.1, False, 'done'),
    (['x'], 0.5, False, 'wait'),
    (['x'], 2.0, False, 'kill'),
    (['x'], 2.5, True, 'wait'),
    (['x'], 10.0, True, 'give-up'),
    (['x'], 10.0, False, 'give-up'),
])
def test_escalation(pending, now, killed, step):
    assert _eviction.escalation(pending, 0.0, now, 2.0, 10.0, killed) == step


# Receipts and input.

def test_a_receipt_names_everything_and_a_hostile_cmdline_stays_on_one_line():
    line = _eviction.receipt('evicted', '8765/tcp', holder(4242, cmdline=['sh', '-c', 'x\nevicted pid=1']),
                             signal='SIGTERM', outcome='released the port after SIGTERM in 0.01 s')
    assert line == ('evicted port=8765/tcp pid=4242 user=root unit=session-3.scope '
                    'outcome="released the port after SIGTERM in 0.01 s" signal=SIGTERM '
                    'cmdline="sh -c x\\nevicted pid=1"')
    assert '\n' not in line


@pytest.mark.parametrize('text, target', [
    ('8765/tcp', (8765, 'tcp', None)),
    ('5514/udp', (5514, 'udp', None)),
    ('80', (80, 'tcp', None)),
    ('127.0.0.2:53/udp', (53, 'udp', '127.0.0.2')),
    ('0.0.0.0:8080', (8080, 'tcp', '0.0.0.0')),
    ('[::1]:53/udp', (53, 'udp', '::1')),
    ('[2001:DB8:0::1]:8443/tcp', (8443, 'tcp', '2001:db8::1')),
    ('[::ffff:127.0.0.2]:53/udp', (53, 'udp', '::ffff:127.0.0.2')),
])
def test_parse_target(text, target):
    assert _eviction.parse_target(text) == target


@pytest.mark.parametrize('text', ['0/tcp', '65536', 'http/tcp', '80/sctp', '-1', '80/tcp/x', '127.0.0.2:/udp',
                                  '127.0.0.2:99999/udp'])
def test_parse_target_refuses(text):
    with pytest.raises(CollisionGuardError):
        _eviction.parse_target(text)


@pytest.mark.parametrize('text, bad', [
    ('300.1.1.1:53/udp', '300.1.1.1'),
    ('localhost:53/udp', 'localhost'),
    (':53/udp', ''),
    ('[fe80::1%eth0]:53/udp', '[fe80::1%eth0]'),
    ('[::1:53/udp', '[::1'),
    ('::1:53/udp', '::1'),
    ('[127.0.0.2]:53/udp', '[127.0.0.2]'),
])
def test_parse_target_names_a_bad_address(text, bad):
    with pytest.raises(CollisionGuardError) as caught:
        _eviction.parse_target(text)
    assert str(caught.value).startswith('%r: %r is not an IPv4' % (text, bad))


def write_registry(path, registry, never_evict=DEFAULT_NEVER_EVICT):
    document = {'managed_by': 'test', 'registry': registry}
    if never_evict is not None:
        document['never_evict'] = list(never_evict)
    path.write_text(json.dumps(document))
    return str(path)


def test_load_registry(tmp_path):
    path = tmp_path / 'registry.json'
    write_registry(path, [{'port': 8765, 'service': 'sms-webhook'}])
    assert load_registry(str(path))[0]['service'] == 'sms-webhook.service'
    assert load_registry_document(str(path))['never_evict'] == NEVER_EVICT
    write_registry(path, [{'port': 8765, 'service': 'sms-webhook'}], never_evict=['backup-*.service'])
    assert load_registry_document(str(path))['never_evict'] == ['backup-*.service']
    write_registry(path, [{'port': 70000, 'service': 'x'}])
    with pytest.raises(CollisionGuardError, match='registry.json'):
        load_registry(str(path))
    write_registry(path, [], never_evict=['bad;unit.service'])
    with pytest.raises(CollisionGuardError, match='bad never_evict'):
        load_registry(str(path))
    with pytest.raises(CollisionGuardError, match='cannot read the registry'):
        load_registry(str(tmp_path / 'missing.json'))


@pytest.mark.parametrize('never_evict', [None, list(DEFAULT_NEVER_EVICT)], ids=['absent', 'role-default'])
def test_the_registry_as_the_role_writes_it_loads(tmp_path, never_evict):
    path = write_registry(tmp_path / 'registry.json', [{'port': 8765, 'service': 'sms-webhook'}], never_evict)
    assert load_registry_document(path)['never_evict'] == list(DEFAULT_NEVER_EVICT)


# What the helper asks systemd.

def read_show_fixture(text):
    """Each unit of a ``systemctl show`` fixture under each of its names, as systemd answers for aliases."""
    units = {}
    for block in text.strip().split('\n\n'):
        props = dict(line.split('=', 1) for line in block.splitlines() if '=' in line)
        for name in props['Names'].split():
            units[name] = props
    return units


class FakeSystemd(object):
    """systemctl as the helper asks it: ``show_properties`` answers from ``units``, ``run_systemctl`` from ``outputs``.

    A unit it does not know is described as ``unknown(name)`` gives, by default as systemd describes a missing one.
    """

    def __init__(self, units, outputs=None, unknown=None):
        self.units = units
        self.outputs = outputs or {}
        self.unknown = unknown or (lambda name: {'Id': name, 'LoadState': 'not-found', 'ActiveState': 'inactive'})
        self.shown = []
        self.commands = []

    def show_properties(self, units, properties, deadline):
        assert tuple(properties) == VIEW_PROPERTIES
        self.shown.append(list(units))
        return dict((name, self.units[name] if name in self.units else self.unknown(name)) for name in units)

    def run_systemctl(self, argv, deadline):
        self.commands.append(list(argv))
        return self.outputs.get(tuple(argv), '')

    def install(self, monkeypatch):
        monkeypatch.setattr(_eviction, 'show_properties', self.show_properties)
        monkeypatch.setattr(_eviction, 'run_systemctl', self.run_systemctl)
        return self


def fake_proc(tmp_path, netns=HOST_NETNS):
    """A /proc with only PID 1's network namespace, for ``judge_for``."""
    os.makedirs(str(tmp_path / 'proc' / '1' / 'ns'))
    os.symlink(netns, str(tmp_path / 'proc' / '1' / 'ns' / 'net'))
    return str(tmp_path / 'proc')


def test_judge_for_asks_systemd_about_the_registry_and_the_holders(tmp_path, monkeypatch, fixture_text):
    systemd = FakeSystemd(read_show_fixture(fixture_text('eviction/systemctl_show.txt')),
                          {tuple(LIST_SOCKETS_COMMAND): fixture_text('eviction/systemctl_list_sockets.txt')})
    systemd.install(monkeypatch)
    registry = validate_registry([{'port': 8765, 'service': 'sms-webhook'}, {'port': 6379, 'service': 'redis'}],
                                 where='test')
    listeners = [holder(1, unit='init.scope'), holder(4242, inode=101, unit='session-7.scope'),
                 holder(700, inode=102, unit='redis-server.service', port=6379),
                 holder(512, inode=103, unit='ssh.service', port=6379)]
    found = _eviction.judge_for(registry, NEVER_EVICT, listeners, time.monotonic() + 5, proc=fake_proc(tmp_path))
    assert systemd.shown == [['sms-webhook.service', 'redis.service'], ['session-7.scope', 'sms-webhook.socket', 'ssh.service']]
    assert systemd.commands == [LIST_SOCKETS_COMMAND]
    assert found.host_netns == HOST_NETNS
    assert [entry['service'] for entry in found.entries] == ['sms-webhook.service', 'redis-server.service']
    # PID 1's socket is named after its socket unit, which triggers the service.
    assert listeners[0]['unit'] == 'sms-webhook.socket'
    targets = [_eviction.parse_target('8765/tcp')]
    result, dummy = _eviction.plan_start(listeners, 'sms-webhook.service', None, targets, found)
    assert evicted(result) == [(4242, 'signal')]
    assert kept(result) == [(1, 'held for sms-webhook.service by its socket unit sms-webhook.socket')]
    # By hand on the running alias: its process is the owner, ssh is never evicted.
    result, dummy = _eviction.plan_start(listeners, 'redis.service', None, [_eviction.parse_target('6379')], found)
    assert kept(result) == [(700, 'held by redis-server.service')]
    assert reasons(result) == ['ssh.service is never evicted (collision_guard_never_evict: ssh.service)']
    assert result['evict'] == []


# The helper end to end, on real processes and sockets of this machine.

SQUATTER = textwrap.dedent('''
    import os, signal, socket, sys, time
    mode = sys.argv[1]
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen()
    if mode == 'stubborn':
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == 'forked' and os.fork() == 0:
        time.sleep(60)
        sys.exit(0)
    print(sock.getsockname()[1], flush=True)
    time.sleep(60)
''')


@pytest.fixture
def squatter():
    started = []

    def start(mode='plain'):
        process = subprocess.Popen([sys.executable, '-c', SQUATTER, mode], stdout=subprocess.PIPE,
                                   universal_newlines=True)
        started.append(process)
        return process, int(process.stdout.readline())

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    """Each test remembers its own evictions, never the host's."""
    path = tmp_path / 'state' / 'evictions.json'
    monkeypatch.setattr(_eviction, 'STATE_PATH', str(path))
    return path


def transient(name):
    """How systemd describes the unit of a process of this test: an ad-hoc unit nobody installed."""
    return {'Id': name, 'Names': name, 'LoadState': 'loaded', 'ActiveState': 'active',
            'FragmentPath': '/run/systemd/transient/%s' % name}


@pytest.fixture
def systemd(monkeypatch):
    """No systemd on a test machine: the registered owner.service is starting, any other unit is ad hoc."""
    return FakeSystemd({'owner.service': unit('owner.service', active='activating')}, unknown=transient).install(
        monkeypatch)


def run_helper(tmp_path, port, *extra, **options):
    dummy_port, dummy_protocol, address = _eviction.parse_target(options.get('target', '%d/tcp' % port))
    registry = write_registry(tmp_path / 'registry.json', [{'port': port, 'service': 'owner', 'address': address}])
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    argv = ['--registry', registry, '--grace-sec', '0.5', '--timeout-sec', '5'] + list(extra)
    args = _eviction.parse_arguments(argv + ['owner.service', options.get('target', '%d/tcp' % port)])
    started = time.monotonic()
    code = _eviction.run(args, journal)
    return code, journal.lines, time.monotonic() - started


def port_is_free(port):
    probe = socket.socket()
    try:
        probe.bind(('127.0.0.1', port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def test_the_holders_of_all_targets_are_read_at_once_in_the_order_of_the_targets():
    sockets = [socket.socket(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
    try:
        for sock in sockets:
            sock.bind(('127.0.0.1', 0))
        sockets[0].listen()
        targets = [(sockets[1].getsockname()[1], 'udp', None), (sockets[0].getsockname()[1], 'tcp', '127.0.0.2')]
        holders = _eviction.read_holders(targets)
    finally:
        for sock in sockets:
            sock.close()
    # Every address of the port is read; whether it collides is judged later.
    assert [(item['port'], item['protocol'], item['address'], item['pid']) for item in holders] == [
        (port, protocol, '127.0.0.1', os.getpid()) for port, protocol, dummy in targets]
    assert all(item['netns'] == _eviction.netns_of(os.getpid()) for item in holders)


# Squatters the helper once could not see or could not evict, on real processes of this machine.
HIDDEN_SQUATTER = textwrap.dedent('''
    import ctypes, socket, sys, threading, time
    mode = sys.argv[1]
    sock = socket.socket()
    if mode == 'accepted':
        # An SSH session: the connection its server accepted, with SO_REUSEADDR from the listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('127.0.0.1', 0))
    if mode in ('listen-unshare', 'zombie-leader', 'accepted'):
        sock.listen()
    if mode in ('connect-from-port', 'accepted'):
        other = socket.socket()
        other.bind(('127.0.0.1', 0))
        other.listen()
        if mode == 'connect-from-port':
            sock.connect(other.getsockname())
            kept = other.accept()
        else:
            client = socket.create_connection(sock.getsockname())
            kept = sock.accept()
            port = sock.getsockname()[1]
            sock.close()
    print(port if mode == 'accepted' else sock.getsockname()[1], flush=True)
    if mode == 'listen-unshare':
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x10000000 | 0x40000000) != 0:  # CLONE_NEWUSER | CLONE_NEWNET
            print('unshare failed', flush=True)
        else:
            print('unshared', flush=True)
    if mode == 'zombie-leader':
        threading.Thread(target=time.sleep, args=(60,)).start()
        ctypes.CDLL(None).pthread_exit(None)
    time.sleep(60)
''')


@pytest.fixture
def hidden_squatter():
    started = []

    def start(mode):
        process = subprocess.Popen([sys.executable, '-c', HIDDEN_SQUATTER, mode], stdout=subprocess.PIPE,
                                   universal_newlines=True)
        started.append(process)
        return process, int(process.stdout.readline())

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def can_copy_sockets():
    probe = socket.socket()
    try:
        return _sockets.reuse_address(os.getpid(), probe.fileno()) is not None
    finally:
        probe.close()


def test_a_socket_is_judged_by_its_own_network_namespace_not_its_process(hidden_squatter):
    process, port = hidden_squatter('listen-unshare')
    if process.stdout.readline().strip() != 'unshared':
        pytest.skip('unprivileged user namespaces are not available here')
    holders = _eviction.read_holders([(port, 'tcp', None)])
    assert [item['pid'] for item in holders] == [process.pid]
    assert _eviction.netns_of(process.pid) != _eviction.netns_of('self')
    assert holders[0]['netns'] == _eviction.netns_of('self')


@pytest.mark.parametrize('mode', ['connect-from-port', 'zombie-leader', 'listen-unshare'])
def test_a_hidden_squatter_is_evicted(tmp_path, systemd, hidden_squatter, mode):
    process, port = hidden_squatter(mode)
    if mode == 'listen-unshare' and process.stdout.readline().strip() != 'unshared':
        pytest.skip('unprivileged user namespaces are not available here')
    if mode == 'connect-from-port' and not can_copy_sockets():
        pytest.skip('pidfd_getfd is not available here')
    if mode == 'zombie-leader':
        time.sleep(0.2)  # until its main thread has exited
    code, lines, dummy = run_helper(tmp_path, port)
    assert code == _eviction.EXIT_FREE, lines
    assert process.wait(5) == -signal.SIGTERM
    assert lines[-1].startswith('evicted port=%d/tcp pid=%d ' % (port, process.pid))
    assert 'released the port after SIGTERM' in lines[-1]


def test_an_accepted_connection_on_the_port_is_no_holder(tmp_path, systemd, hidden_squatter):
    process, port = hidden_squatter('accepted')
    if not can_copy_sockets():
        pytest.skip('pidfd_getfd is not available here')
    assert _eviction.read_holders([(port, 'tcp', None)]) == []
    assert run_helper(tmp_path, port)[:2] == (_eviction.EXIT_FREE, [])
    assert process.poll() is None


def test_a_free_port_needs_nothing_and_logs_nothing(tmp_path, systemd):
    probe = socket.socket()
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    assert run_helper(tmp_path, port)[:2] == (0, [])
    assert systemd.shown == [] and systemd.commands == []


def test_a_squatter_is_evicted_with_sigterm_and_a_receipt(tmp_path, squatter, systemd):
    process, port = squatter()
    code, lines, dummy = run_helper(tmp_path, port)
    assert code == 0
    assert process.wait(5) == -signal.SIGTERM
    assert port_is_free(port)
    assert lines[0].startswith('evicting port=%d/tcp pid=%d ' % (port, process.pid))
    assert 'start_of=owner.service' in lines[0]
    assert lines[-1].startswith('evicted port=%d/tcp pid=%d ' % (port, process.pid))
    assert 'signal=SIGTERM' in lines[-1] and 'released the port after SIGTERM' in lines[-1]
    assert systemd.shown[0] == ['owner.service']


def test_a_squatter_that_ignores_sigterm_gets_sigkill_after_the_grace_period(tmp_path, squatter, systemd):
    process, port = squatter('stubborn')
    time.sleep(0.2)  # let it install its SIGTERM handler
    code, lines, elapsed = run_helper(tmp_path, port)
    assert code == 0
    assert process.wait(5) == -signal.SIGKILL
    assert 0.5 <= elapsed < 5
    assert 'signal=SIGTERM+SIGKILL' in lines[-1]


def test_a_forked_pair_sharing_the_socket_are_both_evicted(tmp_path, squatter, systemd):
    process, port = squatter('forked')
    code, lines, dummy = run_helper(tmp_path, port)
    assert code == 0
    assert port_is_free(port)
    assert len([line for line in lines if line.startswith('evicted ')]) == 2


def test_a_squatter_on_the_registered_address_is_evicted(tmp_path, squatter, systemd):
    process, port = squatter()
    code, lines, dummy = run_helper(tmp_path, port, target='127.0.0.1:%d/tcp' % port)
    assert code == 0
    assert process.wait(5) == -signal.SIGTERM
    assert lines[-1].startswith('evicted port=127.0.0.1:%d/tcp pid=%d ' % (port, process.pid))


def test_a_process_on_another_address_of_the_port_is_left_alone_without_the_registry(tmp_path, squatter, systemd):
    process, port = squatter()
    args = _eviction.parse_arguments(['--registry', str(tmp_path / 'missing.json'), 'owner.service',
                                      '127.0.0.2:%d/tcp' % port])
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    assert _eviction.run(args, journal) == _eviction.EXIT_FREE
    assert journal.lines == []
    assert process.poll() is None
    assert systemd.shown == []


@pytest.mark.parametrize('address, retaken', [('127.0.0.1', True), ('127.0.0.3', False)])
def test_a_port_retaken_right_after_the_eviction_fails_the_start(tmp_path, squatter, systemd, monkeypatch,
                                                                 address, retaken):
    process, port = squatter()
    reads = []
    read_holders = _eviction.read_holders

    def read_twice(targets, proc='/proc'):
        found = read_holders(targets, proc)
        reads.append(found)
        if len(reads) == 2:
            found.append(holder(4243, inode=1, unit='session-9.scope', port=port, address=address))
        return found

    monkeypatch.setattr(_eviction, 'read_holders', read_twice)
    code, lines, dummy = run_helper(tmp_path, port, target='127.0.0.1:%d/tcp' % port)
    assert process.wait(5) == -signal.SIGTERM
    assert len(reads) == 2 if retaken else len(reads) > 2
    if retaken:
        # The first newcomer ends the watch.
        assert code == _eviction.EXIT_RETAKEN
        assert lines[-2].startswith('retaken port=127.0.0.1:%d/tcp pid=4243 user=root unit=session-9.scope ' % port)
        assert lines[-1] == 'the ports of owner.service were retaken right after the eviction; not starting it'
    else:
        assert code == _eviction.EXIT_FREE
        assert lines[-1].startswith('evicted ')


def test_a_socket_that_outlives_its_evicted_process_is_waited_for(tmp_path, squatter, systemd, monkeypatch):
    process, port = squatter()
    reads = []
    read_holders = _eviction.read_holders

    def closing_socket_then_nothing(targets, proc='/proc'):
        found = read_holders(targets, proc)
        reads.append(found)
        if len(reads) == 2:
            # The evicted process is gone; its listening socket is not, yet.
            found.append(holder(None, inode=1, unit=None, port=port, address='127.0.0.1'))
        return found

    monkeypatch.setattr(_eviction, 'read_holders', closing_socket_then_nothing)
    code, lines, dummy = run_helper(tmp_path, port, target='127.0.0.1:%d/tcp' % port)
    assert process.wait(5) == -signal.SIGTERM
    assert len(reads) >= 3
    assert code == _eviction.EXIT_FREE
    assert not any(line.startswith('retaken ') for line in lines)


def test_the_main_process_of_a_supervised_unit_is_stopped_with_systemctl(squatter, monkeypatch):
    process, port = squatter()
    stopped = []

    def run_systemctl(argv, deadline):
        stopped.append(argv)
        process.terminate()  # as systemd would, stopping the unit
        return ''

    monkeypatch.setattr(_eviction, 'run_systemctl', run_systemctl)
    listeners = _eviction.read_holders([(port, 'tcp', None)])
    squatting = dict(listeners[0], unit='squatter.service')
    plan = {'evict': [{'holder': squatting, 'how': 'stop-unit', 'port': '%d/tcp' % port,
                       'reason': 'squatter.service would restart it (Restart=always)'}], 'refuse': [], 'keep': []}
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    left = _eviction.carry_out(plan, 'owner.service', 0.5, time.monotonic() + 5, journal)
    assert left == []
    assert stopped == [['systemctl', 'stop', '--no-block', '--', 'squatter.service']]
    assert journal.lines[0].startswith('stopping port=%d/tcp pid=%d user=' % (port, process.pid))
    assert 'unit=squatter.service action="systemctl stop"' in journal.lines[0]
    assert 'signal="systemctl stop"' in journal.lines[-1] and 'released the port after systemctl stop' in journal.lines[-1]


def test_a_registered_holder_is_refused_and_nothing_is_killed(tmp_path, squatter, monkeypatch):
    process, port = squatter()
    registry = write_registry(tmp_path / 'registry.json', [{'port': port, 'service': 'owner'},
                                                           {'port': port + 1, 'service': 'other'}])
    # Whatever unit the squatter runs in here, systemd calls it other.service, registered for another port.
    other = unit('other.service', MainPID=str(process.pid))
    FakeSystemd({'owner.service': unit('owner.service', active='activating'), 'other.service': other},
                unknown=lambda name: other).install(monkeypatch)
    listeners = _eviction.read_holders([(port, 'tcp', None)])
    monkeypatch.setattr(_eviction, 'read_holders',
                        lambda targets, proc='/proc': [dict(item, unit='other.service') for item in listeners])
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    args = _eviction.parse_arguments(['--registry', registry, 'owner.service', '%d/tcp' % port])
    assert _eviction.run(args, journal) == _eviction.EXIT_REFUSED
    assert process.poll() is None
    assert journal.lines[0].startswith('refused port=%d/tcp pid=%d user=' % (port, process.pid))
    assert 'other.service' in journal.lines[0] and '%d/tcp' % (port + 1) in journal.lines[0]
    assert journal.lines[-1] == ('not starting owner.service: its port is held by other.service, which this helper '
                                 'may not evict; nothing was killed')


def test_dry_run_evicts_nobody(tmp_path, squatter, systemd):
    process, port = squatter()
    code, lines, dummy = run_helper(tmp_path, port, '--dry-run')
    assert code == 0
    assert process.poll() is None
    assert lines == [line for line in lines if line.startswith('would-evict port=%d/tcp pid=%d ' % (port, process.pid))]
    assert len(lines) == 1 and 'action=signal' in lines[0]


def test_without_its_registry_the_helper_evicts_nobody(tmp_path, squatter, systemd):
    process, port = squatter()
    args = _eviction.parse_arguments(['--registry', str(tmp_path / 'missing.json'), 'owner.service', '%d/tcp' % port])
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    assert _eviction.run(args, journal) == _eviction.EXIT_REFUSED
    assert process.poll() is None
    assert 'nothing is evicted' in journal.lines[0]
    assert systemd.shown == []


def test_a_bad_registry_is_refused_in_one_journal_line(tmp_path, squatter, systemd):
    process, port = squatter()
    registry = write_registry(tmp_path / 'registry.json', [{'port': 70000, 'service': 'x'}])
    args = _eviction.parse_arguments(['--registry', registry, 'owner.service', '%d/tcp' % port])
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    assert _eviction.run(args, journal) == _eviction.EXIT_REFUSED
    assert process.poll() is None
    assert len(journal.lines) == 1 and '\n' not in journal.lines[0]
    assert '70000' in journal.lines[0]


@pytest.mark.parametrize('argv, message', [
    (['bad;unit.service', '80/tcp'], "bad arguments: unit 'bad;unit.service' contains characters"),
    (['--starting', 'owner.timer', 'owner.service', '80/tcp'],
     "bad arguments: --starting 'owner.timer' is not a .service or .socket unit"),
    (['--starting=', 'owner.service', '80/tcp'], "bad arguments: --starting '' is empty"),
    (['owner.service', '70000/tcp'], "bad port '70000/tcp': the port is not an integer in 1-65535"),
    (['owner.service', '127.0.0.300:53/udp'], "bad port '127.0.0.300:53/udp': '127.0.0.300' is not an IPv4"),
    (['--grace-sec', '20', '--timeout-sec=10', 'owner.service', '80/tcp'], 'bad arguments: need 0 < --grace-sec'),
])
def test_bad_values_change_nothing(argv, message):
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    assert _eviction.run(_eviction.parse_arguments(argv), journal) == _eviction.EXIT_USAGE
    assert journal.lines[0].startswith(message)


def test_parse_arguments():
    argv = ['--grace-sec=0.5', '--dry-run', '--registry', '/r.json', 'a.service', '1/tcp', '127.0.0.2:2/udp']
    assert _eviction.parse_arguments(argv) == {
        'grace_sec': 0.5, 'timeout_sec': 10.0, 'registry': '/r.json', 'starting': None, 'dry_run': True,
        'help': False, 'unit': 'a.service', 'ports': ['1/tcp', '127.0.0.2:2/udp'], 'pid_files': []}
    assert _eviction.parse_arguments(['--help'])['help'] is True


@pytest.mark.parametrize('argv', [['--starting', 'ssh.socket', 'ssh.service', '22/tcp'],
                                  ['--starting=ssh.socket', 'ssh.service', '22/tcp']])
def test_parse_arguments_reads_the_unit_starting(argv):
    options = _eviction.parse_arguments(argv)
    assert (options['starting'], options['unit'], options['ports']) == ('ssh.socket', 'ssh.service', ['22/tcp'])


@pytest.mark.parametrize('argv, message', [
    (['a.service'], 'name the unit and at least one PORT/PROTOCOL'),
    (['--grace-sec', 'soon', 'a.service', '1/tcp'], "--grace-sec: 'soon' is not a number"),
    (['--kill-all', 'a.service', '1/tcp'], "unknown option '--kill-all'"),
    (['a.service', '1/tcp', '--registry'], '--registry needs a value'),
    (['a.service', '1/tcp', '--starting'], '--starting needs a value'),
    # The memory of evictions is replaced as root: never at a path given on the command line.
    (['--state', '/etc/shadow', 'a.service', '1/tcp'], "unknown option '--state'"),
])
def test_parse_arguments_refuses(argv, message):
    with pytest.raises(CollisionGuardError, match=message):
        _eviction.parse_arguments(argv)


def test_main_reports_bad_arguments_with_the_usage(capsys):
    assert _eviction.main(['--nope']) == _eviction.EXIT_USAGE
    assert 'usage: collision-guard-evict' in capsys.readouterr().err


SYSTEMCTL_DOWN = '#!/bin/sh\necho "Failed to connect to bus" >&2\nexit 1\n'
# Answers "show" with one block per unit after "--", as systemctl does, and nothing else.
SYSTEMCTL_UP = """#!/usr/bin/env python3
import sys
args = sys.argv[1:]
if args and args[0] == 'show':
    units = args[args.index('--') + 1:]
    print('\\n\\n'.join('Id=%s\\nLoadState=loaded\\nActiveState=active\\nFragmentPath=/etc/systemd/system/%s'
                         % (unit, unit) for unit in units))
"""


def run_as_command(tmp_path, port, systemctl):
    """The way port-cleanup.conf runs it: a separate Python process, stderr to the journal."""
    registry = write_registry(tmp_path / 'registry.json', [{'port': port, 'service': 'owner'}])
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / 'systemctl').write_text(systemctl)
    os.chmod(str(bin_dir / 'systemctl'), 0o755)
    environment = dict(os.environ, JOURNAL_STREAM='8:1', PATH='%s:%s' % (bin_dir, os.environ.get('PATH', '')))
    # The memory of evictions is a fixed path on a host; this test's own, here.
    return subprocess.run(
        [sys.executable, '-c', 'import sys; from ansible_collections.qwf.collision_guard.plugins.module_utils '
                               'import _eviction; _eviction.STATE_PATH = sys.argv.pop(1); sys.exit(_eviction.main())',
         str(tmp_path / 'state' / 'evictions.json'), '--registry', registry, 'owner.service', '%d/tcp' % port],
        stderr=subprocess.PIPE, universal_newlines=True, env=environment, check=False, timeout=30)


def test_main_runs_as_a_command(tmp_path, squatter):
    process, port = squatter()
    result = run_as_command(tmp_path, port, SYSTEMCTL_UP)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith('<5>collision-guard-evict: evicting port=%d/tcp' % port)
    assert process.wait(5) == -signal.SIGTERM


def test_a_port_the_registry_no_longer_gives_the_unit_is_left_alone(tmp_path, squatter):
    process, port = squatter()
    registry = write_registry(tmp_path / 'registry.json', [{'port': 1, 'service': 'owner'}])
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    args = _eviction.parse_arguments(['--registry', registry, 'owner.service', '%d/tcp' % port])
    assert _eviction.run(args, journal) == _eviction.EXIT_FREE
    assert journal.lines == ['the registry no longer gives owner.service %d/tcp; nothing is evicted there (run harden '
                             'to update its drop-in)' % port]
    assert process.poll() is None


def test_when_systemd_does_not_answer_nothing_is_evicted(tmp_path, squatter):
    process, port = squatter()
    result = run_as_command(tmp_path, port, SYSTEMCTL_DOWN)
    assert result.returncode == _eviction.EXIT_REFUSED, result.stderr
    assert 'systemd did not say in time who the holders of the ports of owner.service are' in result.stderr
    assert 'nothing is evicted' in result.stderr
    assert process.poll() is None


# Respawns: watched for after an eviction, remembered across starts.

class FakeClock(object):
    """A clock that moves only when the watch sleeps."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def watch(reads, settle_sec=_eviction.SETTLE_SEC, deadline=200.0, evicted_pid=4242):
    """``retaken`` on a host whose holders are ``reads[i]`` at the i-th read (the last one from then on)."""
    clock = FakeClock()
    seen = []

    def read_holders(targets, proc='/proc'):
        seen.append(clock.now)
        return [dict(item) for item in reads[min(len(seen), len(reads)) - 1]]

    plan = {'evict': [{'holder': holder(evicted_pid), 'how': 'signal', 'port': '8765/tcp', 'reason': 'x'}],
            'keep': [], 'refuse': []}
    entries = [dict(judge().entries[0])]
    original = _eviction.read_holders
    _eviction.read_holders = read_holders
    try:
        found = _eviction.retaken([(8765, 'tcp', None)], plan, judge(), entries, deadline, settle_sec=settle_sec,
                                  poll_sec=0.02, clock=clock, sleep=clock.sleep)
    finally:
        _eviction.read_holders = original
    return [(item['pid'], label) for item, label in found], seen, clock.now - 100.0


def test_a_respawn_after_the_evictions_last_read_is_caught_and_ends_the_watch():
    found, seen, elapsed = watch([[], [], [holder(5000, ppid=77)]])
    assert found == [(5000, '8765/tcp')]
    assert len(seen) == 3 and elapsed == pytest.approx(0.04)


def test_a_port_that_stays_free_is_watched_for_the_settle_window_only():
    found, seen, elapsed = watch([[]])
    assert found == []
    assert elapsed == pytest.approx(_eviction.SETTLE_SEC, abs=0.021)


def test_the_watch_never_outlasts_the_deadline():
    found, seen, elapsed = watch([[]], deadline=100.1)
    assert found == [] and elapsed == pytest.approx(0.1, abs=0.021)


def test_the_evicted_process_and_pid_1_are_no_newcomers():
    assert watch([[holder(4242), holder(1, unit='sms-webhook.socket')]])[0] == []


def test_a_socket_left_without_a_process_is_waited_for_then_reported():
    orphan = holder(None, unit=None, state='LISTEN')
    found, seen, elapsed = watch([[orphan]])
    assert found == [(None, '8765/tcp')]
    assert elapsed == pytest.approx(_eviction.ORPHAN_SOCKET_SEC, abs=0.021)
    # ... and when it goes away in time, nobody took the port.
    found, seen, elapsed = watch([[orphan], [orphan], []])
    assert found == [] and elapsed == pytest.approx(_eviction.SETTLE_SEC, abs=0.021)


def test_a_closing_connection_on_the_port_is_nobodys_and_never_retaken():
    found, seen, elapsed = watch([[holder(None, unit=None, state='TIME-WAIT')]])
    assert found == [] and elapsed == pytest.approx(_eviction.SETTLE_SEC, abs=0.021)


def stat_line(pid, ppid, start, comm='python3'):
    fields = ['S', str(ppid)] + ['0'] * 17 + [str(start)] + ['0'] * 30
    return '%d (%s) %s\n' % (pid, comm, ' '.join(fields))


@pytest.mark.parametrize('comm', ['python3', 'a) b (c', ') 1 2 3'])
def test_process_start_reads_the_stat_file_past_any_command_name(tmp_path, comm):
    (tmp_path / '42').mkdir()
    (tmp_path / '42' / 'stat').write_text(stat_line(42, 7, 123456, comm))
    assert _eviction.process_start(42, str(tmp_path)) == 123456
    assert _eviction.process_start(43, str(tmp_path)) is None
    assert _eviction.process_start(None, str(tmp_path)) is None


def test_process_start_of_this_process_is_stable_and_its_parent_is_known():
    assert _eviction.process_start(os.getpid()) == _eviction.process_start(os.getpid()) > 0
    assert _eviction.remembered({'pid': os.getpid(), 'ppid': os.getppid()})['parent_start'] == \
        _eviction.process_start(os.getppid())


EVICTED = {'pid': 500, 'start': 9000, 'ppid': 400, 'parent_start': 8000}
RECORD = {'at': 50.0, 'wall': 1700000000, 'evicted': [EVICTED], 'newcomers': [
    {'pid': 501, 'start': 9100, 'ppid': 400, 'parent_start': 8000}]}


@pytest.mark.parametrize('process, reason', [
    ({'pid': 502, 'start': 9200, 'ppid': 400, 'parent_start': 8000},
     'respawned by pid 400, which also started pid 500, evicted from this port'),
    ({'pid': 501, 'start': 9100, 'ppid': 400, 'parent_start': 8000}, 'took the port back after pid 500 was evicted'),
    # A reused pid is another process.
    ({'pid': 502, 'start': 9200, 'ppid': 400, 'parent_start': 8500}, None),
    ({'pid': 501, 'start': 9150, 'ppid': 3, 'parent_start': 1}, None),
    # PID 1 parents every system service and adopts every orphan: no evidence.
    ({'pid': 502, 'start': 9200, 'ppid': 1, 'parent_start': 1}, None),
    # Gone meanwhile, its parent still tells.
    ({'pid': 502, 'start': None, 'ppid': 400, 'parent_start': 8000},
     'respawned by pid 400, which also started pid 500, evicted from this port'),
    ({'pid': 501, 'start': None, 'ppid': 3, 'parent_start': 1}, None),
    ({'pid': 502, 'start': 9200, 'ppid': 400, 'parent_start': None}, None),
])
def test_respawn_reason(process, reason):
    assert _eviction.respawn_reason(RECORD, process) == reason


@pytest.mark.parametrize('record', [None, 'x', [], {'evicted': 'x'}, {'evicted': [1, None]}, {'newcomers': [[]]}])
def test_a_malformed_record_names_no_respawn(record):
    assert _eviction.respawn_reason(record, {'pid': 502, 'start': 9200, 'ppid': 400, 'parent_start': 8000}) is None


@pytest.mark.parametrize('record, age', [(RECORD, 10.0), ({'at': 70.0}, None), ({'at': 'x'}, None), ({'at': True}, None),
                                         (None, None)])
def test_record_age(record, age):
    assert _eviction.record_age(record, 60.0) == age


def test_remember_records_each_port_and_forgets_old_ones():
    state = {'1/tcp': dict(RECORD, at=0.0), '2/tcp': dict(RECORD, at=3000.0), '3/tcp': {'at': 'bad'}}
    result = _eviction.remember(state, ['4/tcp', '2/tcp'], 3700.0, [EVICTED], [])
    assert sorted(result) == ['2/tcp', '4/tcp']
    assert result['2/tcp']['at'] == result['4/tcp']['at'] == 3700.0
    assert result['4/tcp']['evicted'] == [EVICTED] and result['4/tcp']['newcomers'] == []


def test_the_state_is_written_root_only_and_read_back(tmp_path):
    path = tmp_path / 'run' / 'evictions.json'
    assert _eviction.load_state(str(path)) == {}
    assert _eviction.save_state(str(path), {'8765/tcp': RECORD})
    assert oct(os.stat(str(path.parent)).st_mode & 0o777) == '0o700'
    assert oct(os.stat(str(path)).st_mode & 0o777) == '0o600'
    assert _eviction.load_state(str(path)) == {'8765/tcp': RECORD}
    assert os.listdir(str(path.parent)) == ['evictions.json']


@pytest.mark.parametrize('content', [b'{', b'\xff\xfe', b'[1]', b'"x"', b'[' * 100000, b'{"a": ' * 100000])
def test_a_corrupt_state_is_forgotten(tmp_path, content):
    path = tmp_path / 'run' / 'evictions.json'
    path.parent.mkdir(mode=0o700)
    path.write_bytes(content)
    assert _eviction.load_state(str(path)) == {}


def test_a_state_that_is_a_link_or_in_an_open_directory_is_not_trusted(tmp_path):
    path = tmp_path / 'run' / 'evictions.json'
    assert _eviction.save_state(str(path), {'8765/tcp': RECORD})
    planted = tmp_path / 'planted.json'
    planted.write_text('{"8765/tcp": {}}')
    os.unlink(str(path))
    os.symlink(str(planted), str(path))
    assert _eviction.load_state(str(path)) == {}
    # Writing replaces the link itself, never the file it points to.
    assert _eviction.save_state(str(path), {'1/tcp': RECORD})
    assert planted.read_text() == '{"8765/tcp": {}}' and not os.path.islink(str(path))
    os.chmod(str(path.parent), 0o777)
    assert _eviction.load_state(str(path)) == {}
    assert not _eviction.save_state(str(path), {})


def test_a_directory_that_cannot_be_made_leaves_no_state_and_no_error(tmp_path):
    (tmp_path / 'file').write_text('')
    assert not _eviction.save_state(str(tmp_path / 'file' / 'evictions.json'), {})
    assert _eviction.load_state(str(tmp_path / 'file' / 'evictions.json')) == {}


LOOP_SQUATTER = textwrap.dedent('''
    import socket, sys, time
    sock = socket.socket()
    sock.bind(('127.0.0.1', int(sys.argv[1])))
    sock.listen()
    time.sleep(60)
''')


def free_port():
    probe = socket.socket()
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def wait_until_held(port, timeout=10):
    limit = time.monotonic() + timeout
    while port_is_free(port):
        assert time.monotonic() < limit, 'nothing took port %d' % port
        time.sleep(0.02)


@pytest.fixture
def respawn_loop(tmp_path):
    """A shell loop that starts a squatter on the port again as soon as it ends, with an optional pause."""
    loops = []

    def start(port, pause=0):
        script = tmp_path / 'squatter.py'
        script.write_text(LOOP_SQUATTER)
        loop = subprocess.Popen(['/bin/sh', '-c', 'while :; do "$0" "$1" "$2"; sleep "$3"; done', sys.executable,
                                 str(script), str(port), str(pause)], start_new_session=True)
        loops.append(loop)
        wait_until_held(port)
        return loop

    yield start
    for loop in loops:
        os.killpg(loop.pid, signal.SIGKILL)
        loop.wait()


def test_a_shell_loop_that_rebinds_at_once_is_named_as_retaken_and_left_alone(tmp_path, systemd, respawn_loop):
    port = free_port()
    loop = respawn_loop(port)
    code, lines, elapsed = run_helper(tmp_path, port)
    assert code == _eviction.EXIT_RETAKEN
    assert [line.split(' ')[0] for line in lines] == ['evicting', 'evicted', 'retaken', 'the']
    evicted_pid = int(lines[1].split(' pid=')[1].split(' ')[0])
    retaken = lines[2]
    assert retaken.startswith('retaken port=%d/tcp pid=' % port)
    assert ' parent=%d ' % loop.pid in retaken and 'parent_cmdline="/bin/sh -c while' in retaken
    assert 'squatter.py %d' % port in retaken and ' pid=%d ' % evicted_pid not in retaken
    assert lines[3] == 'the ports of owner.service were retaken right after the eviction; not starting it'
    assert loop.poll() is None and elapsed < _eviction.SETTLE_SEC + 1.5
    # The next start within a minute names the respawn again and kills nobody.
    before = [holder['pid'] for holder in _eviction.read_holders([(port, 'tcp', None)])]
    code, lines, dummy = run_helper(tmp_path, port)
    assert code == _eviction.EXIT_RETAKEN
    assert lines[0].startswith('retaken port=%d/tcp pid=%d ' % (port, before[0]))
    assert 'took the port back after pid %d was evicted' % evicted_pid in lines[0]
    assert 'not evicted again within 60 s' in lines[0]
    assert lines[-1].startswith('not starting owner.service: its port was retaken by a respawn')
    assert lines[-1].endswith('nothing was killed')
    assert [holder['pid'] for holder in _eviction.read_holders([(port, 'tcp', None)])] == before


def test_a_loop_with_a_pause_is_named_on_the_next_start(tmp_path, systemd, respawn_loop):
    port = free_port()
    loop = respawn_loop(port, pause=1)
    code, lines, dummy = run_helper(tmp_path, port)
    assert code == _eviction.EXIT_FREE
    assert lines[-1].startswith('evicted ')
    wait_until_held(port)
    code, lines, dummy = run_helper(tmp_path, port)
    assert code == _eviction.EXIT_RETAKEN
    assert lines[0].startswith('retaken port=%d/tcp ' % port)
    assert 'respawned by pid %d, which also started pid ' % loop.pid in lines[0]
    assert not port_is_free(port)


def test_a_respawn_after_the_memory_is_evicted_again_and_still_named(tmp_path, systemd, squatter):
    first, port = squatter()
    assert run_helper(tmp_path, port)[0] == _eviction.EXIT_FREE
    state = _eviction.load_state(_eviction.STATE_PATH)
    # Long ago: the same parent (this test) starts another squatter on the port.
    state['%d/tcp' % port]['at'] -= _eviction.RESPAWN_MEMORY_SEC + 1
    assert _eviction.save_state(_eviction.STATE_PATH, state)
    second = subprocess.Popen([sys.executable, '-c', LOOP_SQUATTER, str(port)])
    try:
        wait_until_held(port)
        code, lines, dummy = run_helper(tmp_path, port)
        assert code == _eviction.EXIT_FREE
        assert lines[0].startswith('retaken port=%d/tcp pid=%d ' % (port, second.pid))
        assert 'respawned by pid %d, which also started pid %d, evicted from this port' % (os.getpid(), first.pid) \
            in lines[0]
        assert 'ago; evicting it again' in lines[0]
        assert lines[-1].startswith('evicted port=%d/tcp pid=%d ' % (port, second.pid))
        assert second.wait(5) == -signal.SIGTERM
    finally:
        if second.poll() is None:
            second.kill()
        second.wait()


def test_a_leftover_of_the_unit_itself_is_marked_so_it_is_never_taken_for_a_respawn():
    # Its processes share a parent from one start to the next; cleaning them up is no kill loop.
    found = judge()
    result = _eviction.plan_eviction([holder(600, unit='sms-webhook.service'), holder(700, inode=101)],
                                     found.entries, 'sms-webhook.service', found)
    assert [(item['holder']['pid'], item.get('leftover', False)) for item in result['evict']] == [(600, True), (700, False)]


def test_an_unexpected_error_lets_the_start_go_on_with_a_warning(monkeypatch, capsys):
    def broken(options, journal, proc='/proc'):
        raise KeyError('boom\nsecond line')

    monkeypatch.setattr(_eviction, 'run', broken)
    monkeypatch.setenv('JOURNAL_STREAM', '8:1')
    assert _eviction.main(['owner.service', '1/tcp']) == _eviction.EXIT_FREE
    err = capsys.readouterr().err
    assert err.startswith('<4>collision-guard-evict: failed unexpectedly ("KeyError: \'boom\\\\nsecond line\'" at ')
    assert err.count('\n') == 1 and 'the start goes on without freeing the port' in err


@pytest.mark.parametrize('content', [b'{', b'\xff\xfe\x00', b'[' * 100000, b'{"registry": 5}', b''])
def test_a_corrupt_registry_blocks_no_free_port_and_kills_nothing_on_a_held_one(tmp_path, squatter, systemd, content):
    registry = tmp_path / 'registry.json'
    registry.write_bytes(content)
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    args = _eviction.parse_arguments(['--registry', str(registry), 'owner.service', '%d/tcp' % free_port()])
    assert _eviction.run(args, journal) == _eviction.EXIT_FREE and journal.lines == []
    process, port = squatter()
    args = _eviction.parse_arguments(['--registry', str(registry), 'owner.service', '%d/tcp' % port])
    assert _eviction.run(args, journal) == _eviction.EXIT_REFUSED
    assert process.poll() is None
    assert len(journal.lines) == 1 and str(registry) in journal.lines[0]
    assert journal.lines[0].endswith('; pid %d holds a port of owner.service, and nothing is evicted' % process.pid)


def test_a_receipt_quotes_any_value_that_could_end_the_line_or_fake_a_key():
    line = _eviction.receipt('retaken', '1/tcp', holder(5), parent=7, parent_cmdline='sh\nretaken pid=1',
                             quoted='a"b', plain='x.service')
    assert '\n' not in line
    assert 'parent=7 parent_cmdline="sh\\nretaken pid=1" plain=x.service quoted="a\\"b"' in line
