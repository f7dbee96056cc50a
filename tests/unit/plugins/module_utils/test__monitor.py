# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import sys
import time
import zipfile

import pytest

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.qwf.collision_guard.plugins.module_utils import _monitor
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._imports import module_member
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._host_program import (
    program_bytes,
    program_members,
    read_module_utils,
)

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
    assert metrics['collision_guard_guard_ok'] == [({}, 1.0)]
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
    off = {'state': 'off', 'summary': 'off', 'units': [], 'rules': []}
    assert _monitor.load_config(str(path)) == {'alert_command': [], 'metrics_cmdline': True, 'prevention': off}
    path.write_text(json.dumps({'alert_command': ['/bin/echo', 'conflict']}))
    assert _monitor.load_config(str(path)) == {'alert_command': ['/bin/echo', 'conflict'], 'metrics_cmdline': True,
                                               'prevention': off}
    path.write_text(json.dumps({'alert_command': [], 'metrics_cmdline': False}))
    assert _monitor.load_config(str(path)) == {'alert_command': [], 'metrics_cmdline': False, 'prevention': off}
    path.write_text(json.dumps({'metrics_cmdline': 'no'}))
    with pytest.raises(CollisionGuardError, match='metrics_cmdline must be true or false, not "no"'):
        _monitor.load_config(str(path))
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


# A squatter's command line of about 140 KB, as in the attack: more than one
# environment string may hold (128 KiB), so execve failed when the conflicts
# went into $COLLISION_GUARD_CONFLICTS.
LONG_CMDLINE = ['python3', '/usr/local/lib/listener.py', 'plain', '9101'] + ['x' * 2000] * 70
LONG_FINDINGS = [dict(FINDINGS[0], holders=[dict(SQUATTER, user='mallory', cmdline=LONG_CMDLINE)])] + FINDINGS[1:]
# Saves its stdin, its environment's view of the old variable and its arguments' count.
SAVE_STDIN = ('import json, os, sys; open(sys.argv[1], "w").write(json.dumps({"stdin": sys.stdin.read(), '
              '"env": os.environ.get("COLLISION_GUARD_CONFLICTS")}))')


def recorder():
    logged = []
    return logged, lambda priority, line: logged.append((priority, line))


def test_the_alert_command_gets_the_conflicts_on_stdin_without_a_shell(tmp_path, monkeypatch):
    monkeypatch.setenv('COLLISION_GUARD_CONFLICTS', 'stale')
    out = tmp_path / 'alert.json'
    logged, log = recorder()
    assert _monitor.run_alert([sys.executable, '-c', SAVE_STDIN, str(out), '--token=s3cret'], FINDINGS, log)
    received = json.loads(out.read_text())
    assert received['env'] is None
    conflicts = json.loads(received['stdin'])
    assert [(item['service'], item['address']) for item in conflicts] == [('status-api.service', None), ('knot.service', '::1')]
    assert conflicts[0]['holders'][0]['cmdline'] == SQUATTER['cmdline']
    assert conflicts[0]['holders'][0]['cmdline_cut'] is False
    # The command's name and its exit status only: its arguments may hold a token.
    assert logged == [(5, 'alert command %s exited 0' % os.path.basename(sys.executable))]


def test_a_140_kb_cmdline_does_not_suppress_the_alert(tmp_path):
    out = tmp_path / 'alert.json'
    logged, log = recorder()
    assert len(' '.join(LONG_CMDLINE)) > 140000
    assert _monitor.run_alert([sys.executable, '-c', SAVE_STDIN, str(out)], LONG_FINDINGS, log)
    holder = json.loads(json.loads(out.read_text())['stdin'])[0]['holders'][0]
    assert holder['user'] == 'mallory' and holder['cmdline_cut'] is True
    assert holder['cmdline'][:4] == LONG_CMDLINE[:4]
    assert len(' '.join(holder['cmdline'])) == _monitor.CMDLINE_MAX
    assert holder['cmdline'][-1].endswith('...')
    assert logged[0][0] == 5


def test_an_alert_command_that_fails_or_is_missing_is_logged_by_name_only(tmp_path):
    logged, log = recorder()
    assert not _monitor.run_alert([sys.executable, '-c', 'import sys; sys.exit(3)', '--token=s3cret'], FINDINGS, log)
    assert not _monitor.run_alert([str(tmp_path / 'missing'), '--token=s3cret'], FINDINGS, log)
    assert logged == [(3, 'alert command %s exited 3' % os.path.basename(sys.executable)),
                      (3, 'alert command missing could not run: No such file or directory')]


