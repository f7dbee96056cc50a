# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import (
    DEFAULT_NEVER_EVICT,
    RESTART_VALUES,
    both_protocols_problems,
    entry_label,
    ephemeral_port_warnings,
    load_registry,
    load_registry_document,
    never_evict_problems,
    free_text_problem,
    parse_port_range,
    port_problem,
    printable,
    registry_warnings,
    shown,
    unit_settings,
    validate_registry,
    without_default_settings,
    well_known_port_warnings,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import unit_name_problem


def normalised(port, service, protocol='tcp', notes='', address=None, restart='', evict_holders=None,
               private_tmp=False, pid_files=None):
    """An entry as validate_registry returns it: every key always there."""
    return {'port': port, 'service': service, 'protocol': protocol, 'address': address, 'restart': restart,
            'evict_holders': evict_holders or [], 'private_tmp': private_tmp, 'pid_files': pid_files or [],
            'notes': notes}


GOOD = [
    pytest.param([{'port': 8765, 'service': 'sms-webhook'}],
                 [normalised(8765, 'sms-webhook.service')],
                 id='defaults'),
    pytest.param([{'port': '5514', 'service': 'syslog-relay.service', 'protocol': 'udp', 'notes': 'relay'}],
                 [normalised(5514, 'syslog-relay.service', 'udp', 'relay')],
                 id='digit-string-port'),
    pytest.param([{'port': 1, 'service': 'getty@tty1'}, {'port': 65535, 'service': 'a:b_c-d.e\\x2d'}],
                 [normalised(1, 'getty@tty1.service'), normalised(65535, 'a:b_c-d.e\\x2d.service')],
                 id='bounds-instance-and-escapes'),
    pytest.param([{'port': 80, 'service': 'web'}, {'port': 80, 'service': 'web.service'}],
                 [normalised(80, 'web.service')],
                 id='identical-duplicates-collapse'),
    pytest.param([{'port': 53, 'service': 'dns'}, {'port': 53, 'service': 'dns', 'protocol': 'udp'}],
                 [normalised(53, 'dns.service'), normalised(53, 'dns.service', 'udp')],
                 id='same-port-two-protocols'),
    pytest.param([{'port': 80, 'service': 'api.v2', 'notes': None}],
                 [normalised(80, 'api.v2.service')],
                 id='dotted-name-gets-suffix'),
    pytest.param([{'port': 80, 'service': 'web', 'address': None, 'restart': None, 'evict_holders': None}],
                 [normalised(80, 'web.service')],
                 id='optional-keys-null'),
    pytest.param([{'port': 5432, 'service': 'postgresql@*-main', 'address': '127.0.0.1', 'restart': 'on-failure',
                   'evict_holders': ['pgbouncer', 'old-pg.socket']}],
                 [normalised(5432, 'postgresql@*-main.service', address='127.0.0.1', restart='on-failure',
                             evict_holders=['pgbouncer.service', 'old-pg.socket'])],
                 id='every-key'),
    pytest.param([{'port': 8781, 'service': 'report-api', 'private_tmp': True, 'pid_files': ['/run/report.pid', '/run/report.pid']},
                  {'port': 8782, 'service': 'report-api', 'private_tmp': None, 'pid_files': None}],
                 [normalised(8781, 'report-api.service', private_tmp=True, pid_files=['/run/report.pid']),
                  normalised(8782, 'report-api.service')],
                 id='unit-settings'),
    pytest.param([{'port': 8781, 'service': 'a', 'pid_files': ['/run/a.pid']},
                  {'port': 8781, 'service': 'a', 'private_tmp': True, 'pid_files': ['/var/lib/a/lock', '/run/a.pid']}],
                 [normalised(8781, 'a.service', private_tmp=True, pid_files=['/run/a.pid', '/var/lib/a/lock'])],
                 id='duplicates-merge-unit-settings'),
    pytest.param(None, [], id='none-is-empty'),
    pytest.param([], [], id='empty'),
]


@pytest.mark.parametrize('registry, expected', GOOD)
def test_valid_registries_normalise(registry, expected):
    assert validate_registry(registry) == expected


