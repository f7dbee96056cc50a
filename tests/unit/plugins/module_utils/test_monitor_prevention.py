# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The monitor's view of prevention: harden's record, the probe per armed slice, the metric and bypasses."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.qwf.collision_guard.plugins.module_utils import _journal, _monitor

CONTAINER = '/docker/4f1c2b9a'
SESSION = '/user.slice/user-1500.slice/session-c1.scope'
OFF = {'state': 'off', 'summary': 'off', 'units': [], 'rules': []}
ARMED = {'state': 'active', 'summary': 'active', 'units': ['user.slice', 'cron.service'],
         'rules': ['tcp:8765', 'udp:8766', 'ipv6:tcp:8443']}
MALLORY = {'pid': 4242, 'name': 'python3', 'user': 'mallory', 'unit': 'session-c1.scope', 'container': None,
           'cmdline': ['python3', '-m', 'http.server', '8765'], 'reason': 'not registered for this port'}
DNSMASQ = {'pid': 51, 'name': 'dnsmasq', 'user': 'dnsmasq', 'unit': 'dnsmasq.service', 'container': None,
           'cmdline': ['/usr/sbin/dnsmasq', '-k'], 'reason': 'not registered for this port'}
CGROUPS = {4242: SESSION, 51: '/system.slice/dnsmasq.service'}


def finding(port, protocol, severity='critical', holders=(), service='sms-webhook.service'):
    return {'port': port, 'protocol': protocol, 'address': None, 'service': service, 'severity': severity,
            'holders': list(holders), 'message': 'held by someone, not by %s' % service}


def parsed(text):
    return dict((family.name, [(sample.labels, sample.value) for sample in family.samples])
                for family in text_string_to_metric_families(text))


# harden's record in monitor.json

def test_no_record_is_off():
    assert _monitor.prevention_record(None) == OFF


def test_a_valid_record_is_kept():
    assert _monitor.prevention_record(dict(ARMED, probes=[{'unit': 'user.slice'}])) == ARMED
    unavailable = {'state': 'unavailable', 'summary': 'unavailable (systemd 252 without BPF_FRAMEWORK)'}
    assert _monitor.prevention_record(unavailable) == dict(unavailable, units=[], rules=[])


@pytest.mark.parametrize('value, problem', [
    ('active', 'not a JSON object'),
    ({'state': 'on'}, 'state must be one of active, unavailable, degraded, off, not "on"'),
    ({'state': 'active', 'summary': 7}, 'summary must be a string, not 7'),
    ({'state': 'active', 'units': 'user.slice'}, 'units must be a list of unit names, not "user.slice"'),
    ({'state': 'active', 'units': ['../../tmp/x.slice']}, 'units: "../../tmp/x.slice" contains characters'),
    ({'state': 'active', 'units': ['--foo.slice']}, 'units: "--foo.slice" starts with "-"'),
    ({'state': 'active', 'rules': ['tcp:8765 --property=x']}, 'rules must be a list of SocketBindDeny= rules'),
])
def test_a_record_that_is_not_valid_reads_as_off_and_says_why(value, problem):
    record = _monitor.prevention_record(value, '/etc/collision-guard/monitor.json')
    assert (record['state'], record['units'], record['rules']) == ('off', [], [])
    assert record['problem'].startswith('/etc/collision-guard/monitor.json: prevention: ')
    assert problem in record['problem']
    assert record['summary'] == 'off (%s)' % record['problem']


def test_load_config_reads_the_record(tmp_path):
    path = tmp_path / 'monitor.json'
    path.write_text(json.dumps({'alert_command': [], 'prevention': ARMED}))
    assert _monitor.load_config(str(path))['prevention'] == ARMED
    path.write_text(json.dumps({'prevention': {'state': 'maybe'}}))
    assert _monitor.load_config(str(path))['prevention']['problem'].startswith('%s: prevention: state' % path)


@pytest.mark.parametrize('rule, protocol, port, covered', [
    ('tcp:8765', 'tcp', 8765, True),
    ('tcp:8765', 'udp', 8765, False),
    ('tcp:8765', 'tcp', 8766, False),
    ('ipv6:tcp:8443', 'tcp', 8443, True),
    ('udp:53', 'udp', 53, True),
    ('8765', 'udp', 8765, True),
    ('tcp:8000-8010', 'tcp', 8005, True),
    ('tcp:8000-8010', 'tcp', 8011, False),
    ('any', 'tcp', 8765, False),
    ('tcp:', 'tcp', 8765, False),
])
def test_rule_covers(rule, protocol, port, covered):
    assert _monitor.rule_covers(rule, protocol, port) is covered


