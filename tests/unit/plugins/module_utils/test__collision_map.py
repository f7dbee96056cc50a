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
from ansible_collections.qwf.collision_guard.plugins.module_utils import _collision_map, _file_usage, _ownership, _registry, _sqlite
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import DEFAULT_NEVER_EVICT, printable, validate_registry

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
    document = yaml.safe_load(text)
    draft = document['collision_guard_registry']
    assert set(document) <= set(['collision_guard_registry', 'collision_guard_sqlite'])
    if 'collision_guard_sqlite' in document:
        databases = document['collision_guard_sqlite']
        assert all(sorted(item) == ['journal_mode', 'path'] for item in databases)
        assert all(item['journal_mode'] == 'wal' and isinstance(item['path'], str) for item in databases)
        assert _sqlite.sqlite_problems(databases) == []
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


# The file protocols of issue 13: what registry_draft proposes from file_usage_info's findings.

def file_holder(pid, unit=None, session=None, name='python3', writing=None, cwd=False):
    """A holder as file_usage_info reports it."""
    return {'pid': pid, 'name': name, 'unit': unit, 'session': session, 'writing': writing, 'cwd': cwd}


def sqlite_finding(path, mode, holders):
    """A SQLite finding as file_usage_info reports it (risk and reason as _file_usage judges a shared one)."""
    return {'type': 'sqlite', 'path': path, 'journal_mode': mode, 'companions': [], 'holders': holders,
            'owners': ['%s (pid %s)' % (item['unit'] or item['name'], item['pid']) for item in holders],
            'risk': 'low' if mode == 'wal' else 'critical', 'reason': 'r', 'protection': 'WAL journal' if mode == 'wal' else 'none'}


def temp_finding(path, holders):
    """A shared temp path as file_usage_info reports it."""
    return {'type': 'shared-temp', 'path': path, 'holders': holders,
            'owners': ['%s (pid %s)' % (item['unit'] or item['name'], item['pid']) for item in holders],
            'writers': [], 'risk': 'medium', 'reason': 'r', 'protection': 'none'}


WRITER = file_holder(10, 'writer.service', writing='write')
READER = file_holder(11, 'reader.service')
REPORT_API = file_holder(20, 'report-api.service', writing='write')
BATCH = file_holder(21, 'batch.service', writing='write')
REPORT_API_LISTENER = listener(8771, 'report-api.service', 20)


def test_the_fixtures_have_the_keys_file_usage_info_gives():
    """Only the keys matter to the draft; they must be the ones _file_usage writes, so the shapes cannot drift apart."""
    holders = [WRITER, READER]
    assert set(sqlite_finding('/a.db', 'rollback', holders)) == set(
        _file_usage.assess_sqlite('/a.db', 'rollback', holders, []))
    assert _file_usage.assess_sqlite('/a.db', 'rollback', holders, [])['journal_mode'] == 'rollback'
    assert set(temp_finding('/tmp/a', holders)) == set(_file_usage.assess_shared_path('/tmp/a', holders, holders, 'temp'))
    assert _file_usage.assess_shared_path('/tmp/a', holders, holders, 'temp')['type'] == 'shared-temp'


def sqlite_section_of(text):
    return yaml.safe_load(text).get('collision_guard_sqlite')