def test_an_alert_command_that_hangs_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / 'child.pid'
    # The command starts a child that would outlive it, then hangs without reading its stdin.
    hang = ('import subprocess, sys, time; child = subprocess.Popen(["sleep", "60"]); '
            'open(sys.argv[1], "w").write(str(child.pid)); time.sleep(60)')
    logged, log = recorder()
    started = time.monotonic()
    assert not _monitor.run_alert([sys.executable, '-c', hang, str(pidfile)], LONG_FINDINGS, log, timeout=2)
    assert time.monotonic() - started < 10
    assert logged == [(3, 'alert command %s did not finish within 2 s and was killed' % os.path.basename(sys.executable))]
    child = int(pidfile.read_text())
    for dummy in range(50):
        try:
            os.kill(child, 0)
        except OSError:
            break
        # A killed child of a killed parent lingers as a zombie until init reaps it.
        with open('/proc/%d/stat' % child) as handle:
            if handle.read().rsplit(')', 1)[1].split()[0] == 'Z':
                break
        time.sleep(0.1)
    else:
        pytest.fail('the alert command\'s child %d outlived it' % child)


def test_the_payload_holds_only_the_conflicts():
    assert json.loads(_monitor.alert_payload(FINDINGS[2:]).decode('utf-8')) == []


def test_entries_without_a_finding_are_named_as_unchecked():
    registry = [{'service': 'web.service', 'port': 80, 'protocol': 'tcp', 'address': None},
                {'service': 'dnsmasq.service', 'port': 53, 'protocol': 'udp', 'address': '127.0.0.2'}]
    findings = [{'service': 'web.service', 'port': 80, 'protocol': 'tcp'}]
    assert _monitor.unchecked_entries(registry, findings) == ['dnsmasq.service 127.0.0.2:53/udp']
    assert _monitor.unchecked_entries(registry[:1], findings) == []


def test_cutting_text_and_arguments():
    assert _monitor.cut_text('abc', 3) == 'abc'
    assert _monitor.cut_text('abcdefgh', 7) == 'abcd...'
    assert _monitor.cut_args(['ab', 'cd'], 5) == (['ab', 'cd'], False)
    assert _monitor.cut_args(['ab', 'cdefgh', 'ij'], 8) == (['ab', 'cd...'], True)
    assert _monitor.cut_args(['ab', 'cd', 'efgh'], 8) == (['ab', 'cd...'], True)
    assert _monitor.cut_args(['abcd', 'efgh'], 8) == (['abcd...'], True)
    assert _monitor.cut_args(['abcdefgh'], 4) == (['a...'], True)
    assert _monitor.cut_args(None, 4) == ([], False)


def test_the_cmdline_label_is_cut_and_can_be_left_empty():
    findings = LONG_FINDINGS[:1]
    label = parsed(_monitor.render_metrics(findings, 0))['collision_guard_port_holder_info'][0][0]['cmdline']
    assert len(label) == _monitor.METRICS_CMDLINE_MAX
    assert label.startswith('python3 /usr/local/lib/listener.py plain 9101 xxx') and label.endswith('...')
    # The label stays, empty, so the family keeps one set of label names.
    hidden = parsed(_monitor.render_metrics(findings, 0, cmdline=False))['collision_guard_port_holder_info']
    assert hidden == [(dict(port='8766', protocol='tcp', service='status-api.service', address='', pid='4242',
                            holder_unit='session-7.scope', name='python3', user='mallory', cmdline=''), 1.0)]


def test_the_journal_line_cuts_the_cmdline():
    line = _monitor.conflict_lines(LONG_FINDINGS)[0]
    assert len(line) < _monitor.CMDLINE_MAX + 200
    assert line.endswith('xxx..."')


def test_guard_ok_in_the_metrics():
    text = _monitor.render_metrics([], 0, guard_ok=False)
    assert '# TYPE collision_guard_guard_ok gauge' in text.splitlines()
    assert parsed(text)['collision_guard_guard_ok'] == [({}, 0.0)]


MOUNTINFO = (
    '22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/l\n'
    '23 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw{options}\n'
    '24 22 0:23 / /sys rw,nosuid - sysfs sysfs rw\n')


@pytest.mark.parametrize('options, hidden', [
    ('', False),
    (',hidepid=0', False),
    (',hidepid=off', False),
    (',hidepid=2', True),
    (',hidepid=invisible,subset=pid', True),
    (',hidepid=1', True),
])
def test_hidepid_is_read_from_mountinfo(options, hidden):
    assert _monitor.proc_hides_processes(MOUNTINFO.format(options=options)) is hidden


