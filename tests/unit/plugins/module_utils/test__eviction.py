# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _eviction
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._journal import Journal
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import load_registry, validate_registry

REGISTRY = validate_registry([
    {'port': 8765, 'service': 'sms-webhook'},
    {'port': 8766, 'service': 'status-api'},
    {'port': 5514, 'service': 'syslog-relay', 'protocol': 'udp'},
], where='test')
HOST_NETNS = 'net:[4026531840]'


def holder(pid, inode=100, unit='session-3.scope', port=8765, protocol='tcp', netns=HOST_NETNS, **extra):
    entry = {'pid': pid, 'inode': inode, 'unit': unit, 'port': port, 'protocol': protocol, 'netns': netns,
             'user': 'root', 'cmdline': ['python3', '-m', 'http.server', str(port)], 'name': 'python3'}
    entry.update(extra)
    return entry


def plan(listeners, unit='sms-webhook.service', **context):
    context.setdefault('host_netns', HOST_NETNS)
    return _eviction.plan_eviction(listeners, unit, REGISTRY, context)


def evicted(result):
    return [(item['holder']['pid'], item['how']) for item in result['evict']]


def reasons(result):
    return [item['reason'] for item in result['refuse']]


# Whom to kill.

def test_an_unregistered_squatter_is_signalled():
    result = plan([holder(4242)])
    assert evicted(result) == [(4242, 'signal')]
    assert result['refuse'] == []


def test_a_forked_parent_and_child_sharing_the_socket_are_both_evicted_once():
    result = plan([holder(4242), holder(4243), holder(4242, inode=101, family='ipv6')])
    assert evicted(result) == [(4242, 'signal'), (4243, 'signal')]


def test_a_leftover_of_the_unit_itself_is_evicted():
    result = plan([holder(777, unit='sms-webhook.service')])
    assert evicted(result) == [(777, 'signal')]
    assert 'left over from an earlier run' in result['evict'][0]['reason']


def test_the_main_process_of_a_supervised_unit_is_stopped_through_its_unit():
    services = {'squatter.service': {'MainPID': '4242', 'Restart': 'always'}}
    result = plan([holder(4242, unit='squatter.service'), holder(4243, unit='squatter.service')], services=services)
    assert evicted(result) == [(4242, 'stop-unit'), (4243, 'signal')]
    assert result['evict'][0]['reason'] == 'squatter.service would restart it (Restart=always)'


def test_an_unsupervised_service_process_is_signalled():
    services = {'cron.service': {'MainPID': '100', 'Restart': 'no'}}
    assert evicted(plan([holder(4242, unit='cron.service')], services=services)) == [(4242, 'signal')]


# Whom to refuse.

def test_another_registered_service_is_never_killed_and_nobody_else_is_either():
    result = plan([holder(4242), holder(311, inode=101, unit='status-api.service')])
    assert result['evict'] == []
    assert reasons(result) == ['status-api.service is registered for 8766/tcp; a registered service is never killed']


def test_pid_1_holding_another_units_socket_is_refused():
    result = plan([holder(1, unit='init.scope'), holder(900, unit='other.service')],
                  socket_units={('tcp', 8765): ['other.socket']}, socket_triggers={'other.socket': ['other.service']})
    assert result['evict'] == []
    assert reasons(result) == ['PID 1 holds it for other.socket; systemd is never killed']
    assert result['refuse'][0]['holder']['pid'] == 1


def test_the_units_own_socket_is_kept():
    result = plan([holder(1, unit='init.scope')], socket_units={('tcp', 8765): ['sms-webhook.socket']},
                  socket_triggers={'sms-webhook.socket': ['sms-webhook.service']})
    assert result == {'evict': [], 'refuse': [], 'keep': [
        {'holder': holder(1, unit='init.scope'), 'reason': 'held for sms-webhook.service by sms-webhook.socket'}]}


def test_a_process_in_another_network_namespace_is_refused():
    result = plan([holder(5000, netns='net:[4026532999]')])
    assert reasons(result) == ['it runs in another network namespace']


def test_a_socket_with_no_visible_process_is_refused():
    result = plan([holder(None, unit=None)])
    assert result['evict'] == []
    assert 'no process that this helper can see holds it' in reasons(result)[0]


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


@pytest.mark.parametrize('text, target', [('8765/tcp', (8765, 'tcp')), ('5514/udp', (5514, 'udp')), ('80', (80, 'tcp'))])
def test_parse_target(text, target):
    assert _eviction.parse_target(text) == target


@pytest.mark.parametrize('text', ['0/tcp', '65536', 'http/tcp', '80/sctp', '-1', '80/tcp/x'])
def test_parse_target_refuses(text):
    with pytest.raises(CollisionGuardError):
        _eviction.parse_target(text)


def test_load_registry(tmp_path):
    path = tmp_path / 'registry.json'
    path.write_text(json.dumps({'registry': [{'port': 8765, 'service': 'sms-webhook'}]}))
    assert load_registry(str(path))[0]['service'] == 'sms-webhook.service'
    path.write_text(json.dumps({'registry': [{'port': 70000, 'service': 'x'}]}))
    with pytest.raises(CollisionGuardError, match='registry.json'):
        load_registry(str(path))
    with pytest.raises(CollisionGuardError, match='cannot read the registry'):
        load_registry(str(tmp_path / 'missing.json'))


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