@pytest.mark.parametrize('findings, expected, comments', [
    pytest.param({'host1': [sqlite_finding('/srv/app/app.db', 'rollback', [WRITER, READER])],
                  'host2': [sqlite_finding('/srv/app/app.db', 'rollback', [dict(WRITER, pid=30), dict(READER, pid=31)])]},
                 ['/srv/app/app.db'], ['  # rollback journal opened by reader.service, writer.service on host1, host2'],
                 id='rollback-two-units-two-hosts-one-entry'),
    pytest.param({'host1': [sqlite_finding('/srv/app/app.db', 'rollback', [WRITER, READER])],
                  'host2': [sqlite_finding('/srv/app/app.db', 'rollback', [WRITER, file_holder(31, 'cron.service')])]},
                 ['/srv/app/app.db'],
                 ['  # rollback journal opened by cron.service, writer.service on host2; reader.service, writer.service '
                  'on host1'], id='other-owners-on-each-host'),
    pytest.param({'host1': [sqlite_finding('/srv/app/app.db', 'rollback', [WRITER, READER])],
                  'host2': [sqlite_finding('/srv/app/app.db', 'wal', [WRITER, READER])]},
                 ['/srv/app/app.db'], ['  # rollback journal opened by reader.service, writer.service on host1'],
                 id='wal-on-one-host-names-only-the-other'),
    pytest.param({'host1': [sqlite_finding('/srv/b.db', 'rollback', [file_holder(40, session='3'), file_holder(41)]),
                            sqlite_finding('/srv/a.db', 'rollback', [WRITER, file_holder(42, session='3')])]},
                 ['/srv/a.db', '/srv/b.db'],
                 ['  # rollback journal opened by session 3, writer.service on host1',
                  '  # rollback journal opened by pid 41, session 3 on host1'], id='sessions-and-pids-sorted-by-path'),
    pytest.param({'host1': [sqlite_finding('/srv/app/app.db', 'wal', [WRITER, READER])]}, None, [], id='wal'),
    pytest.param({'host1': [sqlite_finding('/srv/app/app.db', 'rollback', [WRITER, dict(WRITER, pid=12)])]}, None, [],
                 id='rollback-one-unit-two-pids'),
    pytest.param({'host1': [sqlite_finding('/srv/app/app.db', 'rollback',
                                           [file_holder(40, session='3'), file_holder(41, session='3')])]}, None, [],
                 id='rollback-one-session'),
    pytest.param({'host1': [sqlite_finding('/srv/app/app.db', 'rollback', [WRITER])],
                  'host2': [sqlite_finding('/srv/app/app.db', 'rollback', [READER])]}, None, [],
                 id='one-owner-on-each-host'),
    pytest.param({'host1': [dict(temp_finding('/tmp/app.db', [WRITER, READER]), type='shared-file')]}, None, [],
                 id='not-sqlite'),
])
def test_sqlite_draft(findings, expected, comments):
    hosts = dict((host, {'listeners': [REPORT_API_LISTENER], 'findings': items}) for host, items in findings.items())
    text, dummy = draft_of(hosts)
    if expected is None:
        assert 'collision_guard_sqlite' not in text and 'SQLite' not in text
        # The draft is as it was before the file protocols.
        assert text == _collision_map.registry_draft(dict((host, {'listeners': [REPORT_API_LISTENER]}) for host in hosts))
        return
    assert sqlite_section_of(text) == [{'path': path, 'journal_mode': 'wal'} for path in expected]
    lines = text.splitlines()
    assert [lines[index - 1] for index, line in enumerate(lines) if line.startswith('  - path: ')] == comments
    # After the registry, at the top level.
    assert text.index('collision_guard_registry:') < text.index('\ncollision_guard_sqlite:\n')