BAD = [
    pytest.param({'port': 1, 'service': 'a', 'private_tmp': 'yes'}, "[0].private_tmp: 'yes' is not true or false",
                 id='private-tmp-string'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': '/run/a.pid'}, "[0].pid_files: '/run/a.pid' is not a list",
                 id='pid-files-string'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': ['run/a.pid']}, "[0].pid_files: ['run/a.pid'] holds 'run/a.pid', "
                 "which is not an absolute path", id='pid-file-relative'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': ['/run/a b.pid']}, "holds '/run/a b.pid', which is not an absolute",
                 id='pid-file-space'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': ['/run/a.pid\nExecStartPre=/bin/evil']}, "which is not an absolute",
                 id='pid-file-newline'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': ['/run/%n.pid']}, "which is not an absolute", id='pid-file-specifier'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': ['/run/../etc/shadow']}, 'has a "." or ".." component',
                 id='pid-file-dotdot'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': ['/proc/1/stat']}, 'is in a pseudo file system', id='pid-file-proc'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': ['/run/a.pid/']}, 'which is not an absolute', id='pid-file-slash'),
    pytest.param({'port': 1, 'service': 'a', 'pid_files': [7]}, "holds 7, which is not a string", id='pid-file-int'),
    pytest.param({'port': 0, 'service': 'a'}, "[0].port: 0 is out of range 1-65535", id='port-zero'),
    pytest.param({'port': 65536, 'service': 'a'}, "[0].port: 65536 is out of range", id='port-too-big'),
    pytest.param({'port': -1, 'service': 'a'}, "[0].port: -1 is out of range", id='port-negative'),
    pytest.param({'port': 'http', 'service': 'a'}, "[0].port: 'http' is not an integer", id='port-word'),
    pytest.param({'port': 80.5, 'service': 'a'}, "[0].port: 80.5 is not an integer", id='port-float'),
    pytest.param({'port': True, 'service': 'a'}, "[0].port: True is not an integer", id='port-bool'),
    pytest.param({'port': ' 80', 'service': 'a'}, "[0].port: ' 80' is not an integer", id='port-padded'),
    pytest.param({'port': '80\n', 'service': 'a'}, "[0].port: '80\\n' is not an integer", id='port-newline'),
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


def problems_of(registry, where='collision_guard_registry'):
    with pytest.raises(CollisionGuardError) as caught:
        validate_registry(registry, where=where)
    assert caught.value.full_message().startswith('%s has %d bad value(s); no host was changed' % (
        where, len(caught.value.problems)))
    return caught.value.problems


def test_port_problem_returns_the_port_or_why_not():
    assert port_problem(8765) == (8765, None)
    assert port_problem('0080') == (80, None)
    assert port_problem(False) == (None, 'is not an integer in 1-65535')


@pytest.mark.parametrize('value, expected', [
    ('9' * 5000, (None, 'is out of range 1-65535')),
    ('0' * 5000 + '80', (80, None)),
    ('0' * 5000, (None, 'is out of range 1-65535')),
    ('065535', (65535, None)),
    ('65536', (None, 'is out of range 1-65535')),
    ('100000', (None, 'is out of range 1-65535')),
    (10 ** 5000, (None, 'is out of range 1-65535')),
    (-10 ** 5000, (None, 'is out of range 1-65535')),
    (True, (None, 'is not an integer in 1-65535')),
    ('\u0663', (None, 'is not an integer in 1-65535')),
    (80.0, (None, 'is not an integer in 1-65535')),
], ids=['5000-nines', 'leading-zeros', 'zeros', 'zero-padded-max', 'max-plus-one', 'six-digits', 'huge-int',
        'huge-negative', 'bool', 'arabic-digit', 'float'])
def test_port_problem_never_raises(value, expected):
    assert port_problem(value) == expected


