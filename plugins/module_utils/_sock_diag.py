# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Sockets from the kernel's sock_diag netlink interface, as ``ss`` reads them.

Netlink lets the kernel filter by state, so listing listeners does not cost
a line per idle connection, and it reports IPV6_V6ONLY, which /proc/net does
not. A bytecode filter (``port_filter``) lets the kernel return only the
sockets of given ports. ``build_request``, ``port_filter`` and
``parse_messages`` are pure; ``dump`` talks to the kernel.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_SKV6ONLY = 11
INET_DIAG_REQ_BYTECODE = 1
# inet_diag bytecode operations (linux/inet_diag.h).
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_S_GE = 2
INET_DIAG_BC_S_LE = 3

TCP_ESTABLISHED = 1
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_LISTEN = 10
TCP_NEW_SYN_RECV = 12
# Linux 6.8 and later dump sockets bound without listen() or connect()
# when asked for this state; they are reported as TCP_CLOSE.
TCP_BOUND_INACTIVE = 13
ALL_STATES = 0xFFFFFFFF
# TCP sockets that hold their local port without listening. TIME_WAIT is left
# out (no process holds it), and so are request sockets (NEW_SYN_RECV).
BOUND_STATES = ALL_STATES & ~((1 << TCP_LISTEN) | (1 << TCP_TIME_WAIT) | (1 << TCP_NEW_SYN_RECV) | (1 << TCP_CLOSE))

FAMILIES = {'ipv4': socket.AF_INET, 'ipv6': socket.AF_INET6}
PROTOCOLS = {'tcp': socket.IPPROTO_TCP, 'udp': socket.IPPROTO_UDP}
# Kernel TCP state numbers, as ss names them.
STATE_NAMES = {1: 'ESTAB', 2: 'SYN-SENT', 3: 'SYN-RECV', 4: 'FIN-WAIT-1', 5: 'FIN-WAIT-2', 6: 'TIME-WAIT',
               7: 'UNCONN', 8: 'CLOSE-WAIT', 9: 'LAST-ACK', 10: 'LISTEN', 11: 'CLOSING', 12: 'NEW-SYN-RECV'}

_NLMSGHDR = struct.Struct('=IHHII')
_REQ = struct.Struct('=BBBxI')          # family, protocol, ext, pad, states
_SOCKID = struct.Struct('>HH16s16sI8s')  # sport, dport, src, dst (network order), if, cookie
_MSG = struct.Struct('=BBBB')            # family, state, timer, retrans
_MSG_TAIL = struct.Struct('=IIIII')      # expires, rqueue, wqueue, uid, inode
_RTATTR = struct.Struct('=HH')
_BC_OP = struct.Struct('=BBH')            # code, yes, no (offsets in bytes)


def listening_states(protocol):
    """The state mask of sockets that accept traffic: LISTEN for TCP, unconnected for UDP."""
    return 1 << (TCP_LISTEN if protocol == 'tcp' else TCP_CLOSE)


def port_filter(ports):
    """inet_diag bytecode that accepts the sockets whose local port is one of ``ports``.

    One block a port: ``sport >= port``, ``sport <= port``, then a jump to
    the end (accept); a failed test goes on to the next block, and past the
    end (reject) in the last one. Only the tests every kernel has are used.
    """
    ports = sorted(set(int(port) for port in ports))
    if not ports or not all(0 < port < 65536 for port in ports):
        raise ValueError('ports must be a non-empty list of integers in 1-65535: %r' % (ports,))
    block = 20
    total = block * len(ports)
    code = b''
    for index, port in enumerate(ports):
        start = index * block
        last = index == len(ports) - 1
        # A failed test jumps to the next block, or 4 bytes past the end (reject) in the last one.
        code += _BC_OP.pack(INET_DIAG_BC_S_GE, 8, total - start + 4 if last else block) + _BC_OP.pack(0, 0, port)
        code += _BC_OP.pack(INET_DIAG_BC_S_LE, 8, total - start - 8 + 4 if last else block - 8) + _BC_OP.pack(0, 0, port)
        code += _BC_OP.pack(INET_DIAG_BC_JMP, 4, total - start - 16)
    return code


def build_request(family, protocol, states, sequence=1, ports=None):
    """One SOCK_DIAG_BY_FAMILY dump request; with ``ports``, for sockets on those local ports only."""
    body = _REQ.pack(FAMILIES[family], PROTOCOLS[protocol], 0, states)
    body += _SOCKID.pack(0, 0, b'\0' * 16, b'\0' * 16, 0, b'\0' * 8)
    if ports is not None:
        code = port_filter(ports)
        body += _RTATTR.pack(_RTATTR.size + len(code), INET_DIAG_REQ_BYTECODE) + code
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0)
    return header + body


def _address(raw, family):
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def _attributes(data):
    attrs = {}
    offset = 0
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        attrs[kind] = data[offset + _RTATTR.size:offset + length]
        offset += (length + 3) & ~3
    return attrs


def parse_messages(data, protocol):
    """Parse a buffer of netlink replies. Returns ``(sockets, done)``.

    Raises OSError when the kernel answers with an error.
    """
    sockets = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, dummy_flags, dummy_seq, dummy_pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        payload = data[offset + _NLMSGHDR.size:offset + length]
        offset += (length + 3) & ~3
        if kind == NLMSG_DONE:
            return sockets, True
        if kind == NLMSG_ERROR:
            errno = -struct.unpack_from('=i', payload)[0]
            if errno:
                raise OSError(errno, os.strerror(errno))
            continue
        if kind != SOCK_DIAG_BY_FAMILY:
            continue
        family, state, dummy_timer, dummy_retrans = _MSG.unpack_from(payload, 0)
        sport, dport, src, dst, dummy_if, dummy_cookie = _SOCKID.unpack_from(payload, _MSG.size)
        tail_at = _MSG.size + _SOCKID.size
        dummy_expires, dummy_rq, dummy_wq, uid, inode = _MSG_TAIL.unpack_from(payload, tail_at)
        attrs = _attributes(payload[tail_at + _MSG_TAIL.size:])
        v6only = None
        if family == socket.AF_INET6 and INET_DIAG_SKV6ONLY in attrs:
            v6only = bool(bytearray(attrs[INET_DIAG_SKV6ONLY])[0])
        sockets.append({
            'protocol': protocol,
            'family': 'ipv4' if family == socket.AF_INET else 'ipv6',
            'address': _address(src, family),
            'port': sport,
            'remote_address': _address(dst, family),
            'remote_port': dport,
            'state': STATE_NAMES.get(state, str(state)),
            'uid': uid,
            'inode': inode,
            'v6only': v6only,
        })
    return sockets, False


def dump(family, protocol, states, ports=None):
    """Ask the kernel for every socket of one family and protocol in ``states`` (on ``ports``, when given)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    try:
        sock.sendall(build_request(family, protocol, states, ports=ports))
        found = []
        while True:
            sockets, done = parse_messages(sock.recv(65536), protocol)
            found.extend(sockets)
            if done:
                return found
    finally:
        sock.close()
