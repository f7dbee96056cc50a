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
