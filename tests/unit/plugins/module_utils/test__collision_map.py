# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
import yaml

from ansible_collections.qwf.collision_guard.plugins.module_utils import _collision_map
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry

REGISTRY = validate_registry([
    {'port': 8765, 'service': 'sms-webhook'},
    {'port': 8766, 'service': 'status-api'},
    {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
])
PROTECTED = [
    {'service': 'sms-webhook.service', 'changed': False},
    {'service': 'status-api.service', 'changed': False},
    {'service': 'syslog-relay.service', 'changed': True},
]


def listener(port, unit, pid, protocol='tcp', family='ipv4', address='0.0.0.0', name='python3'):
    return {'protocol': protocol, 'family': family, 'address': address, 'port': port, 'pid': pid,
            'name': name, 'unit': unit}


LISTENERS = [
    listener(8765, 'collision-guard-squatter-8765-tcp.service', 40),
    listener(5514, 'syslog-relay.service', 41, protocol='udp'),
    listener(8799, 'scratch-api.service', 42),
    listener(8799, 'scratch-api.service', 42, family='ipv6', address='::'),
    listener(8786, 'cg-socket-demo.socket', 1, name='systemd'),
    listener(9000, 'session-3.scope', 43),
    listener(22, None, 44, name='sshd'),
]
FINDINGS = [
    {'type': 'sqlite', 'path': '/var/lib/app/wal.db', 'risk': 'low', 'reason': 'WAL', 'protection': 'WAL journal',
     'owners': ['app.service (pid 7)']},
    {'type': 'pidfile', 'path': '/run/ghost.pid', 'risk': 'medium', 'reason': 'dead', 'protection': 'none', 'owners': []},
]


def rows_by_where(rows):
    return dict((row['where'].split(' ')[0], row) for row in rows)


def test_port_rows_judge_each_port():
    rows = rows_by_where(_collision_map.port_rows('web1', LISTENERS, REGISTRY, PROTECTED))
    assert (rows['8765/tcp']['risk'], rows['8765/tcp']['resource']) == ('critical', 'sms-webhook.service')
    assert 'held by collision-guard-squatter-8765-tcp.service' in rows['8765/tcp']['reason']
    assert rows['8765/tcp']['protection'] == 'port-cleanup drop-in'
    assert (rows['5514/udp']['risk'], rows['5514/udp']['protection']) == ('medium', 'none')
    assert rows['8799/tcp']['where'] == '8799/tcp on 0.0.0.0, [::]'
    assert rows['8799/tcp']['risk'] == 'medium'
    assert (rows['8786/tcp']['risk'], rows['8786/tcp']['protection']) == ('low', 'socket unit')
    assert rows['9000/tcp']['risk'] == 'medium'
    assert rows['22/tcp']['owner'] == 'sshd (pid 44)'
    # Registered and present, but nothing listens.
    assert (rows['8766/tcp']['risk'], rows['8766/tcp']['owner']) == ('medium', '-')


def test_map_is_sorted_by_risk_and_deterministic():
    hosts = {'web2': {'listeners': LISTENERS, 'findings': FINDINGS, 'registry': REGISTRY, 'protected': PROTECTED},
             'web1': {'listeners': list(reversed(LISTENERS)), 'findings': FINDINGS, 'registry': REGISTRY,
                      'protected': PROTECTED}}
    rows = _collision_map.build_map(hosts)
    risks = [row['risk'] for row in rows]
    assert risks == sorted(risks, key=_collision_map.RISK_ORDER.get)
    assert _collision_map.render_markdown(rows) == _collision_map.render_markdown(_collision_map.build_map(hosts))
    assert json.loads(_collision_map.render_json(rows))['rows'] == rows


def test_markdown_has_host_and_fleet_tables():
    rows = _collision_map.build_map({'web1': {'listeners': LISTENERS, 'findings': FINDINGS,
                                              'registry': REGISTRY, 'protected': PROTECTED}})
    text = _collision_map.render_markdown(rows)
    assert '## web1' in text and '## Fleet' in text
    assert '| Resource | Type | Owner | Port/Path | Risk | Protection |' in text
    assert '| Host | Resource | Type | Owner | Port/Path | Risk | Protection |' in text
    assert '| ghost.pid | PID file | - | /run/ghost.pid | medium | none |' in text
    assert 'Fleet: 1 critical,' in text


def test_cells_cannot_break_the_table():
    rows = [{'host': 'h', 'resource': 'a|b', 'type': 'shared-file', 'owner': 'x\ny', 'where': '/tmp/a|b',
             'risk': 'low', 'reason': 'r', 'protection': 'none'}]
    line = [entry for entry in _collision_map.render_markdown(rows).splitlines() if entry.startswith('| a')][0]
    assert line == '| a\\|b | shared file | x y | /tmp/a\\|b | low | none |'


def test_registry_draft_is_valid_registry_yaml():
    hosts = {'web1': {'listeners': LISTENERS}, 'web2': {'listeners': [listener(8799, 'other-api.service', 9)]}}
    text = _collision_map.registry_draft(hosts)
    draft = yaml.safe_load(text)['collision_guard_registry']
    assert validate_registry(draft) == draft
    assert [(entry['port'], entry['service']) for entry in draft] == [
        (5514, 'syslog-relay.service'), (8799, 'other-api.service')]
    assert '# 8799/tcp is also held by scratch-api.service on web1' in text
    assert 'collision-guard-squatter' not in text


def test_empty_registry_draft():
    assert yaml.safe_load(_collision_map.registry_draft({}))['collision_guard_registry'] == []


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
    ], where='test')
    assert _collision_map.registry_table(registry, ['sms-webhook.service']) == (
        '| Port | Service | Protocol | Notes | On this host |\n'
        '|---|---|---|---|---|\n'
        '| 5514 | syslog-relay.service | udp |  | no |\n'
        '| 8765 | sms-webhook.service | tcp | Twilio \\| inbound second line | yes |\n')
