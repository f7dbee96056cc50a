# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import (
    decode_address,
    docker_proxy_target,
    dual_stack,
    parse_local_addresses,
    parse_cmdline,
    parse_proc_net,
    parse_status,
    socket_inode,
)


def brief(sockets):
    return [(sock['address'], sock['port'], sock['state'], sock['inode']) for sock in sockets]


def test_tcp_keeps_only_listeners(fixture_text):
    sockets = parse_proc_net(fixture_text('proc_net_tcp.txt'), 'tcp', 'ipv4')
    assert brief(sockets) == [('0.0.0.0', 8765, 'LISTEN', 16107), ('127.0.0.1', 8080, 'LISTEN', 20001)]
    assert sockets[1]['uid'] == 1000
    assert sockets[0]['v6only'] is None


def test_tcp_with_non_listening_keeps_connections(fixture_text):
    sockets = parse_proc_net(fixture_text('proc_net_tcp.txt'), 'tcp', 'ipv4', listening_only=False)
    assert brief(sockets) == [('0.0.0.0', 8765, 'LISTEN', 16107), ('127.0.0.1', 8080, 'LISTEN', 20001),
                              ('127.0.0.1', 8765, 'ESTAB', 20002), ('127.0.0.1', 50000, 'TIME-WAIT', 0)]
    assert (sockets[2]['remote_address'], sockets[2]['remote_port']) == ('127.0.0.1', 50000)


def test_tcp6_addresses(fixture_text):
    sockets = parse_proc_net(fixture_text('proc_net_tcp6.txt'), 'tcp', 'ipv6')
    assert [(sock['address'], sock['port']) for sock in sockets] == [
        ('::', 8766), ('::1', 8081), ('::ffff:127.0.0.1', 8082), ('2001:db8::1', 80)]


def test_udp_keeps_bound_unconnected_sockets(fixture_text):
    sockets = parse_proc_net(fixture_text('proc_net_udp.txt'), 'udp', 'ipv4')
    assert brief(sockets) == [('0.0.0.0', 5514, 'UNCONN', 40001)]
    connected = parse_proc_net(fixture_text('proc_net_udp.txt'), 'udp', 'ipv4', listening_only=False)
    assert brief(connected) == [('0.0.0.0', 5514, 'UNCONN', 40001), ('127.0.0.1', 53, 'ESTAB', 40002)]


@pytest.mark.parametrize('family, address, v6only, expected', [
    ('ipv6', '::', False, True),
    ('ipv6', '::', True, False),
    ('ipv6', '::', None, None),
    ('ipv6', '::1', False, False),
    ('ipv4', '0.0.0.0', None, False),
])
def test_dual_stack(family, address, v6only, expected):
    assert dual_stack({'family': family, 'address': address, 'v6only': v6only}) is expected


def test_parse_status(fixture_text):
    assert parse_status(fixture_text('proc_status.txt')) == {'ppid': 1, 'uid': 65534, 'session': 4100}
    assert parse_status('') == {'ppid': None, 'uid': None, 'session': None}


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


def test_parse_local_addresses(fixture_text):
    addresses = parse_local_addresses(fixture_text('fib_trie_container.txt'))
    assert '127.0.0.1' in addresses
    assert any(address.startswith('172.17.') for address in addresses)
    assert not any(address.endswith('.0') or address.endswith('.255') for address in addresses)


def test_docker_proxy_target():
    cmdline = ['/usr/bin/docker-proxy', '-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '18080',
               '-container-ip', '172.17.0.4', '-container-port', '8000']
    assert docker_proxy_target(cmdline) == '172.17.0.4'
    assert docker_proxy_target(['python3', '-m', 'http.server']) is None
    assert docker_proxy_target([]) is None