# Where a holder runs

@pytest.mark.parametrize('path, placement', [
    (SESSION, (['user.slice', 'user-1500.slice'], 'session-c1.scope')),
    # With cgroupns=host, when the container's prefix was not stripped.
    (CONTAINER + SESSION, (['user.slice', 'user-1500.slice'], 'session-c1.scope')),
    # A user's own units are the manager's subtree: their names are the user's choice.
    ('/user.slice/user-1500.slice/user@1500.service/app.slice/cron.service',
     (['user.slice', 'user-1500.slice'], 'user@1500.service')),
    ('/system.slice/cron.service', (['system.slice'], 'cron.service')),
    # A container's own tree below its scope is not the host's user.slice.
    ('/system.slice/docker-4f1c2b9a4f1c.scope/user.slice/user-0.slice/session-1.scope',
     (['system.slice'], 'docker-4f1c2b9a4f1c.scope')),
    ('/system.slice/_cgroup.x.service', (['system.slice'], 'cgroup.x.service')),
    ('/init.scope', ([], 'init.scope')),
    ('/', ([], None)),
    ('', ([], None)),
    ('/user.slice/notaunit/session-1.scope', (['user.slice'], None)),
])
def test_cgroup_placement(path, placement):
    assert _monitor.cgroup_placement(path) == placement


@pytest.mark.parametrize('path, units, armed', [
    (SESSION, ['user.slice'], 'user.slice'),
    (SESSION, ['user-1500.slice'], 'user-1500.slice'),
    (CONTAINER + SESSION, ['user.slice'], 'user.slice'),
    ('/user.slice/user-1500.slice/user@1500.service/app.slice/squat.service', ['user.slice'], 'user.slice'),
    ('/system.slice/cron.service', ['user.slice', 'cron.service'], 'cron.service'),
    # A user naming its unit cron.service is in user.slice, not in the system's cron.service.
    ('/user.slice/user-1500.slice/user@1500.service/app.slice/cron.service', ['cron.service'], None),
    ('/system.slice/sms-webhook.service', ['user.slice'], None),
    ('/user.slice', ['user'], None),
    ('', ['user.slice'], None),
    (None, ['user.slice'], None),
])
def test_armed_unit(path, units, armed):
    assert _monitor.armed_unit(path, units) == armed


def test_process_cgroup_reads_v2_and_hybrid_lines_below_the_root(tmp_path):
    (tmp_path / '4242').mkdir()
    (tmp_path / '4242' / 'cgroup').write_text('0::%s%s\n' % (CONTAINER, SESSION))
    (tmp_path / '51').mkdir()
    (tmp_path / '51' / 'cgroup').write_text('12:pids:/docker/4f1c2b9a\n1:name=systemd:%s/system.slice/dnsmasq.service\n'
                                            '0::/docker/4f1c2b9a\n' % CONTAINER)
    assert _monitor.process_cgroup(4242, CONTAINER, str(tmp_path)) == SESSION
    assert _monitor.process_cgroup(51, CONTAINER, str(tmp_path)) == '/system.slice/dnsmasq.service'
    # Gone before it was read.
    assert _monitor.process_cgroup(9999, CONTAINER, str(tmp_path)) == ''


# Bypasses

def test_a_session_holding_an_armed_port_bypassed_prevention():
    findings = [finding(8765, 'tcp', holders=[MALLORY, DNSMASQ]), finding(8766, 'udp', holders=[DNSMASQ]),
                finding(8767, 'tcp', 'ok')]
    marked = _monitor.mark_bypasses(findings, ['user.slice'], ARMED['rules'], CGROUPS.get)
    assert [item['prevention_bypassed'] for item in marked] == [True, False, False]
    assert marked[0]['message'] == (
        'prevention bypassed: session-c1.scope (pid 4242) inside user.slice holds it, although SocketBindDeny= there '
        'should have refused its bind; held by someone, not by sms-webhook.service')
    assert marked[0]['holders'] == [dict(MALLORY, inside='user.slice'), DNSMASQ]
    assert marked[1] == dict(findings[1], prevention_bypassed=False)
    # The findings given are left as they were.
    assert 'prevention_bypassed' not in findings[0] and 'inside' not in findings[0]['holders'][0]


