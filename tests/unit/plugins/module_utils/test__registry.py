# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import (
    both_protocols_problems,
    ephemeral_port_warnings,
    parse_port_range,
    registry_warnings,
    validate_registry,
    well_known_port_warnings,
)

GOOD = [
    pytest.param([{'port': 8765, 'service': 'sms-webhook'}],
                 [{'port': 8765, 'service': 'sms-webhook.service', 'protocol': 'tcp', 'notes': ''}],
                 id='defaults'),
    pytest.param([{'port': '5514', 'service': 'syslog-relay.service', 'protocol': 'udp', 'notes': 'relay'}],
                 [{'port': 5514, 'service': 'syslog-relay.service', 'protocol': 'udp', 'notes': 'relay'}],
                 id='digit-string-port'),
    pytest.param([{'port': 1, 'service': 'getty@tty1'}, {'port': 65535, 'service': 'a:b_c-d.e\\x2d'}],
                 [{'port': 1, 'service': 'getty@tty1.service', 'protocol': 'tcp', 'notes': ''},
                  {'port': 65535, 'service': 'a:b_c-d.e\\x2d.service', 'protocol': 'tcp', 'notes': ''}],
                 id='bounds-instance-and-escapes'),
    pytest.param([{'port': 80, 'service': 'web'}, {'port': 80, 'service': 'web.service'}],
                 [{'port': 80, 'service': 'web.service', 'protocol': 'tcp', 'notes': ''}],
                 id='identical-duplicates-collapse'),
    pytest.param([{'port': 53, 'service': 'dns'}, {'port': 53, 'service': 'dns', 'protocol': 'udp'}],
                 [{'port': 53, 'service': 'dns.service', 'protocol': 'tcp', 'notes': ''},
                  {'port': 53, 'service': 'dns.service', 'protocol': 'udp', 'notes': ''}],
                 id='same-port-two-protocols'),
    pytest.param([{'port': 80, 'service': 'api.v2', 'notes': None}],
                 [{'port': 80, 'service': 'api.v2.service', 'protocol': 'tcp', 'notes': ''}],
                 id='dotted-name-gets-suffix'),
    pytest.param(None, [], id='none-is-empty'),
    pytest.param([], [], id='empty'),
]


@pytest.mark.parametrize('registry, expected', GOOD)
def test_valid_registries_normalise(registry, expected):
    assert validate_registry(registry) == expected


BAD = [
    pytest.param({'port': 0, 'service': 'a'}, "[0].port: 0 is out of range 1-65535", id='port-zero'),
    pytest.param({'port': 65536, 'service': 'a'}, "[0].port: 65536 is out of range", id='port-too-big'),
    pytest.param({'port': -1, 'service': 'a'}, "[0].port: -1 is out of range", id='port-negative'),
    pytest.param({'port': 'http', 'service': 'a'}, "[0].port: 'http' is not an integer", id='port-word'),
    pytest.param({'port': 80.5, 'service': 'a'}, "[0].port: 80.5 is not an integer", id='port-float'),
    pytest.param({'port': True, 'service': 'a'}, "[0].port: True is not an integer", id='port-bool'),
    pytest.param({'port': ' 80', 'service': 'a'}, "[0].port: ' 80' is not an integer", id='port-padded'),
    pytest.param({'service': 'a'}, "[0].port: missing", id='port-missing'),
    pytest.param({'port': 80}, "[0].service: missing", id='service-missing'),
    pytest.param({'port': 80, 'service': ''}, "[0].service: '' is empty", id='service-empty'),
    pytest.param({'port': 80, 'service': 'two words'}, "[0].service: 'two words' contains characters", id='space'),
    pytest.param({'port': 80, 'service': 'a;reboot'}, "[0].service: 'a;reboot' contains characters", id='semicolon'),
    pytest.param({'port': 80, 'service': 'a/b'}, "[0].service: 'a/b' contains characters", id='slash'),
    pytest.param({'port': 80, 'service': 'a..b'}, "[0].service: 'a..b' contains \"..\"", id='dotdot'),
    pytest.param({'port': 80, 'service': 'a\nb'}, "[0].service: 'a\\nb' contains characters", id='newline'),
    pytest.param({'port': 80, 'service': 'x' * 250}, "is longer than 255 characters", id='too-long'),
    pytest.param({'port': 80, 'service': 'web.socket'}, "[0].service: 'web.socket' is not a .service unit", id='socket'),
    pytest.param({'port': 80, 'service': 'getty@'}, "is a template", id='template'),
    pytest.param({'port': 80, 'service': 'a@b@c'}, "contains characters", id='two-ats'),
    pytest.param({'port': 80, 'service': '.hidden'}, "starts with \".\"", id='leading-dot'),
    pytest.param({'port': 80, 'service': '-x'}, "starts with \"-\"", id='leading-dash'),
    pytest.param({'port': 80, 'service': 8080}, "[0].service: 8080 is not a string", id='service-int'),
    pytest.param({'port': 80, 'service': 'a', 'protocol': 'sctp'}, "[0].protocol: 'sctp' is not one of tcp, udp", id='sctp'),
    pytest.param({'port': 80, 'service': 'a', 'protocol': 'TCP'}, "[0].protocol: 'TCP' is not one of", id='upper-case'),
    pytest.param({'port': 80, 'service': 'a', 'notes': ['x']}, "[0].notes: ['x'] is not a string", id='notes-list'),
    pytest.param({'port': 80, 'service': 'a', 'proto': 'udp'}, "[0]: unknown key 'proto'", id='typo-key'),
    pytest.param('8765:sms', "[0]: '8765:sms' is not a mapping", id='not-a-mapping'),
]