def test_a_5000_digit_port_is_reported_with_every_other_bad_entry():
    problems = problems_of([
        {'port': '1' * 5000, 'service': 'a'},
        {'port': 10 ** 5000, 'service': 'b', 'notes': 10 ** 5000},
        {'port': 80, 'service': 'bad name'},
        {'port': 81, 'service': 'c', 10 ** 5000: 1},
    ])
    assert problems == [
        "collision_guard_registry[0].port: '%s... (5002 characters) is out of range 1-65535" % ('1' * 299),
        'collision_guard_registry[1].port: an integer of about 5001 digits is out of range 1-65535',
        'collision_guard_registry[1].notes: an integer of about 5001 digits is not a string',
        "collision_guard_registry[2].service: 'bad name' contains characters systemd does not allow in unit names "
        '(allowed: letters, digits, ":", "-", "_", ".", "\\", one "@" and the globs "*" and "?")',
        'collision_guard_registry[3]: unknown key an integer of about 5001 digits (known keys: port, service, protocol, '
        'address, restart, evict_holders, private_tmp, pid_files, notes)',
    ]


def test_shown_is_bounded_and_never_raises():
    assert shown('web') == "'web'"
    assert shown(70000) == '70000'
    assert shown(10 ** 5000) == 'an integer of about 5001 digits'
    assert shown([10 ** 4400]).startswith('a list that cannot be shown') or shown([10 ** 4400]).endswith('characters)')
    assert shown('x' * 1000) == "'%s... (1002 characters)" % ('x' * 299)
    deep = []
    for dummy in range(100000):
        deep = [deep]
    assert shown(deep) == 'a list that cannot be shown'
    assert shown('a\x1bb\rc') == "'a\\x1bb\\rc'"


# Free text: (notes, the first character refused, as the message writes it).
UNSAFE_NOTES = [
    ('Twilio\rinbound', '\r', '\\r'),
    ('\x1b[31mred\x1b[0m', '\x1b', '\\x1b'),
    ('a\x00b', '\x00', '\\x00'),
    ('bell\x07', '\x07', '\\x07'),
    ('del\x7f', '\x7f', '\\x7f'),
    ('c1\x9b31m', '\x9b', '\\x9b'),
    ('next line\x85', '\x85', '\\x85'),
    ('vt\x0b', '\x0b', '\\x0b'),
    ('ff\x0c', '\x0c', '\\x0c'),
    ('line\u2028separator', '\u2028', '\\u2028'),
    ('para\u2029separator', '\u2029', '\\u2029'),
    ('evil\u202egnp.exe', '\u202e', '\\u202e'),
    ('isolate\u2066x\u2069', '\u2066', '\\u2066'),
    ('mark\u200f', '\u200f', '\\u200f'),
    ('surrogate\ud800', '\ud800', '\\ud800'),
]


@pytest.mark.parametrize('notes, char, written', UNSAFE_NOTES, ids=[item[2] for item in UNSAFE_NOTES])
def test_control_characters_in_notes_are_refused_naming_the_entry_and_value(notes, char, written):
    problems = problems_of([{'port': 80, 'service': 'web'}, {'port': 81, 'service': 'api', 'notes': notes}])
    assert problems == ['collision_guard_registry[1].notes: %r holds the control character %s at offset %d; free text '
                        'reaches PORTS.md and the registry docs, so it may hold printable characters, tabs and '
                        'newlines only' % (notes, written, notes.index(char))]


@pytest.mark.parametrize('notes', ['Twilio inbound', 'tab\there', 'folded\n', 'two\nlines', 'caf\u00e9 \u2603 \U0001f600',
                                   'zero\u200bwidth', 'a | b', '<!-- END -->', ''],
                         ids=['plain', 'tab', 'trailing-newline', 'newline', 'unicode', 'zero-width', 'pipe', 'marker',
                              'empty'])
def test_printable_notes_are_kept_as_written(notes):
    assert validate_registry([{'port': 80, 'service': 'web', 'notes': notes}])[0]['notes'] == notes
    assert free_text_problem(notes) is None
    assert printable(notes) == notes


def test_printable_escapes_what_free_text_may_not_hold():
    assert printable('a\rb\x1b[0m\u2028\u202e\ud800\x85') == 'a\\rb\\x1b[0m\\u2028\\u202e\\ud800\\x85'


