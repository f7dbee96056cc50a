# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import (
    decode_address,
    parse_cmdline,
    parse_proc_net,
    socket_inode,
)


def test_tcp_keeps_only_listeners(fixture_text):
    sockets = parse_proc_net(fixture_text('proc_net_tcp.txt'), 'tcp', 'ipv4')
    assert sockets == [
        {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 8765, 'inode': 16107},
        {'protocol': 'tcp', 'family': 'ipv4', 'address': '127.0.0.1', 'port': 8080, 'inode': 20001},
    ]


def test_tcp6_addresses(fixture_text):
    sockets = parse_proc_net(fixture_text('proc_net_tcp6.txt'), 'tcp', 'ipv6')
    assert [(sock['address'], sock['port']) for sock in sockets] == [
        ('::', 8766), ('::1', 8081), ('::ffff:127.0.0.1', 8082), ('2001:db8::1', 80)]


def test_udp_keeps_bound_unconnected_sockets(fixture_text):
    sockets = parse_proc_net(fixture_text('proc_net_udp.txt'), 'udp', 'ipv4')
    assert sockets == [{'protocol': 'udp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 5514, 'inode': 40001}]


@pytest.mark.parametrize('hex_address, family, text', [
    ('0100007F', 'ipv4', '127.0.0.1'),
    ('00000000', 'ipv4', '0.0.0.0'),
    ('0101A8C0', 'ipv4', '192.168.1.1'),
    ('00000000000000000000000001000000', 'ipv6', '::1'),
])
def test_decode_address(hex_address, family, text):
    assert decode_address(hex_address, family) == text


@pytest.mark.parametrize('link, inode', [
    ('socket:[16107]', 16107),
    ('pipe:[16107]', None),
    ('/dev/null', None),
    ('socket:[]', None),
])
def test_socket_inode(link, inode):
    assert socket_inode(link) == inode


def test_parse_cmdline():
    assert parse_cmdline('python3\0-m\0http.server\0008765\0') == ['python3', '-m', 'http.server', '8765']
    assert parse_cmdline('') == []