@pytest.mark.parametrize('entry, problem', BAD)
def test_bad_entry_is_named(entry, problem):
    with pytest.raises(CollisionGuardError) as caught:
        validate_registry([entry])
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith('collision_guard_registry[0]')
    assert problem in caught.value.problems[0]


def test_every_bad_entry_is_listed_in_one_error():
    registry = [
        {'port': 8765, 'service': 'sms-webhook'},
        {'port': 70000, 'service': 'big'},
        {'port': 8766, 'service': 'bad name'},
        {'port': 8767, 'service': 'x', 'protocol': 'icmp'},
        {'port': 8765, 'service': 'other'},
    ]
    with pytest.raises(CollisionGuardError) as caught:
        validate_registry(registry, where='group_vars/all collision_guard_registry')
    problems = caught.value.problems
    assert [problem.split(':')[0] for problem in problems] == [
        'group_vars/all collision_guard_registry[1].port',
        'group_vars/all collision_guard_registry[2].service',
        'group_vars/all collision_guard_registry[3].protocol',
        'group_vars/all collision_guard_registry[4]',
    ]
    assert 'already registered to sms-webhook.service at group_vars/all collision_guard_registry[0]' in problems[3]
    assert 'other.service' in problems[3]
    message = caught.value.full_message()
    assert message.startswith('group_vars/all collision_guard_registry has 4 bad value(s); no host was changed')
    assert message.count('\n  - ') == 4


def test_entry_with_several_problems_reports_each():
    with pytest.raises(CollisionGuardError) as caught:
        validate_registry([{'port': 0, 'service': 'a b', 'protocol': 'x'}])
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize('registry', [{'port': 1}, 'text', 42])
def test_registry_must_be_a_list(registry):
    with pytest.raises(CollisionGuardError, match='must be a list'):
        validate_registry(registry)


def test_registry_warnings_name_well_known_and_ephemeral_ports():
    registry = validate_registry([
        {'port': 80, 'service': 'web'},
        {'port': 40000, 'service': 'api'},
        {'port': 8765, 'service': 'sms-webhook'},
    ], where='r')
    warnings = registry_warnings(registry)
    assert warnings == [
        '80/tcp (web.service) is a well-known system port; make sure no system service of the hosts needs it',
        "40000/tcp (api.service) is in the ephemeral range 32768-60999: unless it is reserved "
        "(net.ipv4.ip_local_reserved_ports, which harden sets by default), the kernel may hand it out as the source "
        "port of an outgoing connection, which blocks the service's bind",
    ]
    assert registry_warnings(registry, (10000, 20000)) == warnings[:1]
    assert well_known_port_warnings(registry) == warnings[:1]
    assert ephemeral_port_warnings(registry) == warnings[1:]
    assert ephemeral_port_warnings(registry, (10000, 20000)) == []


def test_registry_warnings_follow_the_registry_order_and_each_entrys_well_known_warning_comes_first():
    api, web = validate_registry([{'port': 40000, 'service': 'api'}, {'port': 80, 'service': 'web'}], where='r')
    assert registry_warnings([api, web]) == ephemeral_port_warnings([api]) + well_known_port_warnings([web])
    assert registry_warnings([api, web], (1, 1023)) == (
        well_known_port_warnings([web]) + ephemeral_port_warnings([web], (1, 1023)))


def test_both_protocols_is_an_error_only_when_asked():
    registry = validate_registry([
        {'port': 53, 'service': 'dns'}, {'port': 53, 'service': 'dns', 'protocol': 'udp'},
        {'port': 8765, 'service': 'sms-webhook'},
    ], where='r')
    assert both_protocols_problems(registry, 'r') == ['r: dns.service is registered for 53 under both tcp and udp']


@pytest.mark.parametrize('text, expected', [('32768\t60999\n', (32768, 60999)), ('1024 65000', (1024, 65000)),
                                            ('', (32768, 60999)), ('x y', (32768, 60999))])
def test_parse_port_range(text, expected):
    assert parse_port_range(text) == expected