def test_a_port_the_deny_does_not_cover_is_no_bypass():
    # Registered after harden armed the deny: the holder is a squatter, not a bypass.
    marked = _monitor.mark_bypasses([finding(9000, 'tcp', holders=[MALLORY])], ['user.slice'], ['tcp:8765'], CGROUPS.get)
    assert marked[0]['prevention_bypassed'] is False
    assert not marked[0]['message'].startswith('prevention bypassed')
    # No rules known: every registered port counts.
    assert _monitor.mark_bypasses([finding(9000, 'tcp', holders=[MALLORY])], ['user.slice'], None,
                                  CGROUPS.get)[0]['prevention_bypassed'] is True


def test_no_unit_or_no_process_is_no_bypass():
    kernel = dict(MALLORY, pid=None, unit=None)
    assert _monitor.mark_bypasses([finding(8765, 'tcp', holders=[kernel])], ['user.slice'], None,
                                  CGROUPS.get)[0]['prevention_bypassed'] is False
    assert _monitor.mark_bypasses([finding(8765, 'tcp', holders=[MALLORY])], [], None,
                                  CGROUPS.get)[0]['prevention_bypassed'] is False


# Probes

@pytest.mark.parametrize('result, verdict', [
    ({'outcome': 'denied', 'errno': 1}, 'denied'),
    ({'outcome': 'allowed', 'errno': 0}, 'lost'),
    ({'outcome': 'bound', 'errno': 0}, 'lost'),
    # The port in use: a deny would have answered EPERM before the kernel looked.
    ({'outcome': 'allowed', 'errno': 98}, 'lost'),
    ({'outcome': 'error', 'errno': 98}, 'lost'),
    ({'outcome': 'error', 'errno': None}, 'error'),
    ({}, 'error'),
])
def test_probe_verdict(result, verdict):
    assert _monitor.probe_verdict(result) == verdict


class Probe(object):
    """A probe_bind double: the outcome per unit, and each call recorded."""

    def __init__(self, outcomes):
        self.outcomes = outcomes
        self.calls = []

    def __call__(self, unit, rule, timeout):
        self.calls.append((unit, rule, timeout))
        outcome = self.outcomes[unit]
        if isinstance(outcome, Exception):
            raise outcome
        return {'unit': unit, 'rule': rule, 'outcome': outcome, 'errno': {'denied': 1, 'allowed': 0}.get(outcome),
                'sec': 3e-05 if outcome == 'denied' else None, 'detail': '%s detail' % outcome}


@pytest.mark.parametrize('state', ['off', 'unavailable', 'degraded'])
def test_only_an_active_record_is_probed_and_anything_else_is_not_active(state):
    probe = Probe({})
    status, lines = _monitor.prevention_status(dict(ARMED, state=state, summary=state), probe)
    assert (status['active'], status['state'], status['probes'], lines, probe.calls) == (False, state, [], [], [])


def test_each_armed_slice_is_probed_once_with_the_first_rule():
    probe = Probe({'user.slice': 'denied', 'machine.slice': 'denied'})
    record = dict(ARMED, units=['user.slice', 'cron.service', 'machine.slice'])
    status, lines = _monitor.prevention_status(record, probe, timeout=7)
    # A service's deny cannot be probed from outside it.
    assert probe.calls == [('user.slice', 'tcp:8765', 7), ('machine.slice', 'tcp:8765', 7)]
    assert (status['active'], status['state'], status['summary'], lines) == (True, 'active', 'active', [])
    assert [item['outcome'] for item in status['probes']] == ['denied', 'denied']


def test_a_probe_that_binds_is_prevention_lost():
    status, lines = _monitor.prevention_status(ARMED, Probe({'user.slice': 'allowed'}))
    assert (status['active'], status['state']) == (False, 'degraded')
    assert status['summary'] == 'degraded (lost on user.slice: a test bind was not refused; the next harden run re-arms it)'
    assert lines == [(_journal.WARNING, 'prevention lost on user.slice: a test bind of tcp:8765 from it was not refused '
                      '(allowed detail); systemd may have detached it at a daemon-reload; the next harden run re-arms it')]


