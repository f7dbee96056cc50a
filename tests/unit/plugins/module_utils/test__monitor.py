# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import sys

import pytest

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.qwf.collision_guard.plugins.module_utils import _monitor
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError

SQUATTER = {'pid': 4242, 'name': 'python3', 'user': 'root', 'unit': 'session-7.scope', 'container': None,
            'cmdline': ['python3', '-c', 'print("a\\\\b")\nx']}
DNSMASQ = {'pid': 51, 'name': 'dnsmasq', 'user': 'dnsmasq', 'unit': 'dnsmasq.service', 'container': None,
           'cmdline': ['/usr/sbin/dnsmasq', '-k']}
FINDINGS = [
    {'port': 8766, 'protocol': 'tcp', 'address': None, 'service': 'status-api.service', 'severity': 'critical',
     'holders': [SQUATTER], 'message': 'held by session-7.scope (pid 4242), not by status-api.service'},
    {'port': 53, 'protocol': 'udp', 'address': '::1', 'service': 'knot.service', 'severity': 'critical',
     'holders': [DNSMASQ], 'message': 'held by dnsmasq.service (pid 51), not by knot.service'},
    {'port': 5514, 'protocol': 'udp', 'address': None, 'service': 'syslog-relay.service', 'severity': 'warning',
     'holders': [], 'message': 'nothing listens on it'},
    {'port': 8765, 'protocol': 'tcp', 'address': None, 'service': 'sms-webhook.service', 'severity': 'ok',
     'holders': [], 'message': 'held by sms-webhook.service'},
    {'port': 53, 'protocol': 'udp', 'address': '127.0.0.53', 'service': 'systemd-resolved.service', 'severity': 'ok',
     'holders': [], 'message': 'held by systemd-resolved.service'},
]


def parsed(text):
    """Samples by metric name, each as (labels, value), read back with the Prometheus client's own parser."""
    return dict((family.name, [(sample.labels, sample.value) for sample in family.samples])
                for family in text_string_to_metric_families(text))


def test_metrics_parse_back_with_the_prometheus_parser():
    metrics = parsed(_monitor.render_metrics(FINDINGS, 1764286400.5))

    def key(service, port, protocol='tcp', address=''):
        # "address" is always there, empty for an entry that claims every address:
        # node_exporter wants one set of label names per metric family.
        return {'port': str(port), 'protocol': protocol, 'service': service, 'address': address}

    assert metrics['collision_guard_port_owner_ok'] == [
        (key('status-api.service', 8766), 0.0),
        (key('knot.service', 53, 'udp', '::1'), 0.0),
        (key('syslog-relay.service', 5514, 'udp'), 0.0),
        (key('sms-webhook.service', 8765), 1.0),
        (key('systemd-resolved.service', 53, 'udp', '127.0.0.53'), 1.0),
    ]
    assert metrics['collision_guard_port_listening'] == [
        (key('status-api.service', 8766), 1.0),
        (key('knot.service', 53, 'udp', '::1'), 1.0),
        (key('syslog-relay.service', 5514, 'udp'), 0.0),
        (key('sms-webhook.service', 8765), 1.0),
        (key('systemd-resolved.service', 53, 'udp', '127.0.0.53'), 1.0),
    ]
    assert metrics['collision_guard_port_holder_info'] == [
        (dict(key('status-api.service', 8766), pid='4242', holder_unit='session-7.scope', name='python3', user='root',
              cmdline='python3 -c print("a\\\\b")\nx'), 1.0),
        (dict(key('knot.service', 53, 'udp', '::1'), pid='51', holder_unit='dnsmasq.service', name='dnsmasq',
              user='dnsmasq', cmdline='/usr/sbin/dnsmasq -k'), 1.0),
    ]
    assert metrics['collision_guard_last_check_timestamp_seconds'] == [({}, 1764286400.5)]


def test_metrics_for_a_host_with_nothing_registered_still_parse():
    assert parsed(_monitor.render_metrics([], 0))['collision_guard_port_owner_ok'] == []