def test_the_last_proc_mount_wins():
    text = MOUNTINFO.format(options=',hidepid=2') + '30 23 0:40 / /proc rw - proc proc rw\n'
    assert _monitor.proc_hides_processes(text) is False


def test_cmdlines_are_shown_unless_switched_off_or_hidden_by_proc(tmp_path):
    mountinfo = tmp_path / 'mountinfo'
    mountinfo.write_text(MOUNTINFO.format(options=''))
    assert _monitor.show_cmdlines({'metrics_cmdline': True}, str(mountinfo))
    assert not _monitor.show_cmdlines({'metrics_cmdline': False}, str(mountinfo))
    mountinfo.write_text(MOUNTINFO.format(options=',hidepid=2'))
    assert not _monitor.show_cmdlines({'metrics_cmdline': True}, str(mountinfo))
    assert _monitor.show_cmdlines({}, str(tmp_path / 'missing'))


ROOT = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..')
HELPER_SOURCE = os.path.join(ROOT, 'roles', 'harden', 'files', 'collision-guard-evict')


def helper_members():
    with open(HELPER_SOURCE, 'rb') as handle:
        return program_members(handle.read(), read_module_utils())


@pytest.fixture
def installed(tmp_path):
    """A host as harden leaves it: the helper, one file, in a helper directory, and drop-ins that run it."""
    helper_dir = tmp_path / 'lib' / 'collision-guard'
    helper_dir.mkdir(parents=True)
    helper = helper_dir / 'collision-guard-evict'
    helper.write_bytes(program_bytes(helper_members(), 'the eviction helper'))
    units = tmp_path / 'units'
    for unit in ('sms-webhook.service', 'status-api.service', 'ssh.socket'):
        (units / (unit + '.d')).mkdir(parents=True)
        (units / (unit + '.d') / 'port-cleanup.conf').write_text(
            '# Managed by qwf.collision_guard. Local edits are overwritten.\n# Frees ports.\n[Service]\n'
            'ExecStartPre=+%s -I %s/collision-guard-evict --grace-sec 2 --timeout-sec 10 %s 8765/tcp\n' % (
                sys.executable, helper_dir, unit))
    return {'units': units, 'helper_dir': helper_dir, 'helper': helper}


USERS = '(needed by the port-cleanup.conf of sms-webhook.service, ssh.socket, status-api.service)'


def test_a_whole_guard_has_no_problem(installed):
    commands = _monitor.cleanup_commands(str(installed['units']))
    assert [unit for unit, dummy in commands] == ['sms-webhook.service', 'ssh.socket', 'status-api.service']
    assert _monitor.guard_problems(commands) == []
    assert _monitor.guard_status(str(installed['units'])) == (True, [])


def test_a_missing_helper_is_named_with_the_units_that_need_it(installed):
    installed['helper'].unlink()
    assert _monitor.guard_status(str(installed['units'])) == (False, [
        '%s/collision-guard-evict is missing %s' % (installed['helper_dir'], USERS)])


@pytest.mark.parametrize('module', ['_eviction', '_sock_diag', '_unit_names', '_journal'])
def test_a_module_the_helper_imports_missing_from_its_archive_is_named(installed, module):
    """_sock_diag and _unit_names are imported through other modules, not by the helper script itself."""
    members = helper_members()
    del members[module_member(module)]
    installed['helper'].write_bytes(program_bytes(members, 'the eviction helper'))
    ok, problems = _monitor.guard_status(str(installed['units']))
    assert not ok
    assert problems == ['%s lacks %s, which the eviction helper imports %s' % (
        installed['helper'], module_member(module), USERS)]


def test_the_archive_holds_exactly_what_the_helper_imports(installed):
    with zipfile.ZipFile(str(installed['helper'])) as archive:
        names = archive.namelist()
    assert module_member('_eviction') in names and module_member('_sock_diag') in names
    # The audit's and the SQLite module's code is not the helper's.
    assert module_member('_collision_map') not in names and module_member('_sqlite') not in names


def test_a_module_that_is_not_python_is_named(installed):
    members = helper_members()
    members[module_member('_errors')] = b'def broken(:\n'
    installed['helper'].write_bytes(program_bytes(members, 'the eviction helper'))
    ok, problems = _monitor.guard_status(str(installed['units']))
    assert not ok and problems[0].startswith('%s holds a file that cannot be read as Python: ' % installed['helper'])


