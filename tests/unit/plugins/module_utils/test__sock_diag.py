# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import struct

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _sock_diag


def reply(family, state, sport, src, inode, uid=0, v6only=None, dport=0, dst=b'\0' * 16):
    """One SOCK_DIAG_BY_FAMILY message as the kernel lays it out."""
    body = struct.pack('=BBBB', family, state, 0, 0)
    body += struct.pack('>HH16s16sI8s', sport, dport, src.ljust(16, b'\0'), dst, 0, b'\0' * 8)
    body += struct.pack('=IIIII', 0, 0, 0, uid, inode)
    if v6only is not None:
        body += struct.pack('=HHB3x', 5, _sock_diag.INET_DIAG_SKV6ONLY, int(v6only))
    return struct.pack('=IHHII', 16 + len(body), _sock_diag.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


DONE = struct.pack('=IHHIIi', 20, _sock_diag.NLMSG_DONE, 2, 1, 0, 0)


def test_request_layout():
    request = _sock_diag.build_request('ipv6', 'udp', _sock_diag.listening_states('udp'))
    length, kind, flags = struct.unpack_from('=IHH', request)
    assert (length, kind, flags) == (len(request), 20, 0x301)
    assert len(request) == 16 + 56
    assert struct.unpack_from('=BBBxI', request, 16) == (socket.AF_INET6, socket.IPPROTO_UDP, 0, 1 << 7)


def test_listening_states():
    assert _sock_diag.listening_states('tcp') == 1 << 10
    assert _sock_diag.listening_states('udp') == 1 << 7


def test_parse_listeners_and_the_v6only_flag():
    data = (reply(socket.AF_INET, 10, 8765, socket.inet_pton(socket.AF_INET, '127.0.0.1'), 111, uid=1000)
            + reply(socket.AF_INET6, 10, 8766, socket.inet_pton(socket.AF_INET6, '::'), 222, v6only=False)
            + reply(socket.AF_INET6, 10, 8767, socket.inet_pton(socket.AF_INET6, '::'), 333, v6only=True)
            + DONE)
    sockets, done = _sock_diag.parse_messages(data, 'tcp')
    assert done
    assert [(s['family'], s['address'], s['port'], s['state'], s['inode'], s['uid'], s['v6only']) for s in sockets] == [
        ('ipv4', '127.0.0.1', 8765, 'LISTEN', 111, 1000, None),
        ('ipv6', '::', 8766, 'LISTEN', 222, 0, False),
        ('ipv6', '::', 8767, 'LISTEN', 333, 0, True),
    ]


def test_parse_a_reply_split_over_reads():
    sockets, done = _sock_diag.parse_messages(reply(socket.AF_INET, 7, 5514, b'\0' * 4, 9), 'udp')
    assert not done
    assert sockets[0]['state'] == 'UNCONN'


def test_kernel_error_is_raised():
    error = struct.pack('=IHHIIi', 36, _sock_diag.NLMSG_ERROR, 0, 1, 0, -1) + b'\0' * 16
    with pytest.raises(OSError):
        _sock_diag.parse_messages(error, 'tcp')


def run_bytecode(code, sport):
    """The kernel's inet_diag_bc_run, for the port tests only: whether a socket on ``sport`` passes."""
    offset, left = 0, len(code)
    while left > 0:
        kind, yes, no = struct.unpack_from('=BBH', code, offset)
        if kind == _sock_diag.INET_DIAG_BC_S_GE:
            passed = sport >= struct.unpack_from('=BBH', code, offset + 4)[2]
        elif kind == _sock_diag.INET_DIAG_BC_S_LE:
            passed = sport <= struct.unpack_from('=BBH', code, offset + 4)[2]
        elif kind == _sock_diag.INET_DIAG_BC_JMP:
            passed = False
        else:
            raise AssertionError('unexpected operation %d' % kind)
        step = yes if passed else no
        offset, left = offset + step, left - step
    return left == 0


def audit_bytecode(code):
    """The kernel's inet_diag_bc_audit: every jump lands on an operation, the end, or just past it (reject)."""
    starts, offset = set(), 0
    while offset < len(code):
        starts.add(offset)
        kind, yes, no = struct.unpack_from('=BBH', code, offset)
        smallest = 8 if kind in (_sock_diag.INET_DIAG_BC_S_GE, _sock_diag.INET_DIAG_BC_S_LE) else 4
        left = len(code) - offset
        for step in (yes, no):
            assert smallest <= step <= left + 4 and step % 4 == 0
        offset += yes
    assert offset == len(code)
    offset = 0
    while offset < len(code):
        kind, yes, no = struct.unpack_from('=BBH', code, offset)
        assert offset + no in starts or offset + no in (len(code), len(code) + 4)
        offset += yes


@pytest.mark.parametrize('ports', [[9101], [22, 8080], [9101, 9102, 9103, 9104], [1, 65535], list(range(1000, 1040))])
def test_the_port_filter_passes_its_ports_and_nothing_else(ports):
    code = _sock_diag.port_filter(ports)
    audit_bytecode(code)
    probes = set(ports) | set(port + 1 for port in ports) | set(port - 1 for port in ports) | set([0, 80, 65535])
    for sport in sorted(probe for probe in probes if 0 <= probe <= 65535):
        assert run_bytecode(code, sport) == (sport in ports), sport


@pytest.mark.parametrize('ports', [[], [0], [65536], [-1]])
def test_the_port_filter_refuses_what_is_no_port(ports):
    with pytest.raises(ValueError):
        _sock_diag.port_filter(ports)


def test_a_request_with_ports_carries_the_filter():
    request = _sock_diag.build_request('ipv4', 'tcp', _sock_diag.BOUND_STATES, ports=[9101, 9102])
    length, kind, flags = struct.unpack_from('=IHH', request)
    assert length == len(request) == 16 + 56 + 4 + 40
    attribute_length, attribute_type = struct.unpack_from('=HH', request, 16 + 56)
    assert (attribute_length, attribute_type) == (44, _sock_diag.INET_DIAG_REQ_BYTECODE)
    assert request[16 + 56 + 4:] == _sock_diag.port_filter([9102, 9101])


def test_bound_states_leave_out_listeners_time_wait_and_requests():
    states = _sock_diag.BOUND_STATES
    for state in (_sock_diag.TCP_ESTABLISHED, 2, 3, 4, 5, 8, 9, 11, _sock_diag.TCP_BOUND_INACTIVE):
        assert states & (1 << state)
    for state in (_sock_diag.TCP_LISTEN, _sock_diag.TCP_TIME_WAIT, _sock_diag.TCP_NEW_SYN_RECV):
        assert not states & (1 << state)


def test_the_kernel_filters_by_port():
    """On this machine: a bound socket and a connection out from a port are found by that port alone."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen()
    bound = socket.socket()
    bound.bind(('127.0.0.1', 0))
    client = socket.socket()
    client.bind(('127.0.0.1', 0))
    client.connect(listener.getsockname())
    accepted, dummy = listener.accept()
    try:
        try:
            found = _sock_diag.dump('ipv4', 'tcp', _sock_diag.BOUND_STATES, ports=[client.getsockname()[1]])
        except OSError as error:
            pytest.skip('sock_diag is not available here: %s' % error)
        assert [(item['port'], item['state']) for item in found] == [(client.getsockname()[1], 'ESTAB')]
        found = _sock_diag.dump('ipv4', 'tcp', _sock_diag.BOUND_STATES, ports=[bound.getsockname()[1]])
        # Linux 6.8 and later report sockets bound without listen(), as TCP_CLOSE.
        assert [(item['port'], item['state']) for item in found] in ([], [(bound.getsockname()[1], 'UNCONN')])
    finally:
        for sock in (listener, bound, client, accepted):
            sock.close()
