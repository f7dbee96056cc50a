# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import parse_host_time, port_owner_state


def listener(unit, pid=10, family='ipv4'):
    return {'protocol': 'tcp', 'family': family, 'address': '0.0.0.0', 'port': 8765, 'inode': 1, 'pid': pid,
            'name': 'python3', 'cmdline': [], 'unit': unit}


@pytest.mark.parametrize('listeners, state', [
    ([], 'free'),
    ([listener('sms-webhook.service')], 'owned'),
    ([listener('sms-webhook.service'), listener('sms-webhook.service', pid=11, family='ipv6')], 'owned'),
    ([listener('collision-guard-squatter-8765-tcp.service')], 'squatted'),
    ([listener('sms-webhook.service'), listener('session-3.scope', pid=99)], 'squatted'),
    ([listener(None, pid=None)], 'squatted'),
], ids=['free', 'owned', 'owned-v4-and-v6', 'squatter', 'shared-with-squatter', 'unknown-holder'])
def test_port_owner_state(listeners, state):
    assert port_owner_state(listeners, 'sms-webhook.service') == state


def test_parse_host_time_reads_both_forms_of_the_command_module():
    moment = datetime.datetime(2026, 11, 27, 20, 54, 49, 123456)
    expected = time.mktime(moment.timetuple()) + 0.123456
    assert parse_host_time(str(moment)) == pytest.approx(expected)
    assert parse_host_time(str(moment.replace(microsecond=0))) == pytest.approx(expected - 0.123456)


def test_parse_host_time_refuses_other_text():
    with pytest.raises(ValueError, match='is not a time'):
        parse_host_time('yesterday')