def test_a_probe_that_fails_is_reported_never_raised():
    status, lines = _monitor.prevention_status(ARMED, Probe({'user.slice': OSError(2, 'No such file or directory')}))
    assert (status['active'], status['state'], status['summary']) == (False, 'degraded', 'degraded (cannot probe user.slice)')
    assert status['probes'][0]['outcome'] == 'error'
    assert lines == [(_journal.ERROR, 'cannot tell whether prevention holds on user.slice: the test bind of tcp:8765 '
                      'did not run: FileNotFoundError: [Errno 2] No such file or directory')]


def test_an_active_record_without_rules_or_slices_stays_active_unprobed():
    probe = Probe({})
    assert _monitor.prevention_status(dict(ARMED, rules=[]), probe)[0]['active'] is True
    assert _monitor.prevention_status(dict(ARMED, units=['cron.service']), probe)[0]['active'] is True
    assert probe.calls == []


def test_the_default_probe_runs_the_checker_interpreter(monkeypatch):
    seen = []
    monkeypatch.setattr(_monitor._prevention, 'probe_bind', lambda unit, rule, python, timeout: seen.append(
        (unit, rule, python, timeout)) or {'outcome': 'denied'})
    monkeypatch.setattr(_monitor.sys, 'executable', '/usr/bin/python3.13')
    assert _monitor.probe_bind('user.slice', 'tcp:8765', timeout=5) == {'outcome': 'denied'}
    assert seen == [('user.slice', 'tcp:8765', '/usr/bin/python3.13', 5)]


def fake_proc(tmp_path):
    for pid, path in [(1, CONTAINER + '/init.scope')] + [(pid, CONTAINER + path) for pid, path in CGROUPS.items()]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / 'cgroup').write_text('0::%s\n' % path)
    return str(tmp_path)


def test_check_prevention_marks_bypasses_only_where_harden_armed_it(tmp_path):
    proc = fake_proc(tmp_path)
    findings = [finding(8765, 'tcp', holders=[MALLORY])]
    status, marked, lines = _monitor.check_prevention(ARMED, findings, probe=Probe({'user.slice': 'allowed'}), proc=proc)
    assert (status['active'], marked[0]['prevention_bypassed'], len(lines)) == (False, True, 1)
    assert marked[0]['holders'][0]['inside'] == 'user.slice'
    # The units port_ownership_info is given win over the record's.
    dummy, marked, dummy = _monitor.check_prevention(ARMED, findings, units=['machine.slice'],
                                                     probe=Probe({'user.slice': 'denied'}), proc=proc)
    assert marked[0]['prevention_bypassed'] is False
    for state in ('off', 'unavailable'):
        status, marked, lines = _monitor.check_prevention(dict(ARMED, state=state), findings, probe=Probe({}), proc=proc)
        assert (status['active'], marked, lines) == (False, [dict(findings[0], prevention_bypassed=False)], [])


# The metric

def test_the_metric_says_whether_prevention_is_active():
    assert parsed(_monitor.render_metrics([], 0))['collision_guard_prevention_active'] == [({}, 0.0)]
    text = _monitor.render_metrics([], 0, prevention_active=True)
    assert parsed(text)['collision_guard_prevention_active'] == [({}, 1.0)]
    assert '# TYPE collision_guard_prevention_active gauge\n' in text
    assert '# HELP collision_guard_prevention_active 1 when harden armed SocketBindDeny= here' in text


# The checker end to end

@pytest.fixture
def host(monkeypatch, tmp_path):
    """main() with harden's record armed on user.slice, mallory's session squatting 8765, the writes recorded."""
    seen = {'written': {}, 'alerts': [], 'probe': Probe({'user.slice': 'allowed'})}
    config = {'alert_command': ['/usr/local/bin/page'], 'metrics_cmdline': True,
              'prevention': _monitor.prevention_record(ARMED)}
    monkeypatch.setattr(_monitor, 'load_registry', lambda path: [])
    monkeypatch.setattr(_monitor, 'load_config', lambda path: config)
    monkeypatch.setattr(_monitor, 'check', lambda registry: ([finding(8765, 'tcp', holders=[MALLORY])], True))
    monkeypatch.setattr(_monitor, 'guard_status', lambda: (True, []))
    monkeypatch.setattr(_monitor, 'show_cmdlines', lambda config: True)
    monkeypatch.setattr(_monitor, 'probe_bind', seen['probe'])
    monkeypatch.setattr(_monitor, 'process_cgroup', lambda pid, root, proc: CGROUPS.get(pid, ''))
    monkeypatch.setattr(_monitor, 'run_alert', lambda command, findings, log: seen['alerts'].append(findings))
    monkeypatch.setattr(_monitor, 'write_atomically', lambda path, content: seen['written'].update({path: content}))
    monkeypatch.delenv('JOURNAL_STREAM', raising=False)
    seen['config'] = config
    return seen


