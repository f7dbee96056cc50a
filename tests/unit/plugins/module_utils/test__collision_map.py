# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
import yaml

from ansible_collections.qwf.collision_guard.plugins.action.validate_registry import check_values
from ansible_collections.qwf.collision_guard.plugins.module_utils import _collision_map, _ownership
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import DEFAULT_NEVER_EVICT, validate_registry

REGISTRY = validate_registry([
    {'port': 8765, 'service': 'sms-webhook'},
    {'port': 8766, 'service': 'status-api'},
    {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
    {'port': 53, 'service': 'systemd-resolved', 'protocol': 'udp', 'address': '127.0.0.53'},
])
PROTECTED = [
    {'service': 'sms-webhook.service', 'changed': False},
    {'service': 'status-api.service', 'changed': False},
    {'service': 'syslog-relay.service', 'changed': True},
    {'service': 'systemd-resolved.service', 'changed': False},
]


def listener(port, unit, pid, protocol='tcp', family='ipv4', address='0.0.0.0', name='python3'):
    return {'protocol': protocol, 'family': family, 'address': address, 'port': port, 'pid': pid,
            'name': name, 'unit': unit, 'user_manager': None, 'user': 'root', 'cmdline': [name],
            'container': None, 'dual_stack': None if address == '::' else False}


SQUATTER_UNIT = 'collision-guard-squatter-8765-tcp.service'
LISTENERS = [
    listener(8765, SQUATTER_UNIT, 40),
    listener(5514, 'syslog-relay.service', 41, protocol='udp'),
    listener(8799, 'scratch-api.service', 42),
    listener(8799, 'scratch-api.service', 42, family='ipv6', address='::'),
    listener(8786, 'cg-socket-demo.socket', 1, name='systemd'),
    listener(9000, 'session-3.scope', 43),
    listener(22, None, 44, name='sshd'),
    listener(53, 'systemd-resolved.service', 50, protocol='udp', address='127.0.0.53', name='systemd-resolve'),
    listener(53, 'dnsmasq.service', 51, protocol='udp', address='127.0.0.2', name='dnsmasq'),
]


def holder(item, **extra):
    """A holder as port_ownership_info reports it."""
    return dict(dict((key, item[key]) for key in ('pid', 'name', 'user', 'cmdline', 'unit', 'container')), **extra)


def finding(entry, severity, message, holders=()):
    return {'port': entry['port'], 'protocol': entry['protocol'], 'address': entry['address'],
            'service': entry['service'], 'severity': severity, 'holders': list(holders), 'message': message}


SMS, STATUS, SYSLOG, RESOLVED = REGISTRY
# What port_ownership_info judges on web1 for LISTENERS.
OWNERSHIP = {
    'findings': [
        finding(SMS, 'critical', 'held by %s (pid 40), not by sms-webhook.service: its next start fails unless the '
                                 'holder is evicted' % SQUATTER_UNIT,
                [holder(LISTENERS[0], reason='not registered for this port')]),
        finding(STATUS, 'warning', 'nothing listens on it: status-api.service is not serving'),
        finding(SYSLOG, 'ok', 'held by syslog-relay.service'),
        finding(RESOLVED, 'ok', 'held by systemd-resolved.service'),
    ],
    'unregistered': [dict(holder(item), port=item['port'], protocol=item['protocol'], address=item['address'])
                     for item in [LISTENERS[index] for index in (6, 4, 2, 5)] + [LISTENERS[8]]],
}
FINDINGS = [
    {'type': 'sqlite', 'path': '/var/lib/app/wal.db', 'risk': 'low', 'reason': 'WAL', 'protection': 'WAL journal',
     'owners': ['app.service (pid 7)']},
    {'type': 'pidfile', 'path': '/run/ghost.pid', 'risk': 'medium', 'reason': 'dead', 'protection': 'none', 'owners': []},
]


def rows_by_where(rows):
    return dict((row['where'].split(' ')[0], row) for row in rows)


def web1_rows():
    return rows_by_where(_collision_map.port_rows('web1', LISTENERS, OWNERSHIP['findings'], OWNERSHIP['unregistered'],
                                                  PROTECTED))


def test_a_critical_finding_is_critical_and_names_the_holder():
    row = web1_rows()['8765/tcp']
    assert (row['resource'], row['owner'], row['risk']) == ('sms-webhook.service', SQUATTER_UNIT, 'critical')
    assert row['reason'] == ('registered to sms-webhook.service but held by %s (pid 40), not by sms-webhook.service: '
                             'its next start fails unless the holder is evicted' % SQUATTER_UNIT)
    assert row['protection'] == 'port-cleanup drop-in'
    assert row['where'] == '8765/tcp on 0.0.0.0'


def test_a_critical_holder_without_a_unit_is_named_by_process():
    item = listener(8765, None, 77, name='nc')
    row, = _collision_map.port_rows('h', [item], [finding(SMS, 'critical', 'held by nc (pid 77)', [holder(item)])], [],
                                    [])
    assert (row['owner'], row['risk'], row['protection']) == ('nc (pid 77)', 'critical', 'none')


def test_an_ok_finding_is_low_only_when_protected():
    rows = web1_rows()
    resolved = rows['127.0.0.53:53/udp']
    assert (resolved['owner'], resolved['risk'], resolved['protection']) == (
        'systemd-resolved.service', 'low', 'port-cleanup drop-in')
    assert resolved['reason'] == 'held by systemd-resolved.service'
    # dnsmasq on 127.0.0.2 shares the port, not the address.
    assert resolved['where'] == '127.0.0.53:53/udp on 127.0.0.53'
    syslog = rows['5514/udp']
    assert (syslog['owner'], syslog['risk'], syslog['protection']) == ('syslog-relay.service', 'medium', 'none')
    assert syslog['reason'] == 'held by syslog-relay.service, but harden has not protected it on this host'


def test_a_warning_finding_is_medium_without_an_owner():
    row = web1_rows()['8766/tcp']
    assert (row['owner'], row['risk'], row['where']) == ('-', 'medium', '8766/tcp')
    assert row['reason'] == 'registered and present, but nothing listens: the service is down'


def test_unregistered_rows():
    rows = web1_rows()
    assert rows['8799/tcp']['where'] == '8799/tcp on 0.0.0.0, [::]'
    assert (rows['8799/tcp']['risk'], rows['8799/tcp']['owner']) == ('medium', 'scratch-api.service')
    assert 'no registered owner' in rows['8799/tcp']['reason']
    assert (rows['8786/tcp']['risk'], rows['8786/tcp']['protection']) == ('low', 'socket unit')
    assert rows['9000/tcp']['risk'] == 'medium' and 'ad-hoc' in rows['9000/tcp']['reason']
    assert rows['22/tcp']['owner'] == 'sshd (pid 44)'
    assert rows['53/udp']['where'] == '53/udp on 127.0.0.2'
    assert rows['53/udp']['owner'] == 'dnsmasq.service'
    assert len(rows) == 9


def test_rows_from_the_ownership_judgement_itself():
    """The findings come from _ownership as port_ownership_info makes them, so the shapes cannot drift apart."""
    properties = dict((name, {'Id': name, 'LoadState': 'loaded', 'ActiveState': 'active',
                              'FragmentPath': '/etc/systemd/system/' + name})
                      for name in ('sms-webhook.service', 'status-api.service', 'syslog-relay.service',
                                   'systemd-resolved.service', 'scratch-api.service', 'dnsmasq.service',
                                   'cg-socket-demo.socket'))
    judge = _ownership.Judge(REGISTRY, _ownership.UnitView(properties))
    findings, unregistered = _ownership.ownership_findings(judge, LISTENERS)
    rows = rows_by_where(_collision_map.port_rows('web1', LISTENERS, findings, unregistered, PROTECTED))
    assert dict((where, row['risk']) for where, row in rows.items()) == dict(
        (where, row['risk']) for where, row in web1_rows().items())
    assert rows['8765/tcp']['owner'] == SQUATTER_UNIT
    assert rows['8799/tcp']['where'] == '8799/tcp on 0.0.0.0, [::]'
    assert rows['127.0.0.53:53/udp']['where'] == '127.0.0.53:53/udp on 127.0.0.53'


def test_map_is_sorted_by_risk_and_deterministic():
    hosts = {'web2': {'listeners': LISTENERS, 'findings': FINDINGS, 'ownership': OWNERSHIP, 'protected': PROTECTED},
             'web1': {'listeners': list(reversed(LISTENERS)), 'findings': FINDINGS, 'ownership': OWNERSHIP,
                      'protected': PROTECTED}}
    rows = _collision_map.build_map(hosts)
    risks = [row['risk'] for row in rows]
    assert risks == sorted(risks, key=_collision_map.RISK_ORDER.get)
    assert [row['host'] for row in rows if row['risk'] == 'critical'] == ['web1', 'web2']
    assert _collision_map.render_markdown(rows) == _collision_map.render_markdown(_collision_map.build_map(hosts))
    assert json.loads(_collision_map.render_json(rows))['rows'] == rows


def test_a_host_without_ownership_results_has_only_file_rows():
    rows = _collision_map.build_map({'web1': {'listeners': LISTENERS, 'findings': FINDINGS}})
    assert [row['type'] for row in rows] == ['pidfile', 'sqlite']


def test_markdown_has_host_and_fleet_tables():
    rows = _collision_map.build_map({'web1': {'listeners': LISTENERS, 'findings': FINDINGS,
                                              'ownership': OWNERSHIP, 'protected': PROTECTED}})
    text = _collision_map.render_markdown(rows)
    assert '## web1' in text and '## Fleet' in text
    assert '| Resource | Type | Owner | Port/Path | Risk | Protection |' in text
    assert '| Host | Resource | Type | Owner | Port/Path | Risk | Protection |' in text
    assert '| ghost.pid | PID file | - | /run/ghost.pid | medium | none |' in text
    assert ('| systemd-resolved.service | port | systemd-resolved.service | 127.0.0.53:53/udp on 127.0.0.53 | low | '
            'port-cleanup drop-in |') in text
    assert 'Fleet: 1 critical, 7 medium, 3 low.' in text


def test_cells_cannot_break_the_table():
    rows = [{'host': 'h', 'resource': 'a|b', 'type': 'shared-file', 'owner': 'x\ny', 'where': '/tmp/a|b',
             'risk': 'low', 'reason': 'r', 'protection': 'none'}]
    line = [entry for entry in _collision_map.render_markdown(rows).splitlines() if entry.startswith('| a')][0]
    assert line == '| a\\|b | shared file | x y | /tmp/a\\|b | low | none |'


def test_control_characters_from_other_users_reach_the_map_escaped():
    rows = [{'host': 'h', 'resource': 'a', 'type': 'shared-file', 'owner': 'x\x1b[2Jy', 'where': '/tmp/a\rb',
             'risk': 'low', 'reason': 'r', 'protection': 'none'}]
    line = [entry for entry in _collision_map.render_markdown(rows).splitlines() if entry.startswith('| a')][0]
    assert line == '| a | shared file | x\\x1b[2Jy | /tmp/a\\rb | low | none |'


def draft_of(hosts):
    text = _collision_map.registry_draft(hosts)
    draft = yaml.safe_load(text)['collision_guard_registry']
    # What the audit proposes passes validation unchanged, as the action plugin runs it.
    entries, problems = check_values(draft, 'registry.draft.yml', list(DEFAULT_NEVER_EVICT))
    assert problems == []
    assert entries == validate_registry(draft) == [dict(normalised, **entry) for normalised, entry in zip(
        validate_registry(draft), draft)]
    return text, draft


def test_registry_draft_is_valid_registry_yaml():
    hosts = {'web1': {'listeners': LISTENERS}, 'web2': {'listeners': [listener(8799, 'other-api.service', 9)]}}
    text, draft = draft_of(hosts)
    assert [(entry['port'], entry['service'], entry.get('address')) for entry in draft] == [
        (53, 'dnsmasq.service', '127.0.0.2'), (53, 'systemd-resolved.service', '127.0.0.53'),
        (5514, 'syslog-relay.service', None), (8799, 'other-api.service', None)]
    assert '# 8799/tcp is also held by scratch-api.service on web1' in text
    assert 'collision-guard-squatter' not in text
    assert 'session-3.scope' not in text and 'cg-socket-demo' not in text


def test_registry_draft_proposes_the_address_of_services_that_share_a_port():
    hosts = {'dns1': {'listeners': [
        listener(53, 'dnsmasq.service', 51, protocol='udp', address='127.0.0.2'),
        listener(53, 'systemd-resolved.service', 50, protocol='udp', address='127.0.0.53'),
    ]}}
    text, draft = draft_of(hosts)
    assert draft == [
        {'port': 53, 'service': 'dnsmasq.service', 'protocol': 'udp', 'address': '127.0.0.2', 'notes': 'seen on dns1'},
        {'port': 53, 'service': 'systemd-resolved.service', 'protocol': 'udp', 'address': '127.0.0.53',
         'notes': 'seen on dns1'},
    ]
    assert '#' not in text.split('collision_guard_registry:')[1]


def test_registry_draft_names_each_address_with_the_hosts_that_bind_it():
    hosts = {
        'web1': {'listeners': [listener(8080, 'api.service', 5, address='127.0.0.1'),
                               listener(8080, 'api.service', 5, family='ipv6', address='::1')]},
        'web2': {'listeners': [listener(8080, 'api.service', 6, address='127.0.0.1')]},
    }
    dummy, draft = draft_of(hosts)
    assert [(entry['address'], entry['notes']) for entry in draft] == [
        ('127.0.0.1', 'seen on web1, web2'), ('::1', 'seen on web1')]


def test_a_wildcard_listener_proposes_no_address():
    hosts = {
        'web1': {'listeners': [listener(8080, 'api.service', 5, address='127.0.0.1')]},
        'web2': {'listeners': [listener(8080, 'api.service', 6, family='ipv6', address='::')]},
    }
    dummy, draft = draft_of(hosts)
    assert draft == [{'port': 8080, 'service': 'api.service', 'protocol': 'tcp', 'notes': 'seen on web1, web2'}]


def test_a_colliding_address_is_proposed_commented_out():
    hosts = {'web1': {'listeners': [listener(53, 'dnsmasq.service', 51, protocol='udp', address='127.0.0.1'),
                                    listener(53, 'knot.service', 53, protocol='udp', family='ipv6', address='::1'),
                                    listener(53, 'unbound.service', 52, protocol='udp', address='0.0.0.0')]},
             'web2': {'listeners': [listener(53, 'pdns.service', 54, protocol='udp', address='127.0.0.1')]}}
    text, draft = draft_of(hosts)
    assert [entry['service'] for entry in draft] == ['dnsmasq.service', 'knot.service']
    assert text.splitlines()[-2:] == [
        '  # 127.0.0.1:53/udp is also held by pdns.service on web2; one port can have one owner.',
        '  # 53/udp is also held by unbound.service on web1; one port can have one owner.']


def test_registry_draft_leaves_out_user_units_and_canonicalises_addresses():
    user_unit = dict(listener(8080, 'api.service', 5), user_manager='user@1000.service')
    hosts = {'web1': {'listeners': [user_unit, listener(9090, 'mapped.service', 7, family='ipv6',
                                                        address='::ffff:127.0.0.2')]}}
    dummy, draft = draft_of(hosts)
    assert [(entry['service'], entry['address']) for entry in draft] == [('mapped.service', '::ffff:127.0.0.2')]


def test_empty_registry_draft():
    assert yaml.safe_load(_collision_map.registry_draft({}))['collision_guard_registry'] == []
    only_sessions = {'web1': {'listeners': [listener(9000, 'session-3.scope', 43)]}}
    assert yaml.safe_load(_collision_map.registry_draft(only_sessions))['collision_guard_registry'] == []


@pytest.mark.parametrize('findings, count', [([], 0), (FINDINGS, 2)])
def test_file_rows(findings, count):
    rows = _collision_map.file_rows('web1', findings)
    assert len(rows) == count
    for row, finding in zip(rows, findings):
        assert (row['where'], row['risk'], row['protection']) == (finding['path'], finding['risk'], finding['protection'])


def test_registry_table_marks_the_entries_on_this_host_and_escapes_notes():
    registry = validate_registry([
        {'port': 8765, 'service': 'sms-webhook', 'notes': 'Twilio | inbound\nsecond line'},
        {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
        {'port': 53, 'service': 'systemd-resolved', 'protocol': 'udp', 'address': '127.0.0.53'},
        {'port': 53, 'service': 'knot', 'protocol': 'udp', 'address': '::1'},
    ], where='test')
    assert _collision_map.registry_table(registry, ['sms-webhook.service', 'knot.service']) == (
        '| Port | Service | Protocol | Notes | On this host |\n'
        '|---|---|---|---|---|\n'
        '| 127.0.0.53:53 | systemd-resolved.service | udp |  | no |\n'
        '| [::1]:53 | knot.service | udp |  | yes |\n'
        '| 5514 | syslog-relay.service | udp |  | no |\n'
        '| 8765 | sms-webhook.service | tcp | Twilio \\| inbound second line | yes |\n')
