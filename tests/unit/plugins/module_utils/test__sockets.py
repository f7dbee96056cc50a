# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils import _sockets
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import (
    blocking_holders,
    blocks_bind,
    decode_address,
    describe_process,
    docker_proxy_target,
    dual_stack,
    holds_any,
    parse_local_addresses,
    parse_cmdline,
    parse_proc_net,
    parse_status,
    read_listeners,
    reuse_address,
    socket_fds,
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
    assert parse_status(fixture_text('proc_status.txt')) == {'ppid': 1, 'uid': 65534, 'session': 4100, 'state': 'S'}
    assert parse_status('') == {'ppid': None, 'uid': None, 'session': None, 'state': None}
    assert parse_status('State:\tZ (zombie)\nPPid:\t1\n')['state'] == 'Z'


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


# Sockets held without listening: which ones keep a service from binding its port.

def bound(state, port=9101, inode=50, protocol='tcp'):
    return {'protocol': protocol, 'family': 'ipv4', 'address': '0.0.0.0', 'port': port, 'state': state,
            'inode': inode, 'v6only': None}


@pytest.mark.parametrize('state, reuse, blocks', [
    ('UNCONN', False, True),          # bound, never listened
    ('ESTAB', False, True),           # connected out from the port
    ('SYN-SENT', False, True),
    ('ESTAB', True, False),           # an accepted connection: SO_REUSEADDR from its listener
    ('CLOSE-WAIT', True, False),
    ('ESTAB', None, False),           # the option could not be read: never counted on a guess
    ('UNCONN', None, False),
    ('LISTEN', False, False),         # listeners are read as such
    ('TIME-WAIT', False, False),      # nobody's
])
def test_blocks_bind(state, reuse, blocks):
    assert blocks_bind(bound(state), reuse) is blocks
    assert blocks_bind(bound(state, protocol='udp'), reuse) is False


def test_blocking_holders_read_each_socket_once_and_skip_listeners():
    candidates = [bound('UNCONN', inode=50), bound('ESTAB', inode=51), bound('ESTAB', inode=52),
                  bound('ESTAB', inode=53), bound('ESTAB', inode=54)]
    holders = {
        50: {300: (300, 3), 301: (301, 3)},   # bound only, shared by a forked pair
        51: {400: (400, 7)},                  # an accepted connection (SSH session)
        52: {500: (500, 4)},                  # the listener's own process: a holder already
        53: {600: (601, 5)},                  # in a thread's own table; the option cannot be read
        # 54: orphaned, no process holds it
    }
    asked = []
    options = {50: False, 51: True, 53: None}

    def reuse_of(pid, fd, tid, inode):
        asked.append((pid, fd, tid, inode))
        return options[inode]

    found = blocking_holders(candidates, holders, {(9101, 'tcp'): set([500])}, reuse_of)
    assert [(sock['inode'], pid) for sock, pid in found] == [(50, 300), (50, 301)]
    assert asked == [(300, 3, 300, 50), (400, 7, 400, 51), (600, 5, 601, 53)]


def make_process(proc, pid, fds=(), threads=None, state='S', cmdline='', cgroup=''):
    """A process directory of a fixture /proc: fd links, and threads with tables of their own."""
    base = proc / str(pid)
    (base / 'fd').mkdir(parents=True)
    for fd, target in fds:
        os.symlink(target, str(base / 'fd' / str(fd)))
    (base / 'status').write_text(u'Name:\tpython3\nState:\t%s\nPPid:\t1\nUid:\t1500\t1500\t1500\t1500\n' % state)
    (base / 'cmdline').write_text(cmdline)
    (base / 'cgroup').write_text(cgroup)
    (base / 'comm').write_text(u'python3\n')
    (base / 'task' / str(pid) / 'fd').mkdir(parents=True)
    for tid, (thread_fds, thread_cmdline, thread_cgroup) in sorted((threads or {}).items()):
        task = base / 'task' / str(tid)
        (task / 'fd').mkdir(parents=True)
        for fd, target in thread_fds:
            os.symlink(target, str(task / 'fd' / str(fd)))
        (task / 'status').write_text(u'Name:\tpython3\nState:\tS (sleeping)\n')
        (task / 'cmdline').write_text(thread_cmdline)
        (task / 'cgroup').write_text(thread_cgroup)
    return base


SQUATTER_CGROUP = u'0::/user.slice/user-1500.slice/user@1500.service/app.slice/cg-f1-plain.service\n'


@pytest.fixture
def fixture_proc(tmp_path):
    proc = tmp_path / 'proc'
    make_process(proc, 100, fds=[(3, 'socket:[11]'), (4, 'pipe:[12]')], cmdline=u'nginx\0')
    # A main thread that exited: its fds, command line and cgroup live on in thread 201.
    make_process(proc, 200, state='Z (zombie)', cgroup=u'0::/\n',
                 threads={201: ([(4, 'socket:[22]')], u'python3\0squat.py\0', SQUATTER_CGROUP)})
    # A thread with an fd table of its own.
    make_process(proc, 300, fds=[(0, '/dev/null')], threads={301: ([(9, 'socket:[33]')], u'', u'')})
    return proc


def test_socket_fds_find_the_sockets_of_every_thread(fixture_proc):
    holders, complete = socket_fds(set([11, 22, 33, 44]), str(fixture_proc))
    assert complete
    assert holders == {11: {100: (100, 3)}, 22: {200: (201, 4)}, 33: {300: (301, 9)}}


def test_threads_are_read_only_for_sockets_no_main_table_showed(fixture_proc, monkeypatch):
    listed = []
    thread_dirs = _sockets.thread_dirs
    monkeypatch.setattr(_sockets, 'thread_dirs', lambda base: listed.append(base) or thread_dirs(base))
    assert socket_fds(set([11]), str(fixture_proc))[0] == {11: {100: (100, 3)}}
    assert listed == []
    socket_fds(set([22]), str(fixture_proc))
    assert len(listed) == 3


def test_holds_any_sees_the_tables_of_threads(fixture_proc):
    assert holds_any(100, set([11]), str(fixture_proc))
    assert holds_any(200, set([22]), str(fixture_proc))
    assert holds_any(300, set([33]), str(fixture_proc))
    assert not holds_any(100, set([22]), str(fixture_proc))
    assert not holds_any(999, set([11]), str(fixture_proc))  # exited


def test_a_zombie_leader_is_described_by_a_live_thread(fixture_proc):
    described = describe_process(200, proc=str(fixture_proc))
    assert described['pid'] == 200
    assert described['cmdline'] == ['python3', 'squat.py']
    assert (described['unit'], described['user_manager']) == ('cg-f1-plain.service', 'user@1500.service')
    assert described['user'] is not None


# The same on real processes and sockets of this machine.

def test_reuse_address_reads_the_option_of_a_socket():
    with_option, without = socket.socket(), socket.socket()
    with_option.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        found = [reuse_address(os.getpid(), sock.fileno(), inode=os.fstat(sock.fileno()).st_ino)
                 for sock in (with_option, without)]
        if found == [None, None]:
            pytest.skip('pidfd_getfd is not available here')
        assert found == [True, False]
        # Another inode at that fd (the process reused it) is never read as the socket asked about.
        assert reuse_address(os.getpid(), without.fileno(), inode=1) is None
        assert reuse_address(os.getpid(), 10 ** 6) is None
    finally:
        with_option.close()
        without.close()


def can_copy_sockets():
    probe = socket.socket()
    try:
        return reuse_address(os.getpid(), probe.fileno()) is not None
    finally:
        probe.close()


CONNECTED_OUT = textwrap.dedent('''
    import socket, sys, time
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen()
    client = socket.socket()
    if sys.argv[1] == 'reuse':
        client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    client.bind(('127.0.0.1', 0))
    client.connect(listener.getsockname())
    accepted = listener.accept()
    print(client.getsockname()[1], flush=True)
    time.sleep(60)
''')


@pytest.mark.parametrize('mode, counted', [('plain', True), ('reuse', False)])
def test_a_connection_out_from_a_port_holds_it_unless_it_has_so_reuseaddr(mode, counted):
    process = subprocess.Popen([sys.executable, '-c', CONNECTED_OUT, mode], stdout=subprocess.PIPE,
                               universal_newlines=True)
    try:
        port = int(process.stdout.readline())
        if not can_copy_sockets():
            pytest.skip('pidfd_getfd is not available here')
        assert read_listeners(port=port, protocol='tcp')[0] == []
        found, dummy = read_listeners(port=port, protocol='tcp', bound_ports=[port])
        assert [(item['pid'], item['state'], item.get('blocks_bind')) for item in found] == (
            [(process.pid, 'ESTAB', True)] if counted else [])
    finally:
        process.kill()
        process.wait()


ZOMBIE_LEADER = textwrap.dedent('''
    import ctypes, socket, threading, time
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen()
    print(sock.getsockname()[1], flush=True)
    threading.Thread(target=time.sleep, args=(60,)).start()
    ctypes.CDLL(None).pthread_exit(None)
''')


def test_a_listener_whose_main_thread_exited_is_held_by_its_process():
    process = subprocess.Popen([sys.executable, '-c', ZOMBIE_LEADER], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        port = int(process.stdout.readline())
        for dummy in range(100):
            if parse_status(open('/proc/%d/status' % process.pid).read())['state'] == 'Z':
                break
            time.sleep(0.01)
        found, dummy = read_listeners(port=port, protocol='tcp')
        assert [item['pid'] for item in found] == [process.pid]
        assert found[0]['cmdline'][-1:] == [ZOMBIE_LEADER]
        assert holds_any(process.pid, set([found[0]['inode']]))
    finally:
        process.kill()
        process.wait()
    assert not holds_any(process.pid, set([found[0]['inode']]))
