# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _prevention as prevention

VERSION_257 = ('systemd 257 (257.13-1~deb13u1)\n+PAM +AUDIT -GNUTLS +BPF_FRAMEWORK +BTF -XKBCOMMON\n')
VERSION_252 = ('systemd 252 (252.39-1~deb12u1)\n+PAM +AUDIT +SELINUX -BPF_FRAMEWORK -XKBCOMMON +UTMP\n')


def entry(port, protocol='tcp', address=None):
    return {'port': port, 'service': 'web.service', 'protocol': protocol, 'address': address}


@pytest.mark.parametrize('address, rule', [
    (None, 'tcp:8765'),
    ('0.0.0.0', 'tcp:8765'),
    ('127.0.0.1', 'tcp:8765'),        # a "::" squatter without V6ONLY takes it too
    ('::', 'tcp:8765'),
    ('::ffff:127.0.0.2', 'tcp:8765'),  # an IPv4 address written as IPv6
    ('::1', 'ipv6:tcp:8765'),
    ('fe80::1', 'ipv6:tcp:8765'),
])
def test_rule_of_narrows_only_specific_ipv6(address, rule):
    assert prevention.rule_of(entry(8765, address=address)) == rule


def test_deny_rules_are_unique_in_port_order_and_drop_redundant_ipv6():
    rules = prevention.deny_rules([entry(8766, 'udp'), entry(8765), entry(8765, address='::1'), entry(53, 'udp', '::1'),
                                   entry(8765)])
    assert rules == ['ipv6:udp:53', 'tcp:8765', 'udp:8766']


def test_parse_rule():
    assert prevention.parse_rule('tcp:8765') == ('ipv4', 'tcp', 8765)
    assert prevention.parse_rule('ipv6:udp:53') == ('ipv6', 'udp', 53)


def test_render_deny_dropin_by_unit_type():
    text = prevention.render_deny_dropin('user.slice', ['tcp:8765', 'udp:8766'])
    assert text.startswith('# Managed by qwf.collision_guard.')
    assert '[Slice]\nSocketBindDeny=tcp:8765\nSocketBindDeny=udp:8766\n' in text
    assert '[Service]\nSocketBindDeny=tcp:8765\n' in prevention.render_deny_dropin('cron.service', ['tcp:8765'])
    assert prevention.render_deny_dropin('user.slice', []) is None


def test_rules_in_honours_a_reset():
    assert prevention.rules_in('[Slice]\nSocketBindDeny=tcp:1\nSocketBindDeny=\nSocketBindDeny=udp:2\n') == ['udp:2']
    assert prevention.rules_in('') == []


@pytest.mark.parametrize('output, problem', [
    (VERSION_257, None),
    (VERSION_252, 'systemd 252 without BPF_FRAMEWORK'),
    ('systemd 247 (247.3)\n+PAM +BPF_FRAMEWORK\n', 'systemd 247 is older than 249, which brought SocketBindDeny='),
    ('', 'the systemd version is unknown'),
])
def test_support_problem(output, problem):
    assert prevention.support_problem(*prevention.parse_version(output)) == problem


def test_slice_ancestors():
    assert prevention.slice_ancestors('system-postgresql.slice') == ['system-postgresql.slice', 'system.slice', '-.slice']
    assert prevention.slice_ancestors('user.slice') == ['user.slice', '-.slice']
    assert prevention.slice_ancestors('-.slice') == ['-.slice']
    assert prevention.slice_ancestors('') == ['-.slice']


def test_prevent_in_problems_name_each_bad_value():
    assert prevention.prevent_in_problems(['user.slice', 'cron.service', 'agents-ai.slice']) == []
    problems = prevention.prevent_in_problems(['-.slice', 'foo', 'x;y.slice', 3, '-x.slice'])
    assert [problem.split(':')[0] for problem in problems] == [
        'collision_guard_prevent_in[0]="-.slice"', 'collision_guard_prevent_in[1]="foo"',
        'collision_guard_prevent_in[2]="x;y.slice"', 'collision_guard_prevent_in[3]=3',
        'collision_guard_prevent_in[4]="-x.slice"']
    assert 'root slice' in problems[0]
    assert prevention.prevent_in_problems('user.slice')[0].endswith('must be a list of slice or service unit names')


def test_refusals_name_the_registered_unit():
    registered = {
        'postgresql@15-main.service': {'names': ['postgresql@15-main.service'], 'slice': 'system-postgresql.slice'},
        'ssh.service': {'names': ['ssh.service', 'sshd.service'], 'slice': 'system.slice'},
    }
    assert prevention.refusals(['user.slice', 'cron.service'], registered) == []
    found = prevention.refusals(['system.slice', 'system-postgresql.slice', 'sshd.service'], registered)
    assert len(found) == 4
    assert found[0].startswith('system.slice holds the registered unit postgresql@15-main.service')
    assert found[1].startswith('system.slice holds the registered unit ssh.service')
    assert found[2].startswith('system-postgresql.slice holds the registered unit postgresql@15-main.service')
    assert found[3].startswith('sshd.service is a registered unit itself')


def test_probe_argv_in_a_slice_and_as_a_scratch_unit():
    argv = prevention.probe_argv('user.slice', 'ipv6:udp:53', python='/usr/bin/python3')
    assert '--slice=user.slice' in argv
    assert argv[-3:] == ['ipv6', 'udp', '53']
    assert '--property=DynamicUser=yes' in argv
    scratch = prevention.probe_argv('scratch', 'tcp:8765')
    assert '--property=SocketBindDeny=tcp:8765' in scratch
    assert not any(word.startswith('--slice=') for word in scratch)


@pytest.mark.parametrize('returncode, report, outcome', [
    (10, {'errno': 1, 'sec': 0.00003}, 'denied'),
    (11, {'errno': 0, 'sec': 0.00001}, 'allowed'),
    (11, {'errno': 98, 'sec': 0.00001}, 'allowed'),
])
def test_probe_outcome(returncode, report, outcome):
    result = prevention.probe_outcome('user.slice', 'tcp:8765', returncode, json.dumps(report) + '\n', 0.05)
    assert result['outcome'] == outcome
    assert result['errno'] == report['errno']


def test_probe_outcome_without_a_report_is_an_error():
    result = prevention.probe_outcome('user.slice', 'tcp:8765', 1, 'Failed to start transient service unit\n', 0.05)
    assert result['outcome'] == 'error'
    assert 'did not run' in result['detail']


def test_summary():
    assert prevention.summary('active') == 'active'
    assert prevention.summary('unavailable', 'systemd 252 without BPF_FRAMEWORK') == \
        'unavailable (systemd 252 without BPF_FRAMEWORK)'


def test_probe_code_binds_loopback_without_listening():
    # Where nothing denies it, the probe's own program binds and reports errno 0 (exit 11).
    import subprocess
    import sys
    result = subprocess.run([sys.executable, '-I', '-c', prevention.PROBE_CODE, 'ipv4', 'tcp', '0'],
                            stdout=subprocess.PIPE, universal_newlines=True, check=False)
    assert result.returncode == prevention.PROBE_ALLOWED
    assert prevention.probe_outcome('x.slice', 'tcp:0', result.returncode, result.stdout, 0.1)['detail'] == 'bind() succeeded'


def test_controller_check_names_bad_prevent_in():
    from ansible_collections.qwf.collision_guard.plugins.action.validate_registry import check_values
    entries, problems = check_values([{'port': 80, 'service': 'web'}], 'r', ['ssh.service'], prevent_in=['-.slice'])
    assert len(entries) == 1
    assert problems and problems[0].startswith('collision_guard_prevent_in[0]="-.slice"')