# systemd reads "foo.SERVICE" as a name without a type: systemctl makes it foo.SERVICE.service.
@pytest.mark.parametrize('key, value, where', [
    ('service', 'foo.SERVICE', 'service'),
    ('service', 'web-*.Service', 'service'),
    ('evict_holders', ['old.Socket'], 'evict_holders'),
], ids=['service', 'glob', 'evict-holders'])
def test_a_unit_type_in_another_case_is_refused(key, value, where):
    entry = {'port': 80, 'service': 'web'}
    entry[key] = value
    problems = problems_of([entry])
    assert len(problems) == 1
    assert problems[0].startswith('collision_guard_registry[0].%s: ' % where)
    assert "systemd's unit types are lowercase" in problems[0]


def test_a_unit_named_with_its_case_in_full_is_accepted():
    entry, = validate_registry([{'port': 80, 'service': 'foo.SERVICE.service', 'evict_holders': ['old.Socket.socket']}])
    assert (entry['service'], entry['evict_holders']) == ('foo.SERVICE.service', ['old.Socket.socket'])


def test_a_registered_service_name_leaves_room_for_its_drop_in_directory():
    assert validate_registry([{'port': 80, 'service': 'x' * 245}])[0]['service'] == 'x' * 245 + '.service'
    problems = problems_of([{'port': 80, 'service': 'x' * 246}])
    assert problems == ["collision_guard_registry[0].service: '%s' is longer than 253 characters: its drop-in "
                        'directory, %s.service.d, would be longer than the longest file name, 255' % ('x' * 246, 'x' * 246)]
    # A holder gets no drop-in: systemd's own limit holds.
    assert validate_registry([{'port': 80, 'service': 'a', 'evict_holders': ['x' * 247]}])[0]['evict_holders'] == [
        'x' * 247 + '.service']


# Addresses: each valid spelling and the canonical text it becomes.
GOOD_ADDRESSES = [
    ('127.0.0.2', '127.0.0.2'),
    ('0.0.0.0', '0.0.0.0'),
    ('2001:db8::1', '2001:db8::1'),
    ('2001:DB8:0:0:0:0:0:1', '2001:db8::1'),
    ('::', '::'),
    ('[::1]', '::1'),
    ('::0001', '::1'),
    ('::ffff:127.0.0.2', '::ffff:127.0.0.2'),
    ('::ffff:7f00:2', '::ffff:127.0.0.2'),
]


@pytest.mark.parametrize('address, canonical', GOOD_ADDRESSES, ids=[item[0] for item in GOOD_ADDRESSES])
def test_addresses_are_canonicalised(address, canonical):
    entry, = validate_registry([{'port': 53, 'service': 'dns', 'address': address}])
    assert entry['address'] == canonical
    # Normalised input passes unchanged: the hosts validate the registry.json the role wrote.
    assert validate_registry([entry]) == [entry]


BAD_ADDRESSES = ['localhost', '1.2.3.4.5', '::1%eth0', ' 1.2.3.4', 42, '', '1.2.3.4 ', '[1.2.3.4]', '[::1', '::1]',
                 '127.0.0.1/32', '127.0.0.1:53', '1.2.3.4\n', True, ['127.0.0.1'], 'fe80::1%2']


def test_every_bad_address_is_named_with_its_index_and_value():
    registry = [{'port': 53, 'service': 'dns', 'address': '127.0.0.53'}]
    registry += [{'port': 1000 + index, 'service': 'svc%d' % index, 'address': address}
                 for index, address in enumerate(BAD_ADDRESSES)]
    assert problems_of(registry) == [
        'collision_guard_registry[%d].address: %r is not an IPv4 or IPv6 address' % (index + 1, address)
        for index, address in enumerate(BAD_ADDRESSES)]