def test_a_damaged_archive_is_named(installed):
    content = bytearray(installed['helper'].read_bytes())
    offset = content.index(b'def main(')  # inside a stored member: its checksum no longer holds
    content[offset:offset + 3] = b'DEF'
    installed['helper'].write_bytes(bytes(content))
    ok, problems = _monitor.guard_status(str(installed['units']))
    assert not ok and problems[0].startswith('%s is damaged: ' % installed['helper'])


def test_a_helper_that_is_not_an_archive_is_named(installed):
    installed['helper'].write_text('# an earlier version\nimport os\n')
    assert _monitor.guard_status(str(installed['units']))[1] == [
        "%s is not the collection's helper: not a zip application (harden installs it as one) %s" % (
            installed['helper'], USERS)]


def test_a_missing_interpreter_is_named(installed):
    for conf in installed['units'].glob('*.d/port-cleanup.conf'):
        conf.write_text(conf.read_text().replace(sys.executable, '/nonexistent/python3'))
    ok, problems = _monitor.guard_status(str(installed['units']))
    assert problems == ['/nonexistent/python3 is missing (needed by the port-cleanup.conf of sms-webhook.service, '
                        'ssh.socket, status-api.service)']


def test_many_units_are_counted_not_listed(installed):
    (installed['helper_dir'] / 'collision-guard-evict').unlink()
    for number in range(3):
        shutil.copytree(str(installed['units'] / 'ssh.socket.d'), str(installed['units'] / ('extra%d.service.d' % number)))
    problem = _monitor.guard_status(str(installed['units']))[1][0]
    assert problem.endswith('(needed by the port-cleanup.conf of extra0.service, extra1.service, extra2.service and 3 more units)')


def test_fuser_drop_ins_need_fuser(installed, monkeypatch, tmp_path):
    for conf in installed['units'].glob('*.d/port-cleanup.conf'):
        conf.write_text('# Managed by qwf.collision_guard. Local edits are overwritten.\n[Service]\n'
                        'ExecStartPre=-+fuser --kill --namespace tcp 8765\n')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    monkeypatch.setattr(_monitor, 'SYSTEMD_EXEC_PATH', (str(bin_dir),))
    assert _monitor.guard_status(str(installed['units']))[1] == [
        'fuser is not installed (needed by the port-cleanup.conf of sms-webhook.service, ssh.socket, status-api.service)']
    (bin_dir / 'fuser').write_text('#!/bin/sh\n')
    (bin_dir / 'fuser').chmod(0o755)
    assert _monitor.guard_status(str(installed['units'])) == (True, [])


def test_drop_ins_that_are_not_the_collections_or_run_nothing_are_left_out(installed):
    (installed['helper_dir'] / 'collision-guard-evict').unlink()
    for conf in installed['units'].glob('*.d/port-cleanup.conf'):
        conf.write_text('[Service]\nExecStartPre=/nonexistent/other\n')
    (installed['units'] / 'ssh.socket.d' / 'port-cleanup.conf').write_text(
        '# Managed by qwf.collision_guard. Local edits are overwritten.\n[Socket]\nExecStartPre=\n')
    assert _monitor.guard_status(str(installed['units'])) == (True, [])
    assert _monitor.guard_status(str(installed['units'] / 'none')) == (True, [])


def test_a_shell_that_runs_the_helper_needs_the_shell_and_the_interpreter(installed):
    (installed['helper_dir'] / 'collision-guard-evict').unlink()
    line = ("ExecStartPre=+/nonexistent/sh -c '/nonexistent/python3 -I %s/collision-guard-evict sms-webhook.service 8765/tcp "
            "|| exit 0'" % installed['helper_dir'])
    assert _monitor.exec_words(line)[:4] == ['/nonexistent/sh', '-c', '/nonexistent/python3', '-I']
    problems = _monitor.guard_problems([('sms-webhook.service', _monitor.exec_words(line))])
    assert [problem.split(' (')[0] for problem in problems] == [
        '/nonexistent/sh is missing', '/nonexistent/python3 is missing',
        '%s/collision-guard-evict is missing' % installed['helper_dir']]


# A drop-in that fails open: a shell runs the helper from its arguments and
# lets the start go on when the helper or its interpreter is missing.
FAIL_OPEN = ("ExecStartPre=+/bin/sh -c 'if [ ! -x \"$$1\" ]; then what=\"its interpreter $$1 is missing\"; "
             "elif [ ! -f \"$$3\" ]; then what=\"$$3 is missing\"; else \"$$@\"; fi; "
             "echo \"collision-guard-evict: $$what; the start goes on\" >&2; exit 0' "
             "collision-guard-evict %s -I %s/collision-guard-evict --grace-sec 2 --timeout-sec 10 %s 8765/tcp")