@pytest.mark.parametrize('listeners, findings, private_tmp, comments', [
    pytest.param([REPORT_API_LISTENER], [temp_finding('/tmp/workdir/out.txt', [REPORT_API, BATCH])],
                 ['report-api.service'],
                 ['  # report-api.service shares /tmp/workdir/out.txt with batch.service; private_tmp gives it a /tmp '
                  'and /var/tmp of its own',
                  '  # batch.service shares /tmp/workdir/out.txt with report-api.service; it has no port to register, '
                  'so private_tmp cannot be proposed for it'], id='one-listens-one-does-not'),
    pytest.param([REPORT_API_LISTENER, listener(8772, 'batch.service', 21)],
                 [temp_finding('/tmp/workdir/out.txt', [REPORT_API, BATCH])],
                 ['report-api.service', 'batch.service'],
                 ['  # report-api.service shares /tmp/workdir/out.txt with batch.service; private_tmp gives it a /tmp '
                  'and /var/tmp of its own',
                  '  # batch.service shares /tmp/workdir/out.txt with report-api.service; private_tmp gives it a /tmp '
                  'and /var/tmp of its own'], id='both-listen'),
    pytest.param([REPORT_API_LISTENER, listener(8771, 'report-api.service', 20, family='ipv6', address='::1'),
                  listener(8771, 'report-api.service', 20, address='127.0.0.1')],
                 [temp_finding('/var/tmp/report.lock', [REPORT_API, file_holder(50, session='4', name='bash')]),
                  temp_finding('/tmp/b', [REPORT_API, BATCH]), temp_finding('/tmp/a', [REPORT_API, BATCH]),
                  temp_finding('/tmp/workdir', [dict(REPORT_API, cwd=True), file_holder(51, name='sh')])],
                 ['report-api.service'],
                 ['  # report-api.service shares /tmp/a, /tmp/b with batch.service; /tmp/workdir with pid 51; '
                  '/var/tmp/report.lock with session 4; private_tmp gives it a /tmp and /var/tmp of its own',
                  '  # batch.service shares /tmp/a, /tmp/b with report-api.service; it has no port to register, so '
                  'private_tmp cannot be proposed for it'], id='paths-grouped-by-partner'),
    pytest.param([REPORT_API_LISTENER], [temp_finding('/tmp/x', [REPORT_API, file_holder(60, 'run-u7.service'),
                                                                 dict(file_holder(61, 'batch.service'),
                                                                      user_manager='user@1000.service')])],
                 ['report-api.service'],
                 ['  # report-api.service shares /tmp/x with batch.service, run-u7.service; private_tmp gives it a /tmp '
                  'and /var/tmp of its own'], id='transient-and-user-units-are-named-not-proposed'),
    pytest.param([REPORT_API_LISTENER], [temp_finding('/tmp/x', [REPORT_API, dict(REPORT_API, pid=22)])], [], [],
                 id='one-unit-two-pids'),
    pytest.param([REPORT_API_LISTENER], [dict(temp_finding('/srv/out.txt', [REPORT_API, BATCH]), type='shared-file')],
                 [], [], id='a-shared-file-outside-temp'),
    pytest.param([], [temp_finding('/tmp/x', [REPORT_API, BATCH])], [],
                 ['  # batch.service shares /tmp/x with report-api.service; it has no port to register, so private_tmp '
                  'cannot be proposed for it',
                  '  # report-api.service shares /tmp/x with batch.service; it has no port to register, so private_tmp '
                  'cannot be proposed for it'], id='no-listener-at-all'),
    pytest.param([listener(8771, 'api.service', 5), REPORT_API_LISTENER], [temp_finding('/tmp/x', [REPORT_API, BATCH])],
                 [],
                 ['  # 8771/tcp is also held by report-api.service on web1; one port can have one owner.',
                  '  # batch.service shares /tmp/x with report-api.service; it has no port to register, so private_tmp '
                  'cannot be proposed for it',
                  '  # report-api.service shares /tmp/x with batch.service; its ports are held by other services, so '
                  'private_tmp cannot be proposed for it'], id='port-held-by-another-service'),
])
def test_private_tmp_draft(listeners, findings, private_tmp, comments):
    text, draft = draft_of({'web1': {'listeners': listeners, 'findings': findings}})
    assert [entry['service'] for entry in draft if entry.get('private_tmp')] == private_tmp
    assert all(entry.get('private_tmp') in (None, True) for entry in draft)
    assert [line for line in text.splitlines() if line.startswith('  #')] == comments
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line == '    private_tmp: true':
            # The comment that says why stands right above the entry.
            entry_start = max(number for number in range(index) if lines[number].startswith('  - port: '))
            assert 'private_tmp gives it' in lines[entry_start - 1]
    assert sqlite_section_of(text) is None


def test_every_entry_of_a_sharing_unit_gets_private_tmp():
    listeners = [listener(8771, 'report-api.service', 20, address='127.0.0.1'),
                 listener(8771, 'report-api.service', 20, family='ipv6', address='::1'),
                 listener(9771, 'report-api.service', 20, protocol='udp')]
    dummy, draft = draft_of({'web1': {'listeners': listeners,
                                      'findings': [temp_finding('/tmp/x', [REPORT_API, BATCH])]}})
    assert [(entry['port'], entry.get('address'), entry['private_tmp']) for entry in draft] == [
        (8771, '127.0.0.1', True), (8771, '::1', True), (9771, None, True)]
    entries = validate_registry(draft)
    assert _registry.unit_settings(entries, 'report-api.service')['private_tmp'] is True


def test_no_listener_and_only_sharers_leaves_an_empty_registry_with_comments():
    text = _collision_map.registry_draft({'web1': {'findings': [temp_finding('/tmp/x', [REPORT_API, BATCH])]}})
    assert yaml.safe_load(text) == {'collision_guard_registry': []}
    assert 'collision_guard_registry: []\n  # batch.service shares /tmp/x with report-api.service;' in text