@pytest.mark.parametrize('address', BAD_ADDRESSES, ids=[repr(item) for item in BAD_ADDRESSES])
def test_a_bad_address_is_refused_alone(address):
    assert problems_of([{'port': 53, 'service': 'dns', 'address': address}]) == [
        'collision_guard_registry[0].address: %r is not an IPv4 or IPv6 address' % (address,)]


# Globs: (service as written, normalised unit, or None and the problem).
GLOBS = [
    ('postgresql@*-main', 'postgresql@*-main.service', None),
    ('postgresql@1?-main.service', 'postgresql@1?-main.service', None),
    ('web-*', 'web-*.service', None),
    ('getty@*', 'getty@*.service', None),
    # unit_name_problem allows "*.service" (a never-evict glob may spare everything), but a registered port
    # belongs to one unit, and "*" fits every service of a host.
    ('*', None, 'is a glob of nothing but "*" and "?"'),
    ('*.service', None, 'is a glob of nothing but "*" and "?"'),
    ('?*', None, 'is a glob of nothing but "*" and "?"'),
    ('foo;*', None, 'contains characters systemd does not allow'),
    ('foo[12]', None, 'contains characters systemd does not allow'),
    ('foo@', None, 'is a template'),
    ('foo@.service', None, 'is a template'),
    ('web*.socket', None, 'is not a .service unit'),
    ('-*', None, 'starts with "-"'),
    ('a@*@b', None, 'contains characters systemd does not allow'),
]


@pytest.mark.parametrize('service, unit, problem', GLOBS, ids=[item[0] for item in GLOBS])
def test_service_globs(service, unit, problem):
    if unit:
        assert validate_registry([{'port': 5432, 'service': service}])[0]['service'] == unit
    else:
        problems = problems_of([{'port': 5432, 'service': service}])
        assert len(problems) == 1
        assert problems[0].startswith('collision_guard_registry[0].service: %r ' % service)
        assert problem in problems[0]


def test_a_lone_star_is_a_glob_unit_names_allow_but_the_registry_refuses():
    assert unit_name_problem('*.service', glob=True) is None
    assert unit_name_problem('*.service') == 'contains a glob character ("*" or "?"), which is not allowed here'


@pytest.mark.parametrize('value', list(RESTART_VALUES) + ['', None])
def test_restart_values(value):
    assert validate_registry([{'port': 80, 'service': 'web', 'restart': value}])[0]['restart'] == (value or '')


@pytest.mark.parametrize('value, problem', [
    ('sometimes', "[0].restart: 'sometimes' is not one of no, on-success, on-failure, on-abnormal, on-watchdog, "
                  "on-abort, always"),
    ('Always', "[0].restart: 'Always' is not one of"),
    (' always', "[0].restart: ' always' is not one of"),
    (False, '[0].restart: False is not one of no, on-success, on-failure, on-abnormal, on-watchdog, on-abort, '
            'always (quote "no" in YAML)'),
    (True, '[0].restart: True is not one of'),
    (1, '[0].restart: 1 is not one of'),
    (['always'], "[0].restart: ['always'] is not one of"),
], ids=['word', 'case', 'padded', 'yaml-no', 'yaml-yes', 'int', 'list'])
def test_bad_restart_is_named(value, problem):
    problems = problems_of([{'port': 80, 'service': 'web', 'restart': value}])
    assert len(problems) == 1
    assert problems[0].startswith('collision_guard_registry' + problem)


@pytest.mark.parametrize('registry, services', [
    ([{'port': 80, 'service': 'web', 'restart': 'always'}, {'port': 443, 'service': 'web.service', 'restart': 'no'}],
     'web.service is given different restart values (always, no)'),
    # A duplicate that collapses still counts.
    ([{'port': 80, 'service': 'web', 'restart': 'always'}, {'port': 80, 'service': 'web', 'restart': 'on-failure'}],
     'web.service is given different restart values (always, on-failure)'),
], ids=['two-ports', 'collapsed-duplicate'])
def test_one_service_has_one_restart(registry, services):
    assert problems_of(registry) == ['collision_guard_registry: %s; a unit has one Restart=' % services]


