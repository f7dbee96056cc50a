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

from ansible_collections.qwf.collision_guard.plugins.module_utils import _collision_map, _eviction, _monitor, _sockets
from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import endpoint
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import (
    ELSEWHERE,
    OWNER,
    SPARED,
    SQUATTER,
    Judge,
    UnitView,
    arm_problems,
    check_table,
    fleet_findings,
    gather_findings,
    ownership_findings,
    parse_host_time,
    port_state,
    resolve_entries,
    survey,
    trigger_sockets_on_ports,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import DEFAULT_NEVER_EVICT, validate_registry


def unit(unit_id, fragment='/etc/systemd/system/%s', **props):
    """``systemctl show`` properties of one unit, as VIEW_PROPERTIES asks them."""
    base = {'Id': unit_id, 'Names': unit_id, 'LoadState': 'loaded', 'ActiveState': 'active', 'Type': 'simple',
            'ConsistsOf': '', 'TriggeredBy': '', 'Triggers': '', 'FragmentPath': fragment.replace('%s', unit_id),
            'DropInPaths': '', 'MainPID': '0', 'Restart': 'no', 'NeedDaemonReload': 'no'}
    base.update(props)
    return base


PACKAGED = '/lib/systemd/system/%s'
REDIS = unit('redis-server.service', PACKAGED, Names='redis-server.service redis.service')
SSH = unit('ssh.service', PACKAGED, Names='ssh.service sshd.service', TriggeredBy='ssh.socket')
PROPERTIES = {
    'web.service': unit('web.service', MainPID='100'),
    'billing.service': unit('billing.service'),
    'redis.service': REDIS,
    'redis-server.service': REDIS,
    'sshd.service': SSH,
    'ssh.service': SSH,
    'ssh.socket': unit('ssh.socket', PACKAGED, Triggers='ssh.service'),
    'pg.service': unit('pg.service', ConsistsOf='pg-worker.service'),
    'pg-worker.service': unit('pg-worker.service'),
    'dnsmasq.service': unit('dnsmasq.service', PACKAGED),
    'systemd-resolved.service': unit('systemd-resolved.service', PACKAGED),
    'nginx.service': unit('nginx.service', PACKAGED),
    'other-app.service': unit('other-app.service'),
    'run-u42.service': unit('run-u42.service', '/run/systemd/transient/%s'),
    'cups.socket': unit('cups.socket', PACKAGED),
    'user@1500.service': unit('user@1500.service', PACKAGED, MainPID='4100'),
}
REGISTRY = validate_registry([
    {'port': 8080, 'service': 'web'},
    {'port': 9100, 'service': 'billing'},
    {'port': 6379, 'service': 'redis'},
    {'port': 22, 'service': 'sshd'},
    {'port': 5433, 'service': 'pg'},
    {'port': 53, 'service': 'dnsmasq', 'protocol': 'udp', 'address': '127.0.0.2'},
], where='test')


def host_judge(properties=None):
    view = UnitView(dict(PROPERTIES, **(properties or {})))
    entries, absent, problems = resolve_entries(REGISTRY, view, [])
    assert (absent, problems) == ([], [])
    return Judge(entries, view, DEFAULT_NEVER_EVICT)


def holder(unit_name, pid=4242, port=8080, protocol='tcp', address='0.0.0.0', family='ipv4', user_manager=None,
           dual_stack=False):
    return {'protocol': protocol, 'family': family, 'address': address, 'port': port, 'inode': 7, 'pid': pid,
            'name': 'python3', 'user': 'root', 'cmdline': ['python3'], 'unit': unit_name, 'user_manager': user_manager,
            'container': None, 'dual_stack': dual_stack, 'netns': 'net:[1]'}


def entry_for(judge, port, protocol='tcp'):
    return [entry for entry in judge.entries if (entry['port'], entry['protocol']) == (port, protocol)][0]


def every_caller(judge, entry, listener):
    """What each caller of the judgement makes of one socket on the entry's port."""
    listeners = [listener]
    plan = _eviction.plan_eviction(listeners, [entry], entry['service'], judge)
    helper = ('refuse' if plan['refuse'] else 'evict' if plan['evict'] else 'keep' if plan['keep'] else 'ignore')
    findings, unregistered = ownership_findings(judge, listeners)
    finding = [item for item in findings if item['service'] == entry['service'] and item['port'] == entry['port']][0]
    problems, warnings = arm_problems(judge, listeners)
    mine = '%s/%s' % (endpoint(entry['address'], entry['port']), entry['protocol'])
    harden = ('refused' if any(mine in problem for problem in problems) else
              'warned' if any(mine in warning for warning in warnings) else 'armed')
    protected = [{'service': item['service'], 'changed': False} for item in judge.entries]
    rows = _collision_map.port_rows('web-1', listeners, findings, unregistered, protected)
    audit = [row['risk'] for row in rows if row['resource'] == entry['service'] and row['port'] == entry['port']][0]
    metrics = _monitor.render_metrics([finding], 0)
    monitor = [line.rsplit(' ', 1)[1] for line in metrics.splitlines()
               if line.startswith('collision_guard_port_owner_ok{')][0]
    return {'verdict': judge.verdict(entry, listener)[0], 'helper': helper, 'check': finding['severity'],
            'wait': port_state(judge, entry, listeners), 'harden': harden, 'audit': audit, 'monitor': monitor}


def expect(verdict, helper, check, wait, harden, audit, monitor):
    return {'verdict': verdict, 'helper': helper, 'check': check, 'wait': wait, 'harden': harden, 'audit': audit,
            'monitor': monitor}


OWNED = expect(OWNER, 'keep', 'ok', 'owned', 'armed', 'low', '1')
EVICTED = expect(SQUATTER, 'evict', 'critical', 'squatted', 'warned', 'critical', '0')
REFUSED = expect(SPARED, 'refuse', 'critical', 'squatted', 'refused', 'critical', '0')
ELSEWHERE_EXPECTED = expect(ELSEWHERE, 'ignore', 'warning', 'free', 'armed', 'medium', '0')

# One row per kind of holder: every caller must agree with the one judgement.
TABLE = [
    pytest.param(8080, 'tcp', holder('web.service', pid=100), OWNED, id='the-unit-itself'),
    pytest.param(6379, 'tcp', holder('redis-server.service', port=6379, address='127.0.0.1'), OWNED,
                 id='registered-by-its-alias'),
    pytest.param(22, 'tcp', holder('ssh.service', port=22), OWNED, id='alias-sshd-is-ssh.service'),
    pytest.param(22, 'tcp', holder('ssh.socket', pid=1, port=22, family='ipv6', address='::', dual_stack=True), OWNED,
                 id='pid-1-for-the-triggering-socket-unit'),
    pytest.param(5433, 'tcp', holder('pg-worker.service', port=5433), OWNED, id='a-unit-part-of-it'),
    pytest.param(8080, 'tcp', holder('session-7.scope'), EVICTED, id='login-session-squatter'),
    pytest.param(8080, 'tcp', holder('run-u42.service'), EVICTED, id='transient-unit-squatter'),
    pytest.param(8080, 'tcp', holder(None), EVICTED, id='process-outside-any-unit'),
    pytest.param(8080, 'tcp', holder('web.service', user_manager='user@1000.service'), EVICTED,
                 id='user-unit-wearing-the-registered-name'),
    pytest.param(8080, 'tcp', holder('other-app.service'),
                 dict(EVICTED, harden='refused'), id='operator-unit-not-registered'),
    pytest.param(8080, 'tcp', holder('nginx.service'), REFUSED, id='packaged-daemon'),
    pytest.param(8080, 'tcp', holder('billing.service'), REFUSED, id='another-registered-unit'),
    pytest.param(8080, 'tcp', holder('ssh.service'), REFUSED, id='never-evict-list'),
    pytest.param(8080, 'tcp', holder('cups.socket', pid=1), REFUSED, id='pid-1-for-another-socket-unit'),
    pytest.param(8080, 'tcp', holder(None, pid=None), REFUSED, id='invisible-holder'),
    pytest.param(8080, 'tcp', holder('init.scope', user_manager='user@1000.service'), REFUSED,
                 id='a-users-own-service-manager'),
    pytest.param(8080, 'tcp', holder('init.scope', pid=4100, user_manager='user@1500.service'), REFUSED,
                 id='a-users-service-manager-by-its-main-pid'),
    pytest.param(8080, 'tcp', holder('init.scope', pid=4242, user_manager='user@1500.service'), EVICTED,
                 id='a-users-process-moved-into-its-managers-scope'),
    pytest.param(8080, 'tcp', holder('billing.service', user_manager='user@1500.service'), EVICTED,
                 id='user-unit-wearing-another-registered-name'),
    pytest.param(8080, 'tcp', dict(holder('session-7.scope'), state='UNCONN', blocks_bind=True), EVICTED,
                 id='bound-without-listening'),
    pytest.param(8080, 'tcp', dict(holder('session-7.scope'), state='ESTAB', blocks_bind=True), EVICTED,
                 id='connected-out-from-the-port'),
    pytest.param(8080, 'tcp', dict(holder('docker-4f1c2a9e.scope'), container='4f1c2a9e'), REFUSED,
                 id='a-container'),
    pytest.param(8080, 'tcp', holder('machine-qemu\\x2d1\\x2dvm1.scope'), REFUSED, id='a-virtual-machine'),
    pytest.param(8080, 'tcp', holder('mystery.service'), REFUSED, id='unit-systemd-did-not-describe'),
    pytest.param(53, 'udp', holder('systemd-resolved.service', port=53, protocol='udp', address='127.0.0.53'),
                 ELSEWHERE_EXPECTED, id='resolved-on-another-address'),
    pytest.param(53, 'udp', holder('dnsmasq.service', port=53, protocol='udp', address='127.0.0.2'), OWNED,
                 id='dnsmasq-on-its-address'),
    pytest.param(53, 'udp', holder('session-7.scope', port=53, protocol='udp'), EVICTED, id='wildcard-on-an-address'),
    pytest.param(53, 'udp', holder('session-7.scope', port=53, protocol='udp', family='ipv6', address='::',
                                   dual_stack=True), EVICTED, id='dual-stack-wildcard'),
    pytest.param(53, 'udp', holder('session-7.scope', port=53, protocol='udp', family='ipv6', address='::',
                                   dual_stack=False), ELSEWHERE_EXPECTED, id='v6only-wildcard'),
]


@pytest.mark.parametrize('port, protocol, listener, expected', TABLE)
def test_every_caller_gives_the_same_verdict(port, protocol, listener, expected):
    judge = host_judge()
    assert every_caller(judge, entry_for(judge, port, protocol), listener) == expected


def test_a_registered_unit_systemd_did_not_find_is_still_never_evicted():
    view = UnitView(PROPERTIES)
    registry = validate_registry([{'port': 8080, 'service': 'web'}, {'port': 9000, 'service': 'worker'}], where='t')
    entries, absent, dummy = resolve_entries(registry, view, [])
    assert [entry['service'] for entry in absent] == ['worker.service']
    judge = Judge(entries, view, absent=absent)
    verdict, reason = judge.verdict(entries[0], holder('worker.service'))
    assert (verdict, reason) == (SPARED, 'worker.service is registered for 9000/tcp; a registered service is never killed')


def test_the_never_evict_list_and_evict_holders_know_aliases():
    cache = unit('cache.service', Names='cache.service redis.service')
    view = UnitView(dict(PROPERTIES, **{'cache.service': cache}))
    registry = validate_registry([{'port': 8080, 'service': 'web', 'evict_holders': ['redis']}], where='t')
    entries = resolve_entries(registry, view, [])[0]
    assert Judge(entries, view, ['redis.service']).verdict(entries[0], holder('cache.service'))[0] == SPARED
    assert Judge(entries, view, []).verdict(entries[0], holder('cache.service'))[0] == SQUATTER


def test_without_systemds_view_these_owners_would_be_squatters():
    """The negative control of the table: judged by unit name and port alone, as before, each owner here is killed."""
    judge = host_judge()
    naive_judge = Judge(REGISTRY, UnitView({}), DEFAULT_NEVER_EVICT)
    cases = [(6379, holder('redis-server.service', port=6379, address='127.0.0.1')),
             (22, holder('ssh.socket', pid=1, port=22, family='ipv6', address='::', dual_stack=True)),
             (5433, holder('pg-worker.service', port=5433))]
    for port, listener in cases:
        assert judge.verdict(entry_for(judge, port), listener)[0] == OWNER
        as_registered = [entry for entry in REGISTRY if entry['port'] == port][0]
        assert naive_judge.verdict(as_registered, listener)[0] != OWNER


def test_an_operator_unit_is_armed_when_the_entry_names_it():
    registry = validate_registry([{'port': 8080, 'service': 'web', 'evict_holders': ['other-app']}], where='test')
    view = UnitView(PROPERTIES)
    judge = Judge(resolve_entries(registry, view, [])[0], view)
    problems, warnings = arm_problems(judge, [holder('other-app.service')])
    assert problems == []
    assert warnings == ['8080/tcp (web.service) is held by other-app.service (pid 4242), which evict_holders names: '
                        'the next start of web.service evicts it']


def test_a_packaged_holder_named_in_evict_holders_is_evicted_but_ssh_never_is():
    registry = validate_registry([{'port': 22, 'service': 'redis-server', 'evict_holders': ['nginx', 'ssh']}],
                                 where='test')
    view = UnitView(PROPERTIES)
    judge = Judge(resolve_entries(registry, view, [])[0], view)
    entry = judge.entries[0]
    assert judge.verdict(entry, holder('nginx.service', port=22))[0] == SQUATTER
    verdict, reason = judge.verdict(entry, holder('ssh.service', port=22))
    assert (verdict, reason) == (SPARED, 'ssh.service is never evicted (collision_guard_never_evict: ssh.service)')
    problems, warnings = arm_problems(judge, [holder('ssh.service', port=22)])
    assert problems == []
    assert 'yet the helper will not evict it' in warnings[0]


def test_the_port_22_typo_is_refused_naming_ssh():
    registry = validate_registry([{'port': 22, 'service': 'redis-server'}], where='test')
    view = UnitView(PROPERTIES)
    judge = Judge(resolve_entries(registry, view, [])[0], view)
    problems, dummy = arm_problems(judge, [holder('ssh.service', pid=555, port=22)])
    assert problems == [
        "22/tcp (redis-server.service) is held by ssh.service (pid 555), which is neither redis-server.service nor "
        "part of it: ssh.service is never evicted (collision_guard_never_evict: ssh.service). If the registry is "
        "right and it must go at every start of redis-server.service, add ssh.service to the entry's evict_holders"]


def test_a_oneshot_wrapper_is_refused_naming_the_member_that_holds_the_port():
    wrapper = unit('postgresql.service', PACKAGED, Type='oneshot', ConsistsOf='postgresql@15-main.service')
    member = unit('postgresql@15-main.service', PACKAGED.replace('%s', 'postgresql@.service'))
    view = UnitView({'postgresql.service': wrapper, 'postgresql@15-main.service': member})
    registry = validate_registry([{'port': 5432, 'service': 'postgresql'}], where='test')
    judge = Judge(resolve_entries(registry, view, [])[0], view)
    postmaster = holder('postgresql@15-main.service', port=5432, address='127.0.0.1')
    assert judge.verdict(judge.entries[0], postmaster)[0] == OWNER
    problems, dummy = arm_problems(judge, [postmaster])
    assert problems == [
        '5432/tcp (postgresql.service): postgresql.service is a oneshot wrapper (Type=oneshot) that holds no port '
        'itself; its member postgresql@15-main.service holds the port. Register postgresql@15-main.service instead, '
        'or a glob that fits it on every host']
    # Stopped, it is refused all the same, naming the units part of it.
    assert 'the units part of it are postgresql@15-main.service' in arm_problems(judge, [])[0][0]


def test_the_unit_of_the_ansible_connection_is_never_armed_against():
    judge = host_judge()
    problems, dummy = arm_problems(judge, [holder('session-3.scope')], connection_units=['session-3.scope'])
    assert problems == ['8080/tcp (web.service) is held by session-3.scope (pid 4242), a unit of this Ansible '
                        'connection; it is never armed against it']


@pytest.mark.parametrize('matches, expected_service, expected_problem', [
    ([], None, None),
    (['postgresql@15-main.service'], 'postgresql@15-main.service', None),
    (['postgresql@15-main.service', 'postgresql@17-main.service'], None,
     'test[0].service: postgresql@*-main.service fits 2 loaded units here (postgresql@15-main.service, '
     'postgresql@17-main.service); one port can have one owner, so name one of them'),
], ids=['none-is-absent', 'one-fits', 'two-fit'])
def test_a_glob_resolves_to_the_one_loaded_unit_it_fits(matches, expected_service, expected_problem):
    view = UnitView(dict((name, unit(name)) for name in matches))
    registry = validate_registry([{'port': 5432, 'service': 'postgresql@*-main'}], where='test')
    entries, absent, problems = resolve_entries(registry, view, matches, where='test')
    assert [entry['service'] for entry in entries] == ([expected_service] if expected_service else [])
    assert problems == ([expected_problem] if expected_problem else [])
    assert absent == (registry if not matches else [])


def test_an_alias_is_the_unit_it_names_and_absent_units_are_absent():
    view = UnitView({'redis.service': REDIS, 'redis-server.service': REDIS,
                     'gone.service': {'Id': 'gone.service', 'LoadState': 'not-found'}})
    registry = validate_registry([{'port': 6379, 'service': 'redis'}, {'port': 26379, 'service': 'redis-server'},
                                  {'port': 9, 'service': 'gone'}], where='test')
    entries, absent, problems = resolve_entries(registry, view, [])
    assert [(entry['port'], entry['service']) for entry in entries] == [
        (6379, 'redis-server.service'), (26379, 'redis-server.service')]
    assert [entry['service'] for entry in absent] == ['gone.service']
    assert problems == []


def test_survey_asks_systemd_once_for_the_registry_and_once_for_new_holders():
    asked = []

    def show(units, properties):
        asked.append(list(units))
        return dict((name, PROPERTIES.get(name) or unit(name)) for name in units)

    def run(argv):
        asked.append(argv[1])
        return {'list-units': 'redis-server.service loaded active running Advanced key-value store\n',
                'list-sockets': '[::]:22 Stream ssh.socket ssh.service\n'}[argv[1]]

    registry = validate_registry([{'port': 6379, 'service': 'redis-*'}, {'port': 22, 'service': 'sshd'}], where='t')
    listeners = [holder(None, pid=1, port=22, family='ipv6', address='::', dual_stack=True),
                 holder('session-9.scope', port=6379)]
    found = survey(registry, show, run, listeners=listeners)
    assert [entry['service'] for entry in found['entries']] == ['redis-server.service', 'ssh.service']
    assert listeners[0]['unit'] == 'ssh.socket'
    # The socket unit and the holders are asked about in one more call.
    assert asked == ['list-units', ['sshd.service', 'redis-server.service'], 'list-sockets',
                     ['session-9.scope', 'ssh.socket']]
    assert trigger_sockets_on_ports(Judge(found['entries'], found['view']), found['socket_units']) == {
        'ssh.service': ['ssh.socket']}


def test_findings_name_the_holder_and_why():
    judge = host_judge()
    squatter = dict(holder('session-7.scope', pid=4242), cmdline=['python3', '-m', 'http.server', '8080'])
    findings, unregistered = ownership_findings(judge, [
        squatter, holder('systemd-resolved.service', port=53, protocol='udp', address='127.0.0.53'),
        holder('scratch-api.service', pid=13, port=8799)])
    web = [item for item in findings if item['service'] == 'web.service'][0]
    assert web['holders'] == [{'pid': 4242, 'name': 'python3', 'user': 'root',
                               'cmdline': ['python3', '-m', 'http.server', '8080'], 'unit': 'session-7.scope',
                               'container': None, 'reason': 'not registered for this port'}]
    assert web['message'] == ('held by session-7.scope (pid 4242), not by web.service: its next start fails unless '
                              'the holder is evicted')
    # resolved on 127.0.0.53 is not dnsmasq's, and no entry claims it: it is listed as unregistered.
    assert [(item['port'], item['unit']) for item in unregistered] == [
        (8799, 'scratch-api.service'), (53, 'systemd-resolved.service')]


def test_survey_asks_systemd_about_the_manager_of_a_user_unit():
    asked = []

    def show(units, properties):
        asked.append(list(units))
        return dict((name, PROPERTIES.get(name) or unit(name)) for name in units)

    registry = validate_registry([{'port': 8080, 'service': 'web'}], where='t')
    listeners = [holder('web.service', port=8080, user_manager='user@1500.service')]
    found = survey(registry, show, lambda argv: '', listeners=listeners)
    # The user's unit is not a system unit; its manager is, and its MainPID tells the manager apart.
    assert asked == [['web.service'], ['user@1500.service']]
    assert found['answered']


def test_a_holder_bound_without_listening_is_a_conflict_not_a_silent_port():
    judge = host_judge()
    listener = dict(holder('session-7.scope'), state='UNCONN', blocks_bind=True)
    findings, dummy = ownership_findings(judge, [listener])
    finding = [item for item in findings if item['port'] == 8080][0]
    assert finding['severity'] == 'critical'
    assert finding['message'].startswith('held by session-7.scope (pid 4242, bound to the port without listening), '
                                         'not by web.service')


def test_gather_findings_count_a_connection_out_from_a_registered_port():
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen()
    client = socket.socket()
    client.bind(('127.0.0.1', 0))
    client.connect(server.getsockname())
    accepted, dummy = server.accept()
    port = client.getsockname()[1]
    registry = validate_registry([{'port': port, 'service': 'owner'}], where='test')
    try:
        if _sockets.reuse_address(os.getpid(), client.fileno()) is None:
            pytest.skip('pidfd_getfd is not available here')
        findings = gather_findings(registry, lambda units, properties: dict((name, unit(name)) for name in units),
                                   lambda argv: '')[0]
    finally:
        for sock in (server, client, accepted):
            sock.close()
    assert [(item['severity'], [holder['pid'] for holder in item['holders']]) for item in findings] == [
        ('critical', [os.getpid()])]
    assert 'bound to the port without listening' in findings[0]['message']


def test_gather_findings_reads_this_hosts_sockets():
    squatted = socket.socket()
    squatted.bind(('127.0.0.1', 0))
    squatted.listen()
    port = squatted.getsockname()[1]
    registry = validate_registry([{'port': port, 'service': 'owner'}, {'port': port, 'service': 'gone',
                                                                       'protocol': 'udp'}], where='test')
    asked = []

    def show(units, properties):
        asked.append(list(units))
        return dict((name, unit(name) if name != 'gone.service' else {'Id': name, 'LoadState': 'not-found'})
                    for name in units)

    try:
        findings, unregistered, complete, problems, answered = gather_findings(registry, show, lambda argv: '')
    finally:
        squatted.close()
    assert asked[0] == ['owner.service', 'gone.service']
    assert [(item['port'], item['service'], item['severity']) for item in findings] == [
        (port, 'owner.service', 'critical')]
    assert [item['pid'] for item in findings[0]['holders']] == [os.getpid()]
    assert all(item['port'] != port for item in unregistered)
    assert (problems, answered) == ([], True)
    assert complete in (True, False)


def test_fleet_findings_and_table():
    host_findings = {
        'web-2': [{'port': 8765, 'protocol': 'tcp', 'address': None, 'service': 'sms-webhook.service',
                   'severity': 'ok', 'holders': [], 'message': 'held by sms-webhook.service'}],
        'web-1': [{'port': 8765, 'protocol': 'tcp', 'address': None, 'service': 'sms-webhook.service',
                   'severity': 'critical',
                   'holders': [{'pid': 4242, 'name': 'python3', 'user': 'root', 'cmdline': ['python3', '-m', 'http.server'],
                                'unit': 'session-7.scope', 'container': None}],
                   'message': 'held by session-7.scope (pid 4242)'},
                  {'port': 53, 'protocol': 'udp', 'address': '127.0.0.2', 'service': 'dnsmasq.service',
                   'severity': 'ok', 'holders': [], 'message': 'held by dnsmasq.service'}],
        'db-1': None,
    }
    flat = fleet_findings(host_findings)
    assert [(item['host'], item['severity']) for item in flat] == [('web-1', 'critical'), ('web-1', 'ok'),
                                                                   ('web-2', 'ok')]
    assert check_table(flat) == [
        'host   port              service              state     holder',
        'web-1  8765/tcp          sms-webhook.service  CRITICAL  session-7.scope pid 4242: python3 -m http.server',
        'web-1  127.0.0.2:53/udp  dnsmasq.service      OK        -',
        'web-2  8765/tcp          sms-webhook.service  OK        -',
    ]


def test_parse_host_time_reads_both_forms_of_the_command_module():
    moment = datetime.datetime(2026, 11, 27, 20, 54, 49, 123456)
    expected = time.mktime(moment.timetuple()) + 0.123456
    assert parse_host_time(str(moment)) == pytest.approx(expected)
    assert parse_host_time(str(moment.replace(microsecond=0))) == pytest.approx(expected - 0.123456)


def test_parse_host_time_refuses_other_text():
    with pytest.raises(ValueError, match='is not a time'):
        parse_host_time('yesterday')