def run_helper(tmp_path, port, *extra):
    registry = tmp_path / 'registry.json'
    registry.write_text(json.dumps({'registry': [{'port': port, 'service': 'owner'}]}))
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    argv = ['--registry', str(registry), '--grace-sec', '0.5', '--timeout-sec', '5'] + list(extra)
    args = _eviction.parse_arguments(argv + ['owner.service', '%d/tcp' % port])
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
        targets = [(sockets[1].getsockname()[1], 'udp'), (sockets[0].getsockname()[1], 'tcp')]
        holders = _eviction.read_holders(targets)
    finally:
        for sock in sockets:
            sock.close()
    assert [(item['port'], item['protocol'], item['pid']) for item in holders] == [
        (port, protocol, os.getpid()) for port, protocol in targets]
    assert all(item['netns'] == _eviction.netns_of(os.getpid()) for item in holders)


def test_a_free_port_needs_nothing_and_logs_nothing(tmp_path):
    probe = socket.socket()
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    assert run_helper(tmp_path, port)[:2] == (0, [])


def test_a_squatter_is_evicted_with_sigterm_and_a_receipt(tmp_path, squatter):
    process, port = squatter()
    code, lines, dummy = run_helper(tmp_path, port)
    assert code == 0
    assert process.wait(5) == -15
    assert port_is_free(port)
    assert lines[0].startswith('evicting port=%d/tcp pid=%d ' % (port, process.pid))
    assert lines[-1].startswith('evicted port=%d/tcp pid=%d ' % (port, process.pid))
    assert 'signal=SIGTERM' in lines[-1] and 'released the port after SIGTERM' in lines[-1]


def test_a_squatter_that_ignores_sigterm_gets_sigkill_after_the_grace_period(tmp_path, squatter):
    process, port = squatter('stubborn')
    time.sleep(0.2)  # let it install its SIGTERM handler
    code, lines, elapsed = run_helper(tmp_path, port)
    assert code == 0
    assert process.wait(5) == -9
    assert 0.5 <= elapsed < 5
    assert 'signal=SIGTERM+SIGKILL' in lines[-1]


def test_a_forked_pair_sharing_the_socket_are_both_evicted(tmp_path, squatter):
    process, port = squatter('forked')
    code, lines, dummy = run_helper(tmp_path, port)
    assert code == 0
    assert port_is_free(port)
    assert len([line for line in lines if line.startswith('evicted ')]) == 2


def test_dry_run_evicts_nobody(tmp_path, squatter):
    process, port = squatter()
    code, lines, dummy = run_helper(tmp_path, port, '--dry-run')
    assert code == 0
    assert process.poll() is None
    assert lines[0].startswith('would-evict port=%d/tcp pid=%d ' % (port, process.pid))


def test_without_its_registry_the_helper_evicts_nobody(tmp_path, squatter):
    process, port = squatter()
    args = _eviction.parse_arguments(['--registry', str(tmp_path / 'missing.json'), 'owner.service', '%d/tcp' % port])
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    assert _eviction.run(args, journal) == _eviction.EXIT_REFUSED
    assert process.poll() is None
    assert 'nothing is evicted' in journal.lines[0]


@pytest.mark.parametrize('argv, message', [
    (['bad;unit.service', '80/tcp'], "bad arguments: unit 'bad;unit.service' contains characters"),
    (['owner.service', '70000/tcp'], "bad port '70000/tcp': the port is not an integer in 1-65535"),
    (['--grace-sec', '20', '--timeout-sec=10', 'owner.service', '80/tcp'], 'bad arguments: need 0 < --grace-sec'),
])
def test_bad_values_change_nothing(argv, message):
    journal = Journal(_eviction.JOURNAL_IDENTIFIER, io.StringIO(), {})
    assert _eviction.run(_eviction.parse_arguments(argv), journal) == _eviction.EXIT_USAGE
    assert journal.lines[0].startswith(message)


def test_parse_arguments():
    argv = ['--grace-sec=0.5', '--dry-run', '--registry', '/r.json', 'a.service', '1/tcp', '2/udp']
    assert _eviction.parse_arguments(argv) == {
        'grace_sec': 0.5, 'timeout_sec': 10.0, 'registry': '/r.json', 'dry_run': True, 'help': False,
        'unit': 'a.service', 'ports': ['1/tcp', '2/udp']}
    assert _eviction.parse_arguments(['--help'])['help'] is True


@pytest.mark.parametrize('argv, message', [
    (['a.service'], 'name the unit and at least one PORT/PROTOCOL'),
    (['--grace-sec', 'soon', 'a.service', '1/tcp'], "--grace-sec: 'soon' is not a number"),
    (['--kill-all', 'a.service', '1/tcp'], "unknown option '--kill-all'"),
    (['a.service', '1/tcp', '--registry'], '--registry needs a value'),
])
def test_parse_arguments_refuses(argv, message):
    with pytest.raises(CollisionGuardError, match=message):
        _eviction.parse_arguments(argv)


def test_main_reports_bad_arguments_with_the_usage(capsys):
    assert _eviction.main(['--nope']) == _eviction.EXIT_USAGE
    assert 'usage: collision-guard-evict' in capsys.readouterr().err


def test_main_runs_as_a_command(tmp_path, squatter):
    """The way port-cleanup.conf runs it: a separate Python process, stderr to the journal."""
    process, port = squatter()
    registry = tmp_path / 'registry.json'
    registry.write_text(json.dumps({'registry': [{'port': port, 'service': 'owner'}]}))
    environment = dict(os.environ, JOURNAL_STREAM='8:1')
    result = subprocess.run(
        [sys.executable, '-c', 'import sys; from ansible_collections.qwf.collision_guard.plugins.module_utils '
                               'import _eviction; sys.exit(_eviction.main())',
         '--registry', str(registry), 'owner.service', '%d/tcp' % port],
        stderr=subprocess.PIPE, universal_newlines=True, env=environment, check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith('<5>collision-guard-evict: evicting port=%d/tcp' % port)
    assert process.wait(5) == -15