def test_a_finding_without_an_address_key_gets_an_empty_label():
    legacy = dict(FINDINGS[3])
    del legacy['address']
    samples = parsed(_monitor.render_metrics([legacy], 0))['collision_guard_port_owner_ok']
    assert samples == [({'port': '8765', 'protocol': 'tcp', 'service': 'sms-webhook.service', 'address': ''}, 1.0)]


def test_a_repeated_series_is_written_once():
    """node_exporter drops a whole textfile that repeats a series; the first (the worst) finding wins."""
    text = _monitor.render_metrics(FINDINGS + [dict(FINDINGS[0], severity='ok', holders=[])], 0)
    samples = parsed(text)['collision_guard_port_owner_ok']
    assert len(samples) == len(FINDINGS)
    assert samples[0][1] == 0.0
    assert len(set(line for line in text.splitlines() if not line.startswith('#'))) == len(
        [line for line in text.splitlines() if not line.startswith('#')])


def test_label_escaping():
    assert _monitor.escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_one_journal_line_per_conflict_with_the_cmdline_quoted():
    assert _monitor.conflict_lines(FINDINGS) == [
        'conflict port=8766/tcp service=status-api.service: held by session-7.scope (pid 4242), not by '
        'status-api.service; pid=4242 user=root unit=session-7.scope cmdline="python3 -c print(\\"a\\\\\\\\b\\")\\nx"',
        'conflict port=[::1]:53/udp service=knot.service: held by dnsmasq.service (pid 51), not by knot.service; '
        'pid=51 user=dnsmasq unit=dnsmasq.service cmdline="/usr/sbin/dnsmasq -k"']


def test_load_config(tmp_path):
    path = tmp_path / 'monitor.json'
    assert _monitor.load_config(str(path)) == {}
    path.write_text(json.dumps({'alert_command': ['/bin/echo', 'conflict']}))
    assert _monitor.load_config(str(path)) == {'alert_command': ['/bin/echo', 'conflict']}
    path.write_text(json.dumps({'alert_command': 'rm -rf /'}))
    with pytest.raises(CollisionGuardError, match='alert_command must be a list of strings'):
        _monitor.load_config(str(path))
    path.write_text(json.dumps({'alert_command': ['/bin/echo', 42]}))
    with pytest.raises(CollisionGuardError, match='alert_command must be a list of strings'):
        _monitor.load_config(str(path))
    path.write_text('{broken')
    with pytest.raises(CollisionGuardError, match='cannot read'):
        _monitor.load_config(str(path))
    path.write_text(json.dumps(['/bin/echo']))
    with pytest.raises(CollisionGuardError, match='not a JSON object'):
        _monitor.load_config(str(path))


def test_the_alert_command_gets_the_conflicts_without_a_shell(tmp_path):
    out = tmp_path / 'alert.json'
    command = [sys.executable, '-c', 'import os, sys; open(sys.argv[1], "w").write(os.environ["COLLISION_GUARD_CONFLICTS"])',
               str(out)]
    logged = []
    _monitor.run_alert(command, FINDINGS, lambda priority, line: logged.append((priority, line)))
    assert [(item['service'], item['address']) for item in json.loads(out.read_text())] == [
        ('status-api.service', None), ('knot.service', '::1')]
    assert logged[0][0] == 5 and logged[0][1].endswith('exited 0')
    _monitor.run_alert([str(tmp_path / 'missing')], FINDINGS, lambda priority, line: logged.append((priority, line)))
    assert logged[1][0] == 3 and 'failed' in logged[1][1]


def test_entries_without_a_finding_are_named_as_unchecked():
    registry = [{'service': 'web.service', 'port': 80, 'protocol': 'tcp', 'address': None},
                {'service': 'dnsmasq.service', 'port': 53, 'protocol': 'udp', 'address': '127.0.0.2'}]
    findings = [{'service': 'web.service', 'port': 80, 'protocol': 'tcp'}]
    assert _monitor.unchecked_entries(registry, findings) == ['dnsmasq.service 127.0.0.2:53/udp']
    assert _monitor.unchecked_entries(registry[:1], findings) == []