def test_entries_without_restart_agree_with_any_and_other_services_are_independent():
    entries = validate_registry([
        {'port': 80, 'service': 'web', 'restart': 'always'}, {'port': 443, 'service': 'web'},
        {'port': 8080, 'service': 'api', 'restart': 'no'},
    ])
    assert [entry['restart'] for entry in entries] == ['always', '', 'no']


@pytest.mark.parametrize('value, expected', [
    (None, []),
    ([], []),
    (['pgbouncer'], ['pgbouncer.service']),
    (['pgbouncer', 'pgbouncer.service', 'old-pg.socket', 'a@1'], ['pgbouncer.service', 'old-pg.socket', 'a@1.service']),
    (['session-3.scope'], ['session-3.scope']),
], ids=['none', 'empty', 'suffix', 'dedup-and-types', 'scope'])
def test_evict_holders_are_normalised(value, expected):
    assert validate_registry([{'port': 80, 'service': 'web', 'evict_holders': value}])[0]['evict_holders'] == expected


@pytest.mark.parametrize('value, problem', [
    ('pgbouncer', "[0].evict_holders: 'pgbouncer' is not a list of unit names"),
    ({'unit': 'pgbouncer'}, "[0].evict_holders: {'unit': 'pgbouncer'} is not a list of unit names"),
    (['ok', 'bad name'], "[0].evict_holders: ['ok', 'bad name'] holds 'bad name', which contains characters"),
    (['a;reboot'], "holds 'a;reboot', which contains characters"),
    (['pg*'], "holds 'pg*', which contains a glob character"),
    (['foo@'], "holds 'foo@', which is a template"),
    ([42], "[0].evict_holders: [42] holds 42, which is not a unit name"),
    ([None], "holds None, which is not a unit name"),
    (['-x'], "holds '-x', which starts with \"-\""),
], ids=['string', 'mapping', 'space', 'semicolon', 'glob', 'template', 'int', 'none', 'leading-dash'])
def test_bad_evict_holders_are_named(value, problem):
    problems = problems_of([{'port': 80, 'service': 'web', 'evict_holders': value}])
    assert len(problems) == 1
    assert problems[0].startswith('collision_guard_registry') and problem in problems[0]


# One port and protocol, two services: (first address, second address, allowed).
SHARED_PORT = [
    ('127.0.0.2', '127.0.0.53', True),
    ('::1', '127.0.0.1', True),
    ('0.0.0.0', '::1', True),
    ('::1', '::2', True),
    ('0.0.0.0', '127.0.0.1', False),
    ('127.0.0.1', '0.0.0.0', False),
    ('::', '127.0.0.1', False),
    ('::', '::1', False),
    ('127.0.0.1', '127.0.0.1', False),
    ('::1', '::0001', False),
    ('::ffff:127.0.0.2', '127.0.0.2', False),
    (None, '127.0.0.1', False),
    ('::1', None, False),
    (None, None, False),
]


@pytest.mark.parametrize('first, second, allowed', SHARED_PORT, ids=['%s-%s' % item[:2] for item in SHARED_PORT])
def test_two_services_on_one_port_only_on_separate_addresses(first, second, allowed):
    registry = [{'port': 53, 'service': 'dnsmasq', 'protocol': 'udp', 'address': first},
                {'port': 53, 'service': 'systemd-resolved', 'protocol': 'udp', 'address': second}]
    if allowed:
        assert [entry['service'] for entry in validate_registry(registry)] == [
            'dnsmasq.service', 'systemd-resolved.service']
    else:
        second_label = entry_label({'port': 53, 'protocol': 'udp', 'address': validate_registry(registry[1:])[0]['address']})
        assert problems_of(registry) == [
            'collision_guard_registry[1]: %s is already registered to dnsmasq.service at collision_guard_registry[0]; '
            'it cannot also belong to systemd-resolved.service' % second_label]


def test_the_other_protocol_never_collides():
    registry = validate_registry([{'port': 53, 'service': 'a', 'protocol': 'udp'}, {'port': 53, 'service': 'b'}])
    assert [(entry['service'], entry['protocol']) for entry in registry] == [('a.service', 'udp'), ('b.service', 'tcp')]


