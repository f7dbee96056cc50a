# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import socket
import time

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import (
    check_table,
    fleet_findings,
    gather_findings,
    ownership_findings,
    parse_host_time,
    port_owner_state,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry


def listener(unit, pid=10, family='ipv4', port=8765, protocol='tcp', cmdline=()):
    return {'protocol': protocol, 'family': family, 'address': '0.0.0.0', 'port': port, 'inode': 1, 'pid': pid,
            'name': 'python3', 'user': 'root', 'cmdline': list(cmdline), 'unit': unit, 'container': None}


@pytest.mark.parametrize('listeners, state', [
    ([], 'free'),
    ([listener('sms-webhook.service')], 'owned'),
    ([listener('sms-webhook.service'), listener('sms-webhook.service', pid=11, family='ipv6')], 'owned'),
    ([listener('collision-guard-squatter-8765-tcp.service')], 'squatted'),
    ([listener('sms-webhook.service'), listener('session-3.scope', pid=99)], 'squatted'),
    ([listener(None, pid=None)], 'squatted'),
], ids=['free', 'owned', 'owned-v4-and-v6', 'squatter', 'shared-with-squatter', 'unknown-holder'])
def test_port_owner_state(listeners, state):
    assert port_owner_state(listeners, 'sms-webhook.service') == state


def test_parse_host_time_reads_both_forms_of_the_command_module():
    moment = datetime.datetime(2026, 11, 27, 20, 54, 49, 123456)
    expected = time.mktime(moment.timetuple()) + 0.123456
    assert parse_host_time(str(moment)) == pytest.approx(expected)
    assert parse_host_time(str(moment.replace(microsecond=0))) == pytest.approx(expected - 0.123456)


def test_parse_host_time_refuses_other_text():
    with pytest.raises(ValueError, match='is not a time'):
        parse_host_time('yesterday')


REGISTRY = validate_registry([
    {'port': 8765, 'service': 'sms-webhook'},
    {'port': 8766, 'service': 'status-api'},
    {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
    {'port': 631, 'service': 'cups'},
    {'port': 9100, 'service': 'billing-worker'},
], where='test')
PRESENT = {'sms-webhook.service', 'status-api.service', 'syslog-relay.service', 'cups.service'}


def test_each_present_entry_gets_ok_warning_or_critical_and_absent_units_none():
    squatter = listener('session-7.scope', pid=4242, port=8766, cmdline=['python3', '-m', 'http.server', '8766'])
    findings, unregistered = ownership_findings(REGISTRY, [
        listener('sms-webhook.service'),
        listener('sms-webhook.service', pid=11, family='ipv6'),
        squatter,
        listener('status-api.service', pid=12, port=8766),
        listener('cups.socket', pid=1, port=631),
        listener('scratch-api.service', pid=13, port=8799),
    ], PRESENT)
    assert [(item['service'], item['severity']) for item in findings] == [
        ('status-api.service', 'critical'),
        ('syslog-relay.service', 'warning'),
        ('cups.service', 'ok'),
        ('sms-webhook.service', 'ok'),
    ]
    assert findings[0]['holders'] == [{'pid': 4242, 'name': 'python3', 'user': 'root',
                                       'cmdline': ['python3', '-m', 'http.server', '8766'],
                                       'unit': 'session-7.scope', 'container': None}]
    assert findings[0]['message'] == 'held by session-7.scope (pid 4242), not by status-api.service: its next start fails'
    assert findings[1]['message'] == 'nothing listens on it: syslog-relay.service is not serving'
    assert [(item['port'], item['unit']) for item in unregistered] == [(8799, 'scratch-api.service')]


def test_another_units_socket_unit_is_a_squatter():
    findings, dummy = ownership_findings(REGISTRY, [listener('printing.socket', pid=1, port=631)], PRESENT)
    assert [item['severity'] for item in findings if item['service'] == 'cups.service'] == ['critical']


def test_an_unknown_holder_is_critical():
    findings, dummy = ownership_findings(REGISTRY, [listener(None, pid=None)], {'sms-webhook.service'})
    assert findings[0]['severity'] == 'critical'
    assert findings[0]['message'].startswith('held by python3 (pid None)')


def test_gather_findings_reads_this_hosts_sockets_and_asks_systemd_which_units_exist():
    squatted = socket.socket()
    squatted.bind(('127.0.0.1', 0))
    squatted.listen()
    port = squatted.getsockname()[1]
    registry = validate_registry([{'port': port, 'service': 'owner'}, {'port': port, 'service': 'gone',
                                                                       'protocol': 'udp'}], where='test')
    asked = []

    def unit_properties(units):
        asked.append(units)
        return {'owner.service': {'LoadState': 'loaded'}, 'gone.service': {'LoadState': 'not-found'}}

    try:
        findings, unregistered, complete = gather_findings(registry, unit_properties, lambda argv, what: '')
    finally:
        squatted.close()
    assert asked == [['owner.service', 'gone.service']]
    assert [(item['port'], item['service'], item['severity']) for item in findings] == [
        (port, 'owner.service', 'critical')]
    assert [holder['pid'] for holder in findings[0]['holders']] == [os.getpid()]
    assert all(item['port'] != port for item in unregistered)
    assert complete in (True, False)


def test_fleet_findings_and_table():
    host_findings = {
        'web-2': [{'port': 8765, 'protocol': 'tcp', 'service': 'sms-webhook.service', 'severity': 'ok',
                   'holders': [], 'message': 'held by sms-webhook.service'}],
        'web-1': [{'port': 8765, 'protocol': 'tcp', 'service': 'sms-webhook.service', 'severity': 'critical',
                   'holders': [{'pid': 4242, 'name': 'python3', 'user': 'root', 'cmdline': ['python3', '-m', 'http.server'],
                                'unit': 'session-7.scope', 'container': None}],
                   'message': 'held by session-7.scope (pid 4242)'}],
        'db-1': None,
    }
    flat = fleet_findings(host_findings)
    assert [(item['host'], item['severity']) for item in flat] == [('web-1', 'critical'), ('web-2', 'ok')]
    assert check_table(flat) == [
        'host   port      service              state     holder',
        'web-1  8765/tcp  sms-webhook.service  CRITICAL  session-7.scope pid 4242: python3 -m http.server',
        'web-2  8765/tcp  sms-webhook.service  OK        -',
    ]