def test_main_reports_prevention_lost_and_the_bypass(host, capsys):
    assert _monitor.main(['--textfile-dir', '/metrics']) == 0
    metrics = parsed(host['written']['/metrics/collision_guard.prom'].decode('utf-8'))
    assert metrics['collision_guard_prevention_active'] == [({}, 0.0)]
    err = capsys.readouterr().err
    assert 'collision-guard-check: prevention lost on user.slice: a test bind of tcp:8765' in err
    assert 'conflict port=8765/tcp service=sms-webhook.service: prevention bypassed: session-c1.scope (pid 4242) ' \
           'inside user.slice' in err
    assert host['alerts'][0][0]['prevention_bypassed'] is True


def test_main_with_prevention_holding(host, capsys):
    host['probe'].outcomes['user.slice'] = 'denied'
    assert _monitor.main(['--textfile-dir', '/metrics']) == 0
    metrics = parsed(host['written']['/metrics/collision_guard.prom'].decode('utf-8'))
    assert metrics['collision_guard_prevention_active'] == [({}, 1.0)]
    assert 'prevention lost' not in capsys.readouterr().err


def test_main_goes_ahead_when_prevention_cannot_be_checked(host, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError('no cgroup here')
    monkeypatch.setattr(_monitor, 'check_prevention', broken)
    assert _monitor.main(['--textfile-dir', '/metrics']) == 0
    metrics = parsed(host['written']['/metrics/collision_guard.prom'].decode('utf-8'))
    assert metrics['collision_guard_prevention_active'] == [({}, 0.0)]
    assert metrics['collision_guard_port_owner_ok'][0][1] == 0.0
    assert 'collision-guard-check: cannot check prevention: no cgroup here' in capsys.readouterr().err


def test_main_logs_a_record_that_is_not_valid(host, capsys):
    host['config']['prevention'] = _monitor.prevention_record({'state': 'on'}, '/etc/collision-guard/monitor.json')
    assert _monitor.main(['--textfile-dir', '/metrics']) == 0
    assert ('cannot read what prevention harden armed: /etc/collision-guard/monitor.json: prevention: state must be '
            'one of') in capsys.readouterr().err
    assert host['probe'].calls == []


# port_ownership_info's record: the monitor's, else the drop-ins

DROPIN = ('# Managed by qwf.collision_guard. Local edits are overwritten.\n'
          '# Refuses bind() on the registered ports to every process in user.slice (SocketBindDeny=).\n'
          '[Slice]\nSocketBindDeny=tcp:8765\nSocketBindDeny=udp:8766\n')


def test_host_record_from_the_drop_ins_when_the_monitor_has_none(tmp_path):
    unit_dir = tmp_path / 'system'
    (unit_dir / 'user.slice.d').mkdir(parents=True)
    (unit_dir / 'user.slice.d' / 'collision-guard-deny.conf').write_text(DROPIN)
    (unit_dir / 'machine.slice.d').mkdir()
    (unit_dir / 'machine.slice.d' / 'collision-guard-deny.conf').write_text('[Slice]\nSocketBindDeny=tcp:1\n')
    config = str(tmp_path / 'monitor.json')
    record = _monitor.host_prevention_record(['user.slice', 'machine.slice', 'cron.service'], config, str(unit_dir))
    # machine.slice's file is not the collection's.
    assert record == {'state': 'active', 'summary': 'active', 'units': ['user.slice'], 'rules': ['tcp:8765', 'udp:8766']}
    assert _monitor.host_prevention_record(['machine.slice'], config, str(unit_dir)) == dict(
        OFF, summary='off (no collision-guard-deny.conf on machine.slice)')
    # The monitor's record wins.
    (tmp_path / 'monitor.json').write_text(json.dumps({'prevention': {'state': 'unavailable', 'summary': 'unavailable (x)'}}))
    assert _monitor.host_prevention_record(['user.slice'], config, str(unit_dir))['summary'] == 'unavailable (x)'
    # Not wanted: off, whatever is on the host.
    assert _monitor.host_prevention_record([], config, str(unit_dir)) == OFF