def test_the_conflict_names_the_first_entry_that_collides():
    problems = problems_of([
        {'port': 53, 'service': 'resolved', 'address': '127.0.0.53'},
        {'port': 53, 'service': 'dnsmasq', 'address': '127.0.0.2'},
        {'port': 53, 'service': 'unbound'},
    ])
    assert problems == ['collision_guard_registry[2]: 53/tcp is already registered to resolved.service at '
                        'collision_guard_registry[0]; it cannot also belong to unbound.service']


def test_identical_entries_collapse_and_keep_what_each_allows():
    registry = [
        {'port': 53, 'service': 'dnsmasq', 'address': '::0001', 'evict_holders': ['a']},
        {'port': 53, 'service': 'dnsmasq.service', 'address': '[::1]', 'evict_holders': ['b', 'a'], 'notes': 'dns',
         'restart': 'always'},
        {'port': 53, 'service': 'dnsmasq', 'address': '127.0.0.1'},
        {'port': 53, 'service': 'dnsmasq'},
    ]
    before = copy.deepcopy(registry)
    entries = validate_registry(registry)
    assert registry == before
    assert entries == [
        normalised(53, 'dnsmasq.service', address='::1', evict_holders=['a.service', 'b.service'], notes='dns',
                   restart='always'),
        normalised(53, 'dnsmasq.service', address='127.0.0.1'),
        normalised(53, 'dnsmasq.service'),
    ]
    # The result validates to itself.
    assert validate_registry(entries) == entries


def test_entry_labels():
    assert [entry_label(entry) for entry in validate_registry([
        {'port': 53, 'service': 'a', 'protocol': 'udp', 'address': '127.0.0.2'},
        {'port': 53, 'service': 'b', 'protocol': 'udp', 'address': '::1'},
        {'port': 8765, 'service': 'c'},
    ])] == ['127.0.0.2:53/udp', '[::1]:53/udp', '8765/tcp']


def test_the_default_never_evict_list_is_valid():
    assert never_evict_problems(list(DEFAULT_NEVER_EVICT)) == []


@pytest.mark.parametrize('patterns, problems', [
    (['sshd.service', 'systemd-*', 'user@*.service', 'init.scope', '*', 'ssh*'], []),
    ('sshd.service', ["collision_guard_never_evict: 'sshd.service' is not a list of unit names or globs"]),
    (None, ['collision_guard_never_evict: None is not a list of unit names or globs']),
    (['sshd.service', 'bad name', 42, 'foo@.service', 'sshd.service\n', 'sshd', 'a;*'], [
        "collision_guard_never_evict[1]: 'bad name' contains characters",
        'collision_guard_never_evict[2]: 42 is not a string',
        "collision_guard_never_evict[3]: 'foo@.service' is a template",
        "collision_guard_never_evict[4]: 'sshd.service\\n' contains characters",
        "collision_guard_never_evict[5]: 'sshd' is not a .service or .socket",
        "collision_guard_never_evict[6]: 'a;*' contains characters",
    ]),
], ids=['good', 'string', 'none', 'each-bad-one'])
def test_never_evict_problems(patterns, problems):
    found = never_evict_problems(patterns)
    assert len(found) == len(problems)
    for line, start in zip(found, problems):
        assert line.startswith(start)


def test_never_evict_problems_name_where_they_come_from():
    assert never_evict_problems(['x y'], where='never_evict')[0].startswith("never_evict[0]: 'x y'")


def write_document(tmp_path, document):
    path = tmp_path / 'registry.json'
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def test_load_registry_document_with_never_evict(tmp_path):
    registry = validate_registry([{'port': 53, 'service': 'dnsmasq', 'protocol': 'udp', 'address': '127.0.0.2',
                                   'evict_holders': ['old-dns'], 'restart': 'always'}])
    path = write_document(tmp_path, {'managed_by': 'x', 'registry': registry, 'never_evict': ['sshd.service']})
    assert load_registry_document(path) == {'registry': registry, 'never_evict': ['sshd.service']}
    assert load_registry(path) == registry


