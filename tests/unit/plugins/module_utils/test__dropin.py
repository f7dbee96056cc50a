# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex
import subprocess

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import (
    DEFAULT_CLEANUP,
    GUARD_SCRIPT,
    RESTART_CASES,
    cleanup_problems,
    dropin_path,
    is_managed,
    parse_systemd_version,
    plan_dropins,
    plan_purge,
    render_port_cleanup,
    render_restart_policy,
    restart_policy_problems,
    restart_to_write,
    guard_command,
    systemd_word,
    target_word,
    timespan,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import RESTART_VALUES, validate_registry

REGISTRY = validate_registry([
    {'port': 8765, 'service': 'sms-webhook', 'notes': 'ExecStartPre=/bin/evil'},
    {'port': 5514, 'service': 'sms-webhook', 'protocol': 'udp'},
    {'port': 8766, 'service': 'status-api'},
    {'port': 9100, 'service': 'billing-worker'},
])
POLICY = {'start_limit_interval_sec': 0, 'start_limit_burst': 5, 'restart_sec': 1, 'restart_steps': 5,
          'restart_max_delay_sec': 30, 'restart': ''}

# The helper runs under a fixed sh script ("$" doubled for systemd), with
# every value a positional parameter after it.
GUARD = (
    "+/bin/sh -c 'if [ ! -x \"$$1\" ]; then what=\"its interpreter $$1 is missing\"; "
    "elif [ ! -f \"$$3\" ]; then what=\"$$3 is missing\"; "
    "else \"$$@\"; status=$$?; case $$status in [0-4]) exit $$status;; esac; "
    "what=\"$$3 failed with exit status $$status\"; fi; "
    "echo \"$${JOURNAL_STREAM:+<4>}collision-guard-evict: $$what; the start goes on without freeing the port\" >&2; "
    "exit 0' collision-guard-evict ")

EXPECTED_EVICT = """\
# Managed by qwf.collision_guard. Local edits are overwritten.
# Frees the registered ports of sms-webhook.service before every start.

[Service]
ExecStartPre=%s/usr/bin/python3 -I /usr/local/lib/collision-guard/collision-guard-evict \
--grace-sec 2 --timeout-sec 10 sms-webhook.service 8765/tcp 5514/udp
""" % GUARD

EXPECTED_FUSER = """\
# Managed by qwf.collision_guard. Local edits are overwritten.
# Frees the registered ports of sms-webhook.service before every start.

[Service]
ExecStartPre=-+fuser --kill --namespace tcp 8765
ExecStartPre=-+fuser --kill --namespace udp 5514
"""

EXPECTED_POLICY_252 = """\
# Managed by qwf.collision_guard. Local edits are overwritten.
# Keeps sms-webhook.service retrying its start instead of giving up.

[Unit]
StartLimitIntervalSec=0
StartLimitBurst=5

[Service]
RestartSec=1s
"""


def test_evict_calls_the_helper_once_with_every_port_and_no_notes():
    content = render_port_cleanup('sms-webhook.service', REGISTRY)
    assert content == EXPECTED_EVICT
    assert is_managed(content)
    assert 'evil' not in content


def test_fuser_writes_one_command_per_port():
    assert render_port_cleanup('sms-webhook.service', REGISTRY, {'method': 'fuser'}) == EXPECTED_FUSER


def test_render_is_stable_whatever_the_registry_order():
    assert render_port_cleanup('sms-webhook.service', list(reversed(REGISTRY))) == EXPECTED_EVICT


def test_a_backslash_in_a_unit_name_survives_systemds_unescaping():
    registry = validate_registry([{'port': 80, 'service': 'web\\x2dfront'}])
    assert ' web\\\\x2dfront.service 80/tcp\n' in render_port_cleanup('web\\x2dfront.service', registry)


def test_render_refuses_unknown_method_and_unknown_unit():
    with pytest.raises(CollisionGuardError, match="unknown cleanup method 'kill-all'"):
        render_port_cleanup('sms-webhook.service', REGISTRY, {'method': 'kill-all'})
    with pytest.raises(CollisionGuardError, match='no registry entry'):
        render_port_cleanup('nope.service', REGISTRY)


def test_restart_policy_backoff_needs_systemd_254():
    assert render_restart_policy('sms-webhook.service', POLICY, 252) == EXPECTED_POLICY_252
    newer = render_restart_policy('sms-webhook.service', POLICY, 254)
    assert newer == EXPECTED_POLICY_252 + 'RestartSteps=5\nRestartMaxDelaySec=30s\n'
    assert 'RestartSteps' not in render_restart_policy('sms-webhook.service', dict(POLICY, restart_steps=0), 257)


def test_restart_is_written_only_when_asked():
    assert 'Restart=' not in render_restart_policy('a.service', POLICY, 257).replace('RestartSec', '')
    assert '[Service]\nRestart=on-failure\nRestartSec=500ms\n' in render_restart_policy(
        'a.service', dict(POLICY, restart='on-failure', restart_sec=0.5), 252)


@pytest.mark.parametrize('seconds, text', [(0, '0'), (2, '2s'), (2.0, '2s'), (0.25, '250ms'), (90, '90s')])
def test_timespan(seconds, text):
    assert timespan(seconds) == text


def test_plan_splits_present_and_absent_units():
    dropins, absent, notes = plan_dropins(REGISTRY, {'sms-webhook.service', 'status-api.service', 'unrelated.service'},
                                          restart_policy=POLICY, systemd_version=252)
    assert sorted(dropins) == [
        '/etc/systemd/system/sms-webhook.service.d/port-cleanup.conf',
        '/etc/systemd/system/sms-webhook.service.d/private-tmp.conf',
        '/etc/systemd/system/sms-webhook.service.d/restart-policy.conf',
        '/etc/systemd/system/status-api.service.d/port-cleanup.conf',
        '/etc/systemd/system/status-api.service.d/private-tmp.conf',
        '/etc/systemd/system/status-api.service.d/restart-policy.conf',
    ]
    # No entry asks for a private /tmp: a managed copy left by an earlier run would go.
    assert dropins['/etc/systemd/system/status-api.service.d/private-tmp.conf']['content'] is None
    assert dropins['/etc/systemd/system/sms-webhook.service.d/port-cleanup.conf'] == {
        'unit': 'sms-webhook.service', 'content': EXPECTED_EVICT}
    assert dropins['/etc/systemd/system/sms-webhook.service.d/restart-policy.conf']['content'] == EXPECTED_POLICY_252
    assert [entry['service'] for entry in absent] == ['billing-worker.service']
    assert notes == {}


def test_plan_marks_unwanted_dropins_for_removal():
    dropins, dummy, notes = plan_dropins(REGISTRY, {'status-api.service'}, {'method': 'none'}, None,
                                         sockets={'status-api.service': ['status-api.socket']})
    assert dropins == {
        '/etc/systemd/system/status-api.service.d/port-cleanup.conf': {'unit': 'status-api.service', 'content': None},
        '/etc/systemd/system/status-api.service.d/restart-policy.conf': {'unit': 'status-api.service', 'content': None},
        '/etc/systemd/system/status-api.service.d/private-tmp.conf': {'unit': 'status-api.service', 'content': None},
        '/etc/systemd/system/status-api.socket.d/port-cleanup.conf': {'unit': 'status-api.socket', 'content': None},
    }
    assert notes == {}


def test_plan_with_no_units_present():
    dropins, absent, notes = plan_dropins(REGISTRY, set(), restart_policy=POLICY,
                                          sockets={'sms-webhook.service': ['sms-webhook.socket']})
    assert dropins == {}
    assert notes == {}
    assert len(absent) == len(REGISTRY)


def test_cleanup_settings_are_checked_before_they_reach_a_unit_file():
    assert cleanup_problems(DEFAULT_CLEANUP) == []
    assert cleanup_problems({'method': 'fuser'}) == []
    problems = cleanup_problems(dict(DEFAULT_CLEANUP, grace_sec=True, timeout_sec=301,
                                     helper_dir='/opt/x;rm -rf /', helper_python='/usr/bin/%n'))
    assert problems == [
        'grace_sec: True is not a number',
        'timeout_sec: 301 is out of range 1-300',
        'helper_dir: \'/opt/x;rm -rf /\' is not an absolute path of letters, digits and "._+-"',
        'helper_python: \'/usr/bin/%n\' is not an absolute path of letters, digits and "._+-"',
    ]
    assert cleanup_problems(dict(DEFAULT_CLEANUP, helper_dir='/opt/../etc')) != []


@pytest.mark.parametrize('name', ['helper_dir', 'helper_python'])
@pytest.mark.parametrize('value', ['/usr/local/lib/x\n', '/usr/local/lib/x\n/y', '\n/usr/local/lib/x', '/usr/bin/python3\r',
                                   '/usr/local/lib/x\nExecStartPre=/bin/evil', '/', '//x', '/x/', 'x', '', None, b'/x'])
def test_a_path_is_matched_as_a_whole(name, value):
    # A YAML block scalar ends in a newline, which "$" would let through to split the Exec line.
    assert cleanup_problems(dict(DEFAULT_CLEANUP, **{name: value})) == [
        '%s: %r is not an absolute path of letters, digits and "._+-"' % (name, value)]


@pytest.mark.parametrize('value', ['/usr/local/lib/collision-guard', '/opt/cg-1.2_x+y', '/a'])
def test_a_plain_path_is_accepted(value):
    assert cleanup_problems(dict(DEFAULT_CLEANUP, helper_dir=value, helper_python=value + '/python3')) == []
    assert cleanup_problems(dict(DEFAULT_CLEANUP, grace_sec=5, timeout_sec=5)) == [
        'timeout_sec: 5 must be longer than grace_sec (5)']
    assert cleanup_problems({'method': 'kill'}) == ["method: 'kill' is not one of evict, fuser, none"]


def test_restart_policy_settings_are_checked():
    assert restart_policy_problems(POLICY) == []
    assert restart_policy_problems(dict(POLICY, start_limit_burst=2.5, restart='sometimes')) == [
        'start_limit_burst: 2.5 is not an integer',
        "restart: 'sometimes' is not one of no, on-success, on-failure, on-abnormal, on-watchdog, on-abort, always, "
        "or empty to leave Restart= alone",
    ]
    assert restart_policy_problems(dict(POLICY, restart_sec=30)) == [
        'restart_max_delay_sec: 30 must be longer than restart_sec (30) when restart_steps is set']
    assert restart_policy_problems(dict(POLICY, restart_sec=30, restart_steps=0)) == []


@pytest.mark.parametrize('output, version', [
    ('systemd 252 (252.30-1~deb12u2)\n+PAM +AUDIT', 252),
    ('systemd 257 (257.9-1~deb13u1)\n', 257),
    ('', 0),
])
def test_parse_systemd_version(output, version):
    assert parse_systemd_version(output) == version


def test_dropin_path_honours_unit_dir():
    assert dropin_path('a@1.service', unit_dir='/tmp/units') == '/tmp/units/a@1.service.d/port-cleanup.conf'


def test_foreign_files_are_not_managed():
    assert not is_managed('[Service]\nExecStartPre=/bin/true\n')


def test_plan_purge_removes_only_what_the_plan_does_not_want():
    dropins, dummy, dummy_notes = plan_dropins(REGISTRY, {'status-api.service'}, restart_policy=POLICY)
    found = ['/etc/systemd/system/status-api.service.d/port-cleanup.conf',
             '/etc/systemd/system/old-api.service.d/restart-policy.conf']
    assert plan_purge(found, dropins) == {
        '/etc/systemd/system/old-api.service.d/restart-policy.conf': {'unit': 'old-api.service', 'content': None}}
    assert sorted(plan_purge(found, {})) == sorted(found)


EXPECTED_SOCKET = """\
# Managed by qwf.collision_guard. Local edits are overwritten.
# Frees the registered ports of sms-webhook.service before sms-webhook.socket binds them.

[Socket]
ExecStartPre=%s/usr/bin/python3 -I /usr/local/lib/collision-guard/collision-guard-evict \
--grace-sec 2 --timeout-sec 10 --starting sms-webhook.socket sms-webhook.service 8765/tcp 5514/udp
""" % GUARD


def test_a_socket_unit_gets_its_own_dropin_naming_the_unit_it_starts():
    content = render_port_cleanup('sms-webhook.service', REGISTRY, socket='sms-webhook.socket')
    assert content == EXPECTED_SOCKET
    assert is_managed(content)
    assert '[Service]' not in content


def test_a_socket_dropin_with_fuser_frees_the_same_ports():
    content = render_port_cleanup('sms-webhook.service', REGISTRY, {'method': 'fuser'}, socket='sms-webhook.socket')
    assert content == EXPECTED_FUSER.replace('before every start', 'before sms-webhook.socket binds them').replace(
        '[Service]', '[Socket]')


def test_a_backslash_in_a_socket_name_survives_systemds_unescaping():
    registry = validate_registry([{'port': 80, 'service': 'web\\x2dfront'}])
    assert '--starting web\\\\x2dfront.socket web\\\\x2dfront.service 80/tcp\n' in render_port_cleanup(
        'web\\x2dfront.service', registry, socket='web\\x2dfront.socket')


DNS = validate_registry([
    {'port': 53, 'service': 'dnsmasq', 'protocol': 'udp', 'address': '127.0.0.2'},
    {'port': 53, 'service': 'dnsmasq', 'protocol': 'tcp', 'address': '::1'},
    {'port': 67, 'service': 'dnsmasq', 'protocol': 'udp'},
])


@pytest.mark.parametrize('entry, word', [
    ({'port': 8765, 'protocol': 'tcp', 'address': None}, '8765/tcp'),
    ({'port': 53, 'protocol': 'udp', 'address': '127.0.0.2'}, '127.0.0.2:53/udp'),
    ({'port': 53, 'protocol': 'tcp', 'address': '::1'}, '[::1]:53/tcp'),
    ({'port': 8765, 'protocol': 'tcp'}, '8765/tcp'),
])
def test_target_word(entry, word):
    assert target_word(entry) == word


def test_the_helper_gets_each_entrys_address():
    content = render_port_cleanup('dnsmasq.service', DNS)
    assert content.endswith(' --timeout-sec 10 dnsmasq.service [::1]:53/tcp 127.0.0.2:53/udp 67/udp\n')


def test_fuser_refuses_an_entry_with_an_address():
    with pytest.raises(CollisionGuardError) as raised:
        render_port_cleanup('dnsmasq.service', DNS, {'method': 'fuser'})
    message = str(raised.value)
    assert message.startswith('dnsmasq.service: the fuser method kills by port alone')
    assert '[::1]:53/tcp, 127.0.0.2:53/udp' in message
    assert '67/udp' not in message
    assert 'use the evict method for entries with an address' in message
    with pytest.raises(CollisionGuardError, match='fuser method kills by port alone'):
        plan_dropins(DNS, {'dnsmasq.service'}, {'method': 'fuser'})


def test_an_address_does_not_hide_an_unknown_method():
    with pytest.raises(CollisionGuardError, match="unknown cleanup method 'kill-all'"):
        render_port_cleanup('dnsmasq.service', DNS, {'method': 'kill-all'})


def test_no_cleanup_plans_no_command_whatever_the_addresses():
    dropins, dummy, dummy_notes = plan_dropins(DNS, {'dnsmasq.service'}, {'method': 'none'})
    assert dropins['/etc/systemd/system/dnsmasq.service.d/port-cleanup.conf']['content'] is None


def test_restart_cases_know_every_restart_value():
    assert sorted(RESTART_CASES) == sorted(RESTART_VALUES)
    assert all(cases <= RESTART_CASES['always'] for cases in RESTART_CASES.values())


@pytest.mark.parametrize('wanted, own, value, kept', [
    ('', 'always', '', False),
    ('', '', '', False),
    ('on-failure', 'always', '', True),
    ('on-failure', 'no', 'on-failure', False),
    ('on-failure', '', 'on-failure', False),
    ('on-abnormal', 'on-abort', 'on-abnormal', False),
    ('on-abort', 'on-abnormal', '', True),
    ('on-failure', 'on-abnormal', 'on-failure', False),
    ('on-abnormal', 'on-failure', '', True),
    ('on-success', 'on-failure', '', True),
    ('on-failure', 'on-success', '', True),
    ('on-watchdog', 'on-abnormal', '', True),
    ('always', 'on-success', 'always', False),
    ('always', 'always', 'always', False),
    ('no', 'on-failure', '', True),
    ('no', 'no', 'no', False),
    ('on-failure', 'on-failure', 'on-failure', False),
    ('on-failure', 'sometimes', 'on-failure', False),
])
def test_restart_to_write_never_weakens_a_unit(wanted, own, value, kept):
    written, note = restart_to_write(wanted, own)
    assert written == value
    if kept:
        assert note == 'keeps its own Restart=%s: Restart=%s would not restart it after some exits that it does' % (
            own, wanted)
    else:
        assert note is None


def policy_of(dropins, unit):
    return dropins['/etc/systemd/system/%s.d/restart-policy.conf' % unit]['content']


def test_an_entrys_restart_wins_over_the_policys():
    registry = validate_registry([
        {'port': 8765, 'service': 'sms-webhook', 'restart': 'always'},
        {'port': 5514, 'service': 'sms-webhook', 'protocol': 'udp'},
        {'port': 8766, 'service': 'status-api'},
        {'port': 8767, 'service': 'quiet-api', 'restart': 'no'},
    ])
    present = {'sms-webhook.service', 'status-api.service', 'quiet-api.service'}
    dropins, dummy, notes = plan_dropins(registry, present, restart_policy=dict(POLICY, restart='on-failure'))
    assert '\nRestart=always\n' in policy_of(dropins, 'sms-webhook.service')
    assert '\nRestart=on-failure\n' in policy_of(dropins, 'status-api.service')
    assert '\nRestart=no\n' in policy_of(dropins, 'quiet-api.service')
    assert notes == {}

    dropins, dummy, notes = plan_dropins(registry, present, restart_policy=POLICY)
    assert '\nRestart=always\n' in policy_of(dropins, 'sms-webhook.service')
    assert 'Restart=' not in policy_of(dropins, 'status-api.service').replace('RestartSec=', '')


def test_a_units_own_restart_is_never_weakened_and_the_note_says_why():
    registry = validate_registry([
        {'port': 8765, 'service': 'sms-webhook'},
        {'port': 8766, 'service': 'status-api', 'restart': 'on-abnormal'},
        {'port': 8767, 'service': 'quiet-api'},
    ])
    present = {'sms-webhook.service', 'status-api.service', 'quiet-api.service'}
    dropins, dummy, notes = plan_dropins(
        registry, present, restart_policy=dict(POLICY, restart='on-failure'), systemd_version=254,
        own_restart={'sms-webhook.service': 'always', 'status-api.service': 'on-abort', 'quiet-api.service': ''})
    assert notes == {'sms-webhook.service': 'keeps its own Restart=always: Restart=on-failure would not restart it '
                                            'after some exits that it does'}
    kept = policy_of(dropins, 'sms-webhook.service')
    assert 'Restart=' not in kept.replace('RestartSec=', '').replace('RestartSteps=', '').replace('RestartMaxDelaySec=', '')
    assert kept.endswith('[Service]\nRestartSec=1s\nRestartSteps=5\nRestartMaxDelaySec=30s\n')
    assert '\nRestart=on-abnormal\n' in policy_of(dropins, 'status-api.service')
    assert '\nRestart=on-failure\n' in policy_of(dropins, 'quiet-api.service')


def test_entries_that_meet_on_one_unit_must_agree_on_its_restart():
    # An alias and the unit it names pass validation apart; on the host both are one unit.
    registry = [dict(entry, service='redis-server.service') for entry in validate_registry([
        {'port': 6379, 'service': 'redis', 'restart': 'always'},
        {'port': 6380, 'service': 'redis-server', 'restart': 'on-failure'},
    ])]
    with pytest.raises(CollisionGuardError, match=r'redis-server.service is given different restart values here '
                                                  r'\(always, on-failure\)'):
        plan_dropins(registry, {'redis-server.service'}, restart_policy=POLICY)
    agreeing = [dict(entry, restart='always') for entry in registry]
    dropins, dummy, dummy_notes = plan_dropins(agreeing, {'redis-server.service'}, restart_policy=POLICY)
    assert '\nRestart=always\n' in policy_of(dropins, 'redis-server.service')


def test_plan_with_sockets_gives_each_socket_unit_its_own_dropin():
    sockets = {'sms-webhook.service': ['sms-webhook.socket'], 'billing-worker.service': ['billing-worker.socket']}
    dropins, absent, notes = plan_dropins(REGISTRY, {'sms-webhook.service', 'status-api.service'},
                                          restart_policy=POLICY, systemd_version=252, sockets=sockets)
    assert sorted(dropins) == [
        '/etc/systemd/system/sms-webhook.service.d/port-cleanup.conf',
        '/etc/systemd/system/sms-webhook.service.d/private-tmp.conf',
        '/etc/systemd/system/sms-webhook.service.d/restart-policy.conf',
        '/etc/systemd/system/sms-webhook.socket.d/port-cleanup.conf',
        '/etc/systemd/system/status-api.service.d/port-cleanup.conf',
        '/etc/systemd/system/status-api.service.d/private-tmp.conf',
        '/etc/systemd/system/status-api.service.d/restart-policy.conf',
    ]
    assert dropins['/etc/systemd/system/sms-webhook.socket.d/port-cleanup.conf'] == {
        'unit': 'sms-webhook.socket', 'content': EXPECTED_SOCKET}
    assert dropins['/etc/systemd/system/sms-webhook.service.d/port-cleanup.conf']['content'] == EXPECTED_EVICT
    assert [entry['service'] for entry in absent] == ['billing-worker.service']
    assert notes == {}


# The guard script, run by a real /bin/sh the way systemd runs the Exec line.

def run_guard(tmp_path, body, exists=True, argv=('--grace-sec', '2', 'a\\x2db.service', '80/tcp'), journal=True):
    """The drop-in's command with a stand-in interpreter whose script is ``body``; (status, stdout, stderr)."""
    interpreter = tmp_path / 'python3'
    helper = tmp_path / 'collision-guard-evict'
    if exists:
        interpreter.write_text('#!/bin/sh\n' + body)
        os.chmod(str(interpreter), 0o755)
        helper.write_text('')
    command = guard_command('%s -I %s %s' % (interpreter, helper, ' '.join(systemd_word(arg) for arg in argv)))
    words = [word.replace('$$', '$') for word in shlex.split(command)]
    environment = {'PATH': '/usr/bin:/bin'}
    if journal:
        environment['JOURNAL_STREAM'] = '8:1'
    result = subprocess.run(words, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            env=environment, check=False, timeout=30)
    return result.returncode, result.stdout, result.stderr


def test_the_guard_runs_the_helper_with_its_arguments_intact(tmp_path):
    status, out, err = run_guard(tmp_path, 'for a; do echo "[$a]"; done\n')
    assert (status, err) == (0, '')
    assert out.splitlines() == ['[-I]', '[%s/collision-guard-evict]' % tmp_path, '[--grace-sec]', '[2]',
                                '[a\\x2db.service]', '[80/tcp]']


@pytest.mark.parametrize('code', [0, 1, 2, 3, 4])
def test_the_guard_passes_on_the_helpers_own_exit_codes(tmp_path, code):
    assert run_guard(tmp_path, 'echo refused >&2; exit %d\n' % code) == (code, '', 'refused\n')


@pytest.mark.parametrize('body, status', [('exit 5\n', 5), ('exit 120\n', 120), ('kill -KILL $$\n', 137)])
def test_any_other_exit_of_the_helper_lets_the_start_go_on_with_a_warning(tmp_path, body, status):
    code, out, err = run_guard(tmp_path, body)
    assert (code, out) == (0, '')
    # The shell may say "Killed" first.
    assert err.endswith('<4>collision-guard-evict: %s/collision-guard-evict failed with exit status %d; the start goes '
                        'on without freeing the port\n' % (tmp_path, status))


def test_a_missing_interpreter_or_helper_lets_the_start_go_on_with_a_warning(tmp_path):
    assert run_guard(tmp_path, '', exists=False) == (0, '', (
        '<4>collision-guard-evict: its interpreter %s/python3 is missing; the start goes on without freeing '
        'the port\n' % tmp_path))
    assert run_guard(tmp_path, '', exists=False, journal=False)[2].startswith('collision-guard-evict: its interpreter ')
    run_guard(tmp_path, 'exit 0\n')
    os.unlink(str(tmp_path / 'collision-guard-evict'))
    interpreter = tmp_path / 'python3'
    interpreter.write_text('#!/bin/sh\nexit 1\n')
    command = guard_command('%s -I %s 80/tcp' % (interpreter, tmp_path / 'collision-guard-evict'))
    words = [word.replace('$$', '$') for word in shlex.split(command)]
    result = subprocess.run(words, stderr=subprocess.PIPE, universal_newlines=True, env={'PATH': '/usr/bin:/bin'},
                            check=False, timeout=30)
    # Outside the journal, without the priority prefix.
    assert (result.returncode, result.stderr) == (0, 'collision-guard-evict: %s/collision-guard-evict is missing; '
                                                     'the start goes on without freeing the port\n' % tmp_path)


def test_the_guard_script_holds_nothing_systemd_would_rewrite():
    # "%" specifiers and "\\" escapes would be expanded, a "'" would end the word; "$" is doubled on rendering.
    assert not set(GUARD_SCRIPT) & set("%\\'\n")
    assert guard_command('x').count("'") == 2
    assert '$$' not in GUARD_SCRIPT and '$' not in guard_command('x').replace('$$', '')


# The files protocols: PID files on the helper's command line, and a private /tmp.

FILES_REGISTRY = validate_registry([
    {'port': 8783, 'service': 'cg-pidfile', 'pid_files': ['/run/cg-pidfile.pid', '/var/lib/cg/app.lock']},
    {'port': 8784, 'service': 'cg-pidfile', 'protocol': 'udp', 'pid_files': ['/run/cg-pidfile.pid']},
    {'port': 8781, 'service': 'cg-tmp-a', 'private_tmp': True},
])

EXPECTED_PID_FILES = """\
# Managed by qwf.collision_guard. Local edits are overwritten.
# Frees the registered ports of cg-pidfile.service, and clears its stale PID files, before every start.

[Service]
ExecStartPre=%s/usr/bin/python3 -I /usr/local/lib/collision-guard/collision-guard-evict \
--grace-sec 2 --timeout-sec 10 --pid-file /run/cg-pidfile.pid --pid-file /var/lib/cg/app.lock \
cg-pidfile.service 8783/tcp 8784/udp
""" % GUARD

EXPECTED_PRIVATE_TMP = """\
# Managed by qwf.collision_guard. Local edits are overwritten.
# Gives cg-tmp-a.service a /tmp and /var/tmp of its own, so its fixed paths there never meet another service's.

[Service]
PrivateTmp=yes
"""


def test_pid_files_reach_the_helper_of_the_service_only():
    assert render_port_cleanup('cg-pidfile.service', FILES_REGISTRY) == EXPECTED_PID_FILES
    # A socket unit starts before the service, whose own start clears the files.
    assert '--pid-file' not in render_port_cleanup('cg-pidfile.service', FILES_REGISTRY, socket='cg-pidfile.socket')


@pytest.mark.parametrize('method', ['fuser', 'none'])
def test_pid_files_need_the_evict_method(method):
    with pytest.raises(CollisionGuardError, match='cg-pidfile.service: pid_files are cleared by the eviction helper, '
                                                  'which the %s method does not run' % method):
        plan_dropins(FILES_REGISTRY, {'cg-pidfile.service'}, {'method': method}, None)


def test_private_tmp_gets_a_dropin_of_its_own():
    dropins, dummy_absent, dummy_notes = plan_dropins(FILES_REGISTRY, {'cg-tmp-a.service', 'cg-pidfile.service'})
    assert dropins['/etc/systemd/system/cg-tmp-a.service.d/private-tmp.conf'] == {
        'unit': 'cg-tmp-a.service', 'content': EXPECTED_PRIVATE_TMP}
    assert is_managed(EXPECTED_PRIVATE_TMP)
    # A unit that does not ask for one has its managed copy removed, if an earlier run left one.
    assert dropins['/etc/systemd/system/cg-pidfile.service.d/private-tmp.conf']['content'] is None
    assert '--pid-file' not in dropins['/etc/systemd/system/cg-tmp-a.service.d/port-cleanup.conf']['content']
