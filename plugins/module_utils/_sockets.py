# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Listening sockets and their owners, read straight from /proc.

The parsers take text and return plain data; ``read_listeners`` is the one
place that touches the file system, so every caller (modules and host-side
helpers alike) sees sockets the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import socket
import struct

from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd import unit_from_cgroup

TCP_LISTEN = '0A'
UDP_UNCONNECTED = '07'
PROC_NET_TABLES = (
    ('tcp', 'ipv4', 'tcp'),
    ('tcp', 'ipv6', 'tcp6'),
    ('udp', 'ipv4', 'udp'),
    ('udp', 'ipv6', 'udp6'),
)
_SOCKET_LINK = re.compile(r'^socket:\[(\d+)\]$')


def decode_address(hex_address, family):
    """Turn /proc/net's hex address into text.

    The kernel prints each 32-bit word of the address as a native integer, so
    packing the words back natively restores the address bytes on any host.
    """
    words = [int(hex_address[start:start + 8], 16) for start in range(0, len(hex_address), 8)]
    packed = struct.pack('=%dI' % len(words), *words)
    return socket.inet_ntop(socket.AF_INET if family == 'ipv4' else socket.AF_INET6, packed)


def parse_proc_net(text, protocol, family):
    """Parse one /proc/net/{tcp,tcp6,udp,udp6} table into listening sockets.

    TCP sockets count when they LISTEN; UDP sockets when they are bound and
    not connected, which is what ``ss -ul`` shows.
    """
    wanted_state = TCP_LISTEN if protocol == 'tcp' else UDP_UNCONNECTED
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != wanted_state:
            continue
        address_hex, port_hex = fields[1].split(':')
        port = int(port_hex, 16)
        if port == 0:
            continue
        sockets.append({
            'protocol': protocol,
            'family': family,
            'address': decode_address(address_hex, family),
            'port': port,
            'inode': int(fields[9]),
        })
    return sockets


def socket_inode(link_target):
    """The inode of an fd link such as ``socket:[12345]``, or None."""
    match = _SOCKET_LINK.match(link_target)
    return int(match.group(1)) if match else None


def parse_cmdline(raw):
    """Split /proc/PID/cmdline (NUL separated) into a list."""
    return [arg for arg in raw.split('\0') if arg] if raw else []


def _read(path, mode='r'):
    try:
        with open(path, mode) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _socket_inodes_by_pid(proc='/proc'):
    """Map socket inode -> sorted pids holding it; also say if some fds were unreadable."""
    owners = {}
    unreadable = False
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        fd_dir = os.path.join(proc, name, 'fd')
        try:
            fds = os.listdir(fd_dir)
        except (IOError, OSError):
            unreadable = True
            continue
        for fd in fds:
            try:
                inode = socket_inode(os.readlink(os.path.join(fd_dir, fd)))
            except (IOError, OSError):
                continue
            if inode is not None:
                owners.setdefault(inode, set()).add(int(name))
    return dict((inode, sorted(pids)) for inode, pids in owners.items()), unreadable


def describe_process(pid, proc='/proc'):
    """Name, cmdline and systemd unit of one process, read from /proc."""
    base = os.path.join(proc, str(pid))
    raw_cmdline = _read(os.path.join(base, 'cmdline'), 'rb')
    cgroup = _read(os.path.join(base, 'cgroup'))
    name = (_read(os.path.join(base, 'comm')) or '').strip() or None
    return {
        'pid': pid,
        'name': name,
        'cmdline': parse_cmdline(raw_cmdline.decode('utf-8', 'replace')) if raw_cmdline else [],
        'unit': unit_from_cgroup(cgroup) if cgroup else None,
    }


def read_listeners(port=None, protocol=None, proc='/proc'):
    """Every listening socket on this host's network namespace, one entry per owning pid.

    Returns ``(listeners, complete)``; ``complete`` is False when some
    processes' fds could not be read (not root), so owners may be missing.
    """
    sockets = []
    for table_protocol, family, table in PROC_NET_TABLES:
        if protocol and table_protocol != protocol:
            continue
        text = _read(os.path.join(proc, 'net', table))
        if text is None:
            continue
        sockets.extend(sock for sock in parse_proc_net(text, table_protocol, family)
                       if port is None or sock['port'] == port)

    owners, unreadable = _socket_inodes_by_pid(proc) if sockets else ({}, False)
    described = {}
    listeners = []
    for sock in sockets:
        pids = owners.get(sock['inode']) or [None]
        for pid in pids:
            entry = dict(sock)
            if pid is None:
                entry.update({'pid': None, 'name': None, 'cmdline': [], 'unit': None})
            else:
                if pid not in described:
                    described[pid] = describe_process(pid, proc)
                entry.update(described[pid])
            listeners.append(entry)
    listeners.sort(key=lambda item: (item['protocol'], item['port'], item['family'], item['address'], item['pid'] or 0))
    return listeners, not unreadable