def test_load_registry_document_without_never_evict_uses_the_default(tmp_path):
    path = write_document(tmp_path, {'registry': [{'port': 8765, 'service': 'sms-webhook'}]})
    assert load_registry_document(path) == {'registry': [normalised(8765, 'sms-webhook.service')],
                                            'never_evict': list(DEFAULT_NEVER_EVICT)}


@pytest.mark.parametrize('document, message', [
    (None, 'cannot read the registry'),
    ('{not json', 'cannot read the registry'),
    ([], 'has no "registry" list'),
    ({'never_evict': []}, 'has no "registry" list'),
    ({'registry': {'port': 80}}, 'has no "registry" list'),
    ({'registry': [], 'never_evict': 'sshd.service'}, 'has a bad never_evict list'),
    ({'registry': [], 'never_evict': ['bad name']}, 'has a bad never_evict list'),
    ({'registry': [{'port': 0, 'service': 'web'}]}, 'has 1 bad value(s)'),
], ids=['missing', 'not-json', 'list', 'no-registry', 'registry-mapping', 'never-evict-string', 'never-evict-bad',
        'bad-entry'])
def test_load_registry_document_refuses(tmp_path, document, message):
    path = str(tmp_path / 'missing.json') if document is None else write_document(tmp_path, document)
    with pytest.raises(CollisionGuardError) as caught:
        load_registry_document(path)
    assert message in str(caught.value)
    assert path in caught.value.full_message()


def test_load_registry_document_lists_bad_entries_and_a_bad_never_evict_list_together(tmp_path):
    path = write_document(tmp_path, {'registry': [{'port': 0, 'service': 'web'}, {'port': 80, 'service': 'a', 'notes': '\x1b'}],
                                     'never_evict': ['bad name']})
    with pytest.raises(CollisionGuardError) as caught:
        load_registry_document(path)
    assert str(caught.value) == '%s has 3 bad value(s)' % path
    assert [problem.split(':')[0] for problem in caught.value.problems] == [
        path + '[0].port', path + '[1].notes', path + ' never_evict[0]']


def test_load_registry_document_refuses_nesting_deeper_than_the_stack(tmp_path):
    path = write_document(tmp_path, '{"registry": %s0%s}' % ('[' * 100000, ']' * 100000))
    with pytest.raises(CollisionGuardError, match='cannot read the registry'):
        load_registry_document(path)


def test_a_pid_file_belongs_to_one_unit():
    with pytest.raises(CollisionGuardError) as caught:
        validate_registry([{'port': 1, 'service': 'a', 'pid_files': ['/run/x.pid']},
                           {'port': 2, 'service': 'b', 'pid_files': ['/run/y.pid', '/run/x.pid']}])
    assert caught.value.problems == [
        "collision_guard_registry[1].pid_files: '/run/x.pid' is already listed for a.service at "
        "collision_guard_registry[0]; a PID file belongs to one unit"]


def test_unit_settings_gather_every_entry_of_the_unit():
    registry = validate_registry([{'port': 1, 'service': 'a', 'pid_files': ['/run/a.pid']},
                                  {'port': 2, 'service': 'a', 'private_tmp': True, 'pid_files': ['/run/a2.pid']},
                                  {'port': 3, 'service': 'b'}])
    assert unit_settings(registry, 'a.service') == {'private_tmp': True, 'pid_files': ['/run/a.pid', '/run/a2.pid']}
    assert unit_settings(registry, 'b.service') == {'private_tmp': False, 'pid_files': []}


def test_the_host_registry_leaves_default_unit_settings_out():
    # So a helper of an earlier version, which knows no such keys, still reads the file.
    plain, special = validate_registry([{'port': 1, 'service': 'a'}, {'port': 2, 'service': 'b', 'private_tmp': True}])
    assert 'private_tmp' not in without_default_settings(plain) and 'pid_files' not in without_default_settings(plain)
    assert without_default_settings(special)['private_tmp'] is True
    assert validate_registry([without_default_settings(plain)]) == [plain]
