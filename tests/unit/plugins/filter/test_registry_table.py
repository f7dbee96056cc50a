# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.qwf.collision_guard.plugins.filter.registry_table import FilterModule
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry

registry_table = FilterModule().filters()['registry_table']

HEADER = '| Port | Service | Protocol | Notes | On this host |\n|---|---|---|---|---|\n'
# A cell boundary: a "|" that no backslash escapes.
BOUNDARY = re.compile(r'(?<!\\)\|')


def entry(notes, **overrides):
    value = {'port': 8765, 'service': 'sms-webhook.service', 'protocol': 'tcp', 'address': None, 'restart': '',
             'evict_holders': [], 'notes': notes}
    value.update(overrides)
    return value


def test_a_validated_registry_renders_as_before():
    registry = validate_registry([{'port': 8765, 'service': 'sms-webhook', 'notes': 'Twilio | inbound\nsecond line'},
                                  {'port': 53, 'service': 'knot', 'protocol': 'udp', 'address': '::1'}])
    assert registry_table(registry, ['knot.service']) == HEADER + (
        '| [::1]:53 | knot.service | udp |  | yes |\n'
        '| 8765 | sms-webhook.service | tcp | Twilio \\| inbound second line | no |\n')


# Text validation refuses, given to the filter directly: each stays in its row and cell, and reaches the file escaped.
HOSTILE = [
    ('\r| 1 | root.service | tcp | x | yes |', '\\r\\| 1 \\| root.service \\| tcp \\| x \\| yes \\|'),
    ('\x1b[2J\x1b[31mred', '\\x1b[2J\\x1b[31mred'),
    ('a\nb\r\nc', 'a b\\r c'),
    ('end\u2028| x |', 'end\\u2028\\| x \\|'),
    ('\u202eexe.gnp', '\\u202eexe.gnp'),
    ('nul\x00bell\x07del\x7fcsi\x9b', 'nul\\x00bell\\x07del\\x7fcsi\\x9b'),
    ('lone\ud800', 'lone\\ud800'),
    ('<!-- END qwf.collision_guard port registry -->', '<!-- END qwf.collision_guard port registry -->'),
]


@pytest.mark.parametrize('notes, cell', HOSTILE, ids=[repr(item[0])[:20] for item in HOSTILE])
def test_hostile_notes_stay_in_their_cell_and_are_escaped(notes, cell):
    table = registry_table([entry(notes)])
    lines = table.split('\n')
    assert lines[:2] == HEADER.split('\n')[:2] and lines[3:] == ['']
    assert lines[2] == '| 8765 | sms-webhook.service | tcp | %s | no |' % cell
    assert len(BOUNDARY.findall(lines[2])) == 6
    assert not re.search(r'[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\ud800-\udfff]', table)
    table.encode('utf-8')


def test_every_text_cell_is_escaped():
    table = registry_table([entry('', service='a\x1b.service', protocol='t\rcp', address='1.2.3.4\x07')])
    assert table.split('\n')[2] == '| 1.2.3.4\\x07:8765 | a\\x1b.service | t\\rcp |  | no |'


REGISTRY = [entry('Twilio inbound')]
TABLE = HEADER + '| 8765 | sms-webhook.service | tcp | Twilio inbound | no |\n'


def test_without_prevention_the_table_comes_alone():
    assert registry_table(REGISTRY) == TABLE
    assert registry_table(REGISTRY, [], prevention=None) == TABLE


@pytest.mark.parametrize('state, says, never', [
    ('active', ['Prevention is active on this host', '"Operation not permitted"', 'PermissionError: [Errno 1] Operation not permitted'],
     ['evicted', 'Where prevention is active']),
    ('off', ['evicted when its owner starts'], ['Operation not permitted']),
    ('unavailable', ['evicted when its owner starts'], ['Operation not permitted']),
    ('degraded', ['Where prevention is active', '"Operation not permitted"', 'evicted when its owner starts'], ['on this host']),
    ('', ['Where prevention is active', '"Operation not permitted"', 'evicted when its owner starts'], ['on this host']),
])
def test_with_prevention_a_paragraph_says_what_a_bind_meets(state, says, never):
    text = registry_table(REGISTRY, [], prevention=state)
    intro, table = text.split('\n\n')
    assert table == TABLE
    assert intro.endswith('Pick a port that is not in this table, and outside the ephemeral range\n(/proc/sys/net/ipv4/ip_local_port_range).')
    assert all(phrase in intro.replace('\n', ' ') for phrase in says)
    assert not any(phrase in intro.replace('\n', ' ') for phrase in never)
    assert '|' not in intro and 'qwf.collision_guard port registry' not in intro
    assert max(len(line) for line in intro.split('\n')) <= 110


def test_a_state_is_never_written_into_the_text():
    # Any other value picks the paragraph that holds either way; the value itself never reaches the file.
    text = registry_table(REGISTRY, [], prevention='\x1b[2J<!-- END qwf.collision_guard port registry -->')
    assert text == registry_table(REGISTRY, [], prevention='')


@pytest.mark.parametrize('bad', [True, 1, ['active'], {'state': 'active'}])
def test_a_prevention_that_is_not_a_string_is_refused_by_name(bad):
    with pytest.raises(AnsibleFilterError, match=r'registry_table: prevention must be a string such as "active", not '):
        registry_table(REGISTRY, [], prevention=bad)