def test_a_fail_open_wrapper_needs_its_shell_the_interpreter_and_the_helper(installed):
    words = _monitor.exec_words(FAIL_OPEN % ('/nonexistent/python3', installed['helper_dir'], 'a.service'))
    assert words[0] == '/bin/sh' and words[3:6] == ['collision-guard-evict', '/nonexistent/python3', '-I']
    (installed['helper_dir'] / 'collision-guard-evict').unlink()
    problems = _monitor.guard_problems([('a.service', words)])
    assert problems == [
        '/nonexistent/python3 is missing (needed by the port-cleanup.conf of a.service)',
        '%s/collision-guard-evict is missing (needed by the port-cleanup.conf of a.service)' % installed['helper_dir']]
    for conf in installed['units'].glob('*.d/port-cleanup.conf'):
        conf.write_text('# Managed by qwf.collision_guard. Local edits are overwritten.\n[Service]\n' + FAIL_OPEN % (
            sys.executable, installed['helper_dir'], 'a.service') + '\n')
    assert _monitor.guard_status(str(installed['units']))[1] == [
        '%s/collision-guard-evict is missing (needed by the port-cleanup.conf of sms-webhook.service, ssh.socket, '
        'status-api.service)' % installed['helper_dir']]


def test_the_guard_check_fails_soft(monkeypatch):
    def broken(unit_dir):
        raise RuntimeError('surprise')
    monkeypatch.setattr(_monitor, 'cleanup_commands', broken)
    assert _monitor.guard_status() == (False, ['cannot check the guard: surprise'])


def test_the_guard_table_names_broken_hosts_only():
    assert _monitor.guard_table({'web-1': [], 'web-2': []}) == []
    assert _monitor.guard_table({'web-10': ['/usr/bin/python3 is missing (needed by ...)'], 'web-2': [], 'db': ['a', 'b']}) == [
        '',
        'host    guard   problem',
        'db      BROKEN  a',
        'db      BROKEN  b',
        'web-10  BROKEN  /usr/bin/python3 is missing (needed by ...)']


@pytest.fixture
def host(monkeypatch, tmp_path):
    """main() on a host with the FINDINGS, the guard broken, an alert command, and the writes and alerts recorded."""
    seen = {'alerts': [], 'written': {}}
    monkeypatch.setattr(_monitor, 'load_registry', lambda path: [])
    monkeypatch.setattr(_monitor, 'load_config', lambda path: {'alert_command': ['/usr/local/bin/page', '--token=s3cret'],
                                                               'metrics_cmdline': True})
    monkeypatch.setattr(_monitor, 'check', lambda registry: (FINDINGS, True))
    monkeypatch.setattr(_monitor, 'guard_status', lambda: (False, ['/usr/bin/python3 is missing (needed by ...)']))
    monkeypatch.setattr(_monitor, 'show_cmdlines', lambda config: True)
    monkeypatch.setattr(_monitor, 'run_alert', lambda command, findings, log: seen['alerts'].append(command))
    monkeypatch.setattr(_monitor, 'write_atomically', lambda path, content: seen['written'].update({path: content}))
    monkeypatch.delenv('JOURNAL_STREAM', raising=False)
    return seen


def test_main_writes_the_guard_state_and_alerts(host, capsys):
    assert _monitor.main(['--textfile-dir', '/metrics']) == 0
    metrics = parsed(host['written']['/metrics/collision_guard.prom'].decode('utf-8'))
    assert metrics['collision_guard_guard_ok'] == [({}, 0.0)]
    assert host['alerts'] == [['/usr/local/bin/page', '--token=s3cret']]
    assert 'collision-guard-check: the guard is broken: /usr/bin/python3 is missing (needed by ...)\n' in capsys.readouterr().err


def test_a_metrics_file_that_cannot_be_written_does_not_stop_the_alert(host, monkeypatch, capsys):
    def refuse(path, content):
        raise CollisionGuardError('%s is a symbolic link; not following it' % path)
    monkeypatch.setattr(_monitor, 'write_atomically', refuse)
    assert _monitor.main(['--textfile-dir', '/metrics']) == 1
    assert host['alerts'] == [['/usr/local/bin/page', '--token=s3cret']]
    err = capsys.readouterr().err
    assert ('collision-guard-check: cannot write the metrics to /metrics/collision_guard.prom: '
            '/metrics/collision_guard.prom is a symbolic link; not following it') in err
    assert 'conflict port=8766/tcp' in err
