# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""psutil as an independent oracle for the discovery core, on real sockets.

psutil reads the same kernel tables its own way (/proc/net/* and a walk of
/proc/*/fd), so where it is strong it must agree with read_listeners: the
(protocol, address, port) of every listening socket, and the owner of a
socket one process holds. Where it is weak it is shown so: a socket that a
forked worker inherited has two holders, and psutil names one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import time

import pytest

psutil = pytest.importorskip('psutil')

from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import read_listeners  # noqa: E402


def psutil_view(ports):
    """``{(protocol, address, port): pid}`` of psutil's listening sockets on ``ports``."""
    view = {}
    for conn in psutil.net_connections(kind='inet'):
        protocol = 'tcp' if conn.type == socket.SOCK_STREAM else 'udp'
        listening = conn.status == psutil.CONN_LISTEN if protocol == 'tcp' else not conn.raddr
        if listening and conn.laddr.port in ports:
            view.setdefault((protocol, conn.laddr.ip, conn.laddr.port), set()).add(conn.pid)
    return view


def our_view(ports):
    view = {}
    for item in read_listeners()[0]:
        if item['port'] in ports:
            view.setdefault((item['protocol'], item['address'], item['port']), set()).add(item['pid'])
    return view


@pytest.fixture
def sockets():
    """A TCP listener on IPv4 and on IPv6, a UDP socket, and one TCP listener a forked worker inherits."""
    held = []
    tcp4 = socket.socket()
    tcp4.bind(('127.0.0.1', 0))
    tcp4.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(('127.0.0.1', 0))
    held += [tcp4, udp]
    if socket.has_ipv6:
        try:
            tcp6 = socket.socket(socket.AF_INET6)
            tcp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            tcp6.bind(('::1', 0))
            tcp6.listen(8)
            held.append(tcp6)
        except OSError:
            pass
    shared = socket.socket()
    shared.bind(('127.0.0.1', 0))
    shared.listen(8)
    read_end, write_end = os.pipe()
    worker = os.fork()
    if worker == 0:
        # The worker keeps the shared listener alone, as a pre-fork server's worker does.
        for sock in held:
            sock.close()
        os.close(read_end)
        os.write(write_end, b'.')
        time.sleep(60)
        os._exit(0)
    os.close(write_end)
    os.read(read_end, 1)
    os.close(read_end)
    ports = {sock.getsockname()[1]: sock for sock in held}
    yield {'unshared': ports, 'shared': shared.getsockname()[1], 'worker': worker}
    os.kill(worker, 9)
    os.waitpid(worker, 0)
    for sock in held + [shared]:
        sock.close()


def test_psutil_sees_the_same_endpoints_and_the_same_owner_of_each_unshared_socket(sockets):
    ports = set(sockets['unshared'])
    ours, theirs = our_view(ports), psutil_view(ports)
    assert len(ours) == len(ports)
    assert set(ours) == set(theirs)
    assert ours == theirs == dict((key, {os.getpid()}) for key in ours)


def test_an_inherited_socket_has_two_holders_and_psutil_names_only_one(sockets):
    key = ('tcp', '127.0.0.1', sockets['shared'])
    ours, theirs = our_view({sockets['shared']}), psutil_view({sockets['shared']})
    assert set(ours) == set(theirs) == {key}
    assert ours[key] == {os.getpid(), sockets['worker']}
    # One pid per socket: the eviction helper needs every holder, or the port stays taken.
    assert len(theirs[key]) == 1 and theirs[key] < ours[key]