def test_the_draft_text():
    hosts = {
        'host1': {'listeners': [REPORT_API_LISTENER],
                  'findings': [sqlite_finding('/srv/app/app.db', 'rollback', [WRITER, READER]),
                               temp_finding('/tmp/workdir/out.txt', [REPORT_API, BATCH])]},
        'host2': {'listeners': [dict(REPORT_API_LISTENER, pid=30)],
                  'findings': [sqlite_finding('/srv/app/app.db', 'rollback', [dict(WRITER, pid=31), dict(READER, pid=32)]),
                               sqlite_finding('/srv/app/cache.db', 'wal', [WRITER, READER])]},
    }
    assert draft_of(hosts)[0] == '\n'.join([
        '---',
        '# Proposed by qwf.collision_guard.audit from the listeners that systemd services own.',
        '# Review it, then paste it into group_vars/all.yml.',
        'collision_guard_registry:',
        '  # report-api.service shares /tmp/workdir/out.txt with batch.service; private_tmp gives it a /tmp and '
        '/var/tmp of its own',
        '  - port: 8771',
        '    service: report-api.service',
        '    protocol: tcp',
        '    private_tmp: true',
        '    notes: "seen on host1, host2"',
        '  # batch.service shares /tmp/workdir/out.txt with report-api.service; it has no port to register, so '
        'private_tmp cannot be proposed for it',
        '# SQLite databases that several owners open with a rollback journal, where a writer locks out every',
        '# reader and writer; in WAL, readers work beside the writer.',
        'collision_guard_sqlite:',
        '  # rollback journal opened by reader.service, writer.service on host1, host2',
        '  - path: "/srv/app/app.db"',
        '    journal_mode: wal',
    ]) + '\n'


def test_the_same_state_gives_the_same_draft():
    findings = [sqlite_finding('/srv/b.db', 'rollback', [WRITER, READER]), sqlite_finding('/srv/a.db', 'rollback', [READER, WRITER]),
                temp_finding('/tmp/b', [REPORT_API, BATCH]), temp_finding('/tmp/a', [BATCH, REPORT_API])]
    forward = {'web1': {'listeners': [REPORT_API_LISTENER], 'findings': findings},
               'web2': {'listeners': [REPORT_API_LISTENER], 'findings': findings[:1]}}
    backward = {'web2': {'listeners': [REPORT_API_LISTENER], 'findings': findings[:1]},
                'web1': {'listeners': [REPORT_API_LISTENER], 'findings': list(reversed(findings))}}
    assert _collision_map.registry_draft(forward) == _collision_map.registry_draft(backward)
    assert _collision_map.registry_draft(forward) == _collision_map.registry_draft(forward)


def assert_no_control_characters(text):
    for line in text.splitlines():
        # Comments may keep printable non-ASCII text; values are printable ASCII.
        assert _registry.free_text_problem(line) is None and '\t' not in line, line
        if not line.lstrip().startswith('#'):
            assert all(' ' <= char <= '~' for char in line), line


@pytest.mark.parametrize('path, escaped, listed', [
    ('/srv/app/a\x1b[2Jb.db', '/srv/app/a\\x1b[2Jb.db', False),
    ('/srv/app/a\nb.db', '/srv/app/a b.db', False),
    ('/srv/app/a\n  - path: /etc/shadow\n    journal_mode: wal', '/srv/app/a   - path: /etc/shadow     journal_mode: wal', False),
    ('/srv/app/del\x7f.db', '/srv/app/del\\x7f.db', False),
    ('/srv/app/bidi\u202eevil.db', '/srv/app/bidi\\u202eevil.db', False),
    ('/srv/app/line\u2028sep.db', '/srv/app/line\\u2028sep.db', False),
    ('/srv/app/undecodable\udcff.db', '/srv/app/undecodable\\udcff.db', False),
    ('/srv/app/"quoted" \\ back.db', '"/srv/app/\\"quoted\\" \\\\ back.db"', True),
    ('/srv/app/astral\U0001f600.db', '"/srv/app/astral\\U0001f600.db"', True),
    ('/srv/app/not\ufffecharacter.db', '"/srv/app/not\\ufffecharacter.db"', True),
])
def test_control_characters_in_paths_reach_the_draft_escaped(path, escaped, listed):
    other = 'bad\x1b]0;title\x07\n  - port: 22\n    service: sshd.service'
    hosts = {'web1': {'listeners': [REPORT_API_LISTENER],
                      'findings': [sqlite_finding(path, 'rollback', [WRITER, file_holder(12, other + '.service')]),
                                   sqlite_finding('/srv/app/plain.db', 'rollback', [WRITER, READER]),
                                   temp_finding('/tmp' + path, [REPORT_API, file_holder(13, other + '.service')]),
                                   temp_finding('/tmp/x', [REPORT_API, file_holder(14, 'lone\x1b.service')])]}}
    text, draft = draft_of(hosts)
    assert_no_control_characters(text)
    assert '\x1b' not in text and '\x07' not in text and '\x7f' not in text
    # A path collision_guard_sqlite refuses is named in a comment, so the draft passes as it is.
    assert sqlite_section_of(text) == sorted([{'path': path, 'journal_mode': 'wal'}] * listed
                                             + [{'path': '/srv/app/plain.db', 'journal_mode': 'wal'}],
                                             key=lambda item: item['path'])
    if listed:
        assert '  - path: %s' % escaped in text
    else:
        assert [line for line in text.splitlines() if line.endswith('so it cannot be proposed')] == [
            '  # rollback journal opened by bad\\x1b]0;title\\x07   - port: 22     service: sshd.service.service, '
            'writer.service on web1: %s holds the control character ' % escaped
            + line_part(path) + '; a database path may hold printable characters only, so it cannot be proposed']
    assert [entry['service'] for entry in draft] == ['report-api.service']
    assert draft[0]['private_tmp'] is True
    assert '\\x1b]0;title\\x07' in text
    assert '  # lone\\x1b.service shares /tmp/x with report-api.service; it has no port to register' in text


def line_part(path):
    """How _sqlite names the first character it refuses in ``path``, and where."""
    offset, char = [(offset, char) for offset, char in enumerate(path) if char in '\t\n' or printable(char) != char][0]
    return '%s at offset %d' % (repr(char)[1:-1], offset)


def test_only_unlisted_databases_leave_an_empty_sqlite_list():
    text, dummy = draft_of({'web1': {'findings': [sqlite_finding('/srv/a\x1b.db', 'rollback', [WRITER, READER])]}})
    assert yaml.safe_load(text)['collision_guard_sqlite'] == []
    assert text.endswith('collision_guard_sqlite: []\n  # rollback journal opened by reader.service, writer.service on '
                         'web1: /srv/a\\x1b.db holds the control character \\x1b at offset 6; a database path may '
                         'hold printable characters only, so it cannot be proposed\n')


@pytest.mark.parametrize('text', [
    '', 'plain', 'seen on web1, web2', 'a"b', 'a\\b', 'a\nb\tc\rd', '\x00\x1b\x7f\x80\x9f', '\u00e9\u2028\ufeff',
    '\U0001f600', '\udcff',
])
def test_yaml_string_reads_back_and_is_printable_ascii(text):
    written = _collision_map._yaml_string(text)
    assert yaml.safe_load('key: ' + written)['key'] == text
    assert all(' ' <= char <= '~' for char in written)
    if '\x7f' not in text and all(ord(char) <= 0xffff for char in text) and not set(text) & set('\b\f'):
        # The same bytes the draft has always written.
        assert written == json.dumps(text)


@pytest.mark.parametrize('unit, bare', [
    ('report-api.service', True), ('getty@tty1.service', True), ('systemd-fsck@dev-disk-by\\x2duuid.service', True),
    ('a b.service', False), ('@x.service', False), ('x\n  - port: 22.service', False), ('x#y.service', False),
])
def test_unit_names_are_bare_only_when_yaml_reads_them_as_written(unit, bare):
    written = _collision_map._yaml_name(unit)
    assert (written == unit) is bare
    assert yaml.safe_load('service: ' + written) == {'service': unit}


def test_the_sqlite_draft_passes_the_sqlite_validator():
    text = _collision_map.registry_draft({'host1': {'findings': [
        sqlite_finding('/srv/app/app.db', 'rollback', [WRITER, READER]),
        sqlite_finding('/srv/app/other.db', 'rollback', [WRITER, READER])]}})
    databases = sqlite_section_of(text)
    assert [item['path'] for item in databases] == ['/srv/app/app.db', '/srv/app/other.db']
    assert _sqlite.sqlite_problems(databases) == []
    assert _sqlite.normalise_sqlite(databases) == databases
