# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Sockets and the processes that own them, read from the kernel and /proc.

Every caller (modules and host-side helpers alike) sees sockets through
``read_listeners``, so ownership is judged one way everywhere. The parsers
take text and return plain data, for tests on fixture files.

A socket is found in the fd table of any thread of its process (a process
whose main thread exited keeps its fds in the other threads' tables), and
its holder is the process (the thread group), which signals reach. On the
ports asked for, TCP sockets that hold the port without listening (bound
only, or connected out from it) count too when they would make the
service's bind fail, which only their own SO_REUSEADDR can tell.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import pwd
import re
import socket
import stat
import struct

from ansible_collections.qwf.collision_guard.plugins.module_utils import _sock_diag
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import (
    cgroup_path,
    container_from_cgroup,
    manager_from_cgroup,
    strip_cgroup_root,
    unit_from_cgroup,
)

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


def parse_proc_net(text, protocol, family, listening_only=True):
    """Parse one /proc/net/{tcp,tcp6,udp,udp6} table.

    With ``listening_only``, TCP sockets count when they LISTEN and UDP
    sockets when they are bound and unconnected, which is what ``ss -l``
    shows. /proc/net cannot tell IPV6_V6ONLY, so ``v6only`` is None.
    """
    wanted = _sock_diag.listening_states(protocol)
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        state = int(fields[3], 16)
        if listening_only and not wanted & (1 << state):
            continue
        address_hex, port_hex = fields[1].split(':')
        remote_hex, remote_port_hex = fields[2].split(':')
        port = int(port_hex, 16)
        if port == 0:
            continue
        sockets.append({
            'protocol': protocol,
            'family': family,
            'address': decode_address(address_hex, family),
            'port': port,
            'remote_address': decode_address(remote_hex, family),
            'remote_port': int(remote_port_hex, 16),
            'state': _sock_diag.STATE_NAMES.get(state, str(state)),
            'uid': int(fields[7]),
            'inode': int(fields[9]),
            'v6only': None,
        })
    return sockets


def socket_inode(link_target):
    """The inode of an fd link such as ``socket:[12345]``, or None."""
    match = _SOCKET_LINK.match(link_target)
    return int(match.group(1)) if match else None


def parse_cmdline(raw):
    """Split /proc/PID/cmdline (NUL separated) into a list."""
    return [arg for arg in raw.split('\0') if arg] if raw else []


def parse_status(text):
    """The fields of /proc/PID/status this collection uses: ppid, real uid, session id and state letter."""
    fields = dict(line.split(':', 1) for line in text.splitlines() if ':' in line)

    def first_number(key):
        return int(fields[key].split()[0]) if fields.get(key, '').split() else None

    state = fields.get('State', '').split()
    return {'ppid': first_number('PPid'), 'uid': first_number('Uid'), 'session': first_number('NSsid'),
            'state': state[0] if state else None}


def parse_local_addresses(fib_trie):
    """The IPv4 addresses a network namespace owns, from its /proc/net/fib_trie."""
    addresses = set()
    previous = ''
    for line in fib_trie.splitlines():
        if line.strip() == '/32 host LOCAL' and previous.strip().startswith('|-- '):
            addresses.add(previous.strip()[4:])
        previous = line
    return addresses


def docker_proxy_target(cmdline):
    """The container address a docker-proxy forwards to, from its command line, or None."""
    for flag, value in zip(cmdline, cmdline[1:]):
        if flag == '-container-ip':
            return value
    return None


def dual_stack(sock):
    """True when an IPv6 socket on the wildcard address also takes IPv4 traffic.

    None when it cannot be known (/proc/net does not report IPV6_V6ONLY).
    """
    if sock['family'] != 'ipv6' or sock['address'] != '::':
        return False
    if sock['v6only'] is None:
        return None
    return not sock['v6only']


def read_text(path, mode='r', size=-1):
    """A /proc or small file's content, or None when it cannot be read (the process exited, no right)."""
    try:
        with open(path, mode) as handle:
            return handle.read(size)
    except (IOError, OSError):
        return None


def list_sockets(protocol=None, listening_only=True, proc='/proc'):
    """Sockets of this network namespace, from netlink, or /proc/net where netlink is refused."""
    sockets = []
    for table_protocol, family, table in PROC_NET_TABLES:
        if protocol and table_protocol != protocol:
            continue
        states = _sock_diag.listening_states(table_protocol) if listening_only else _sock_diag.ALL_STATES
        try:
            sockets.extend(_sock_diag.dump(family, table_protocol, states))
            continue
        except (OSError, socket.error):
            pass
        text = read_text(os.path.join(proc, 'net', table))
        if text is not None:
            sockets.extend(parse_proc_net(text, table_protocol, family, listening_only))
    return sockets


def list_bound_sockets(ports, proc='/proc'):
    """TCP sockets on one of ``ports`` that hold it without listening (TIME_WAIT left out).

    The kernel filters by port, so a port nothing is bound to costs one
    short netlink answer a family. Sockets bound without listen() are
    visible from Linux 6.8 on (and never in /proc/net, the fallback).
    """
    ports = set(ports)
    if not ports:
        return []
    sockets = []
    for table_protocol, family, table in PROC_NET_TABLES:
        if table_protocol != 'tcp':
            continue
        try:
            sockets.extend(_sock_diag.dump(family, 'tcp', _sock_diag.BOUND_STATES, ports=ports))
            continue
        except (OSError, socket.error):
            pass
        text = read_text(os.path.join(proc, 'net', table))
        if text is not None:
            sockets.extend(sock for sock in parse_proc_net(text, 'tcp', family, listening_only=False)
                           if sock['port'] in ports and sock['state'] not in ('LISTEN', 'TIME-WAIT'))
    return sockets


def fd_targets(pid_dir):
    """The (fd, link target) pairs of one process directory under /proc.

    A process that exited meanwhile has none; one whose fds we may not read
    (another user's, without root) raises OSError, so callers can say their
    view is incomplete.
    """
    fd_dir = os.path.join(pid_dir, 'fd')
    try:
        fds = os.listdir(fd_dir)
    except (IOError, OSError) as error:
        if error.errno in (errno.EACCES, errno.EPERM):
            raise
        return []
    targets = []
    for fd in fds:
        try:
            targets.append((fd, os.readlink(os.path.join(fd_dir, fd))))
        except (IOError, OSError):
            continue
    return targets


def process_dirs(proc='/proc', skip_pids=()):
    """(pid, directory) of every process under ``proc``."""
    return [(int(name), os.path.join(proc, name)) for name in os.listdir(proc)
            if name.isdigit() and int(name) not in skip_pids]


def thread_dirs(pid_dir):
    """(tid, directory) of the threads of one process but its main thread, whose table ``pid_dir/fd`` shows.

    A process that exited has none; one whose threads we may not list raises OSError.
    """
    task_dir = os.path.join(pid_dir, 'task')
    try:
        tids = os.listdir(task_dir)
    except (IOError, OSError) as error:
        if error.errno in (errno.EACCES, errno.EPERM):
            raise
        return []
    main = os.path.basename(pid_dir)
    return [(int(tid), os.path.join(task_dir, tid)) for tid in sorted(tids, key=int) if tid.isdigit() and tid != main]


def socket_fds(inodes, proc='/proc'):
    """Map socket inode -> {pid: (tid, fd)} of the processes holding it; also say whether every process could be read.

    ``tid`` is the thread whose table holds the fd (the pid itself for the
    main thread). Threads' own tables are read only for inodes no process's
    main table showed: a main thread that exited leaves its fds to the other
    threads, and a thread may have a table of its own.
    """
    holders = {}
    complete = True
    dirs = process_dirs(proc)
    for pid, base in dirs:
        try:
            targets = fd_targets(base)
        except (IOError, OSError):
            complete = False
            continue
        for fd, target in targets:
            inode = socket_inode(target)
            if inode in inodes:
                holders.setdefault(inode, {}).setdefault(pid, (pid, int(fd)))
    if set(inodes) - set(holders):
        for pid, base in dirs:
            try:
                threads = thread_dirs(base)
            except (IOError, OSError):
                continue  # already counted as unreadable
            for tid, task_base in threads:
                try:
                    targets = fd_targets(task_base)
                except (IOError, OSError):
                    complete = False
                    continue
                for fd, target in targets:
                    inode = socket_inode(target)
                    if inode in inodes and pid not in holders.get(inode, {}):
                        holders.setdefault(inode, {})[pid] = (tid, int(fd))
    return holders, complete


def socket_owners(inodes, proc='/proc'):
    """Map socket inode -> sorted pids holding it (in any thread's table); also say whether every process could be read."""
    holders, complete = socket_fds(inodes, proc)
    return dict((inode, sorted(pids)) for inode, pids in holders.items()), complete


def holds_any(pid, inodes, proc='/proc'):
    """Whether process ``pid`` has one of socket ``inodes`` open in any thread's table.

    False once it exited (or only its zombie is left); True when its fds may not be read.
    """
    base = os.path.join(proc, str(pid))
    try:
        if any(socket_inode(target) in inodes for dummy, target in fd_targets(base)):
            return True
        for dummy_tid, task_base in thread_dirs(base):
            if any(socket_inode(target) in inodes for dummy, target in fd_targets(task_base)):
                return True
    except (IOError, OSError):
        return True
    return False


_SYS_PIDFD_OPEN = 434   # the same on every architecture but alpha and ia64
_SYS_PIDFD_GETFD = 438
_PIDFD_THREAD = os.O_EXCL  # Linux 6.9: a pidfd for one thread, not its thread group
_LIBC = []


def _syscall(number, *args):
    # ctypes costs a start about 10 ms; only a socket held without listening needs it.
    import ctypes
    if not _LIBC:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        _LIBC.append(libc)
    result = _LIBC[0].syscall(ctypes.c_long(number), *[ctypes.c_long(arg) for arg in args])
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def reuse_address(pid, fd, tid=None, inode=None):
    """SO_REUSEADDR of the socket at ``fd`` of process ``pid`` (of thread ``tid``'s table when given): True, False or None.

    The socket is copied into this process with pidfd_getfd (Linux 5.6; root
    with CAP_SYS_PTRACE may), read, and closed at once. None when that
    cannot be done, or when the fd is no longer socket ``inode``.
    """
    if os.uname()[4].startswith(('alpha', 'ia64')):
        return None
    try:
        if tid is not None and tid != pid:
            pidfd = _syscall(_SYS_PIDFD_OPEN, tid, _PIDFD_THREAD)
        else:
            pidfd = _syscall(_SYS_PIDFD_OPEN, pid, 0)
    except (OSError, AttributeError):
        return None
    try:
        copy = _syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
    except OSError:
        return None
    finally:
        os.close(pidfd)
    try:
        status = os.fstat(copy)
        if not stat.S_ISSOCK(status.st_mode) or (inode is not None and status.st_ino != inode):
            return None
        sock = socket.socket(fileno=copy)
        try:
            return sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        finally:
            sock.detach()
    except (OSError, socket.error):
        return None
    finally:
        os.close(copy)


def blocks_bind(sock, reuse):
    """Whether a TCP socket that does not listen keeps a service from binding its port.

    The kernel lets a SO_REUSEADDR bind (what servers do) share a port with
    sockets that do not listen and have SO_REUSEADDR themselves; accepted
    connections inherit it from their listener, so an SSH session never
    blocks sshd. Only a socket known to lack it (``reuse`` is False) blocks;
    one whose option could not be read is never counted.
    """
    return sock['protocol'] == 'tcp' and sock['state'] not in ('LISTEN', 'TIME-WAIT') and reuse is False


def blocking_holders(candidates, holders, listener_pids, reuse_of):
    """The (socket, pid) pairs of ``candidates`` (``list_bound_sockets``) that block their port.

    ``holders`` maps inode -> {pid: (tid, fd)} (``socket_fds``);
    ``listener_pids`` maps (port, protocol) -> the pids holding a listener
    there, which are holders already; ``reuse_of(pid, fd, tid, inode)`` reads
    one socket's SO_REUSEADDR. The option is read once a socket, from the
    first holder that answers.
    """
    found = []
    for sock in candidates:
        owners = holders.get(sock['inode']) or {}
        others = sorted(pid for pid in owners if pid not in listener_pids.get((sock['port'], sock['protocol']), ()))
        if not others:
            continue
        reuse = None
        for pid in sorted(owners):
            tid, fd = owners[pid]
            reuse = reuse_of(pid, fd, tid, sock['inode'])
            if reuse is not None:
                break
        if blocks_bind(sock, reuse):
            found.extend((sock, pid) for pid in others)
    return found


def cgroup_root(proc='/proc'):
    """The cgroup prefix of this host's tree: ``/docker/<id>`` in a container, else ``/``.

    PID 1 runs in ``<root>/init.scope``, so its path tells what to strip.
    """
    return os.path.dirname(cgroup_path(read_text(os.path.join(proc, '1', 'cgroup')) or '')) or '/'


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _live_thread_dir(base):
    """The directory of a live thread of a process whose main thread exited (a zombie leader), else ``base``.

    The leader's own cmdline, exe and cgroup are gone or wrong by then.
    """
    try:
        threads = thread_dirs(base)
    except (IOError, OSError):
        return base
    for dummy_tid, task_base in threads:
        if parse_status(read_text(os.path.join(task_base, 'status')) or '')['state'] not in (None, 'Z', 'X'):
            return task_base
    return base


def describe_process(pid, cgroup_root='', proc='/proc'):
    """Who a process is: name, user, command line, executable, parent, systemd unit and container."""
    base = os.path.join(proc, str(pid))
    status = parse_status(read_text(os.path.join(base, 'status')) or '')
    if status['state'] == 'Z':
        base = _live_thread_dir(base)
    raw_cmdline = read_text(os.path.join(base, 'cmdline'), 'rb')
    path = strip_cgroup_root(cgroup_path(read_text(os.path.join(base, 'cgroup')) or ''), cgroup_root)
    try:
        exe = os.readlink(os.path.join(base, 'exe'))
    except (IOError, OSError):
        exe = None
    return {
        'pid': pid,
        'ppid': status['ppid'],
        'session': status['session'],
        'name': (read_text(os.path.join(base, 'comm')) or '').strip() or None,
        'user': _user_name(status['uid']) if status['uid'] is not None else None,
        'cmdline': parse_cmdline(raw_cmdline.decode('utf-8', 'replace')) if raw_cmdline else [],
        'exe': exe,
        'unit': unit_from_cgroup(path),
        'user_manager': manager_from_cgroup(path),
        'container': container_from_cgroup(path),
    }


def _holder_entry(sock, pid, describe):
    entry = dict(sock)
    entry['dual_stack'] = dual_stack(sock)
    entry.update(NO_OWNER if pid is None else describe(pid))
    return entry


def ancestor_units(pid, proc='/proc'):
    """The units of a process and of every process above it, up to PID 1: who is running this, as systemd sees it."""
    root = cgroup_root(proc)
    units = []
    seen = set()
    while pid and pid not in seen and pid != 1:
        seen.add(pid)
        described = describe_process(pid, root, proc)
        if described['unit'] and described['unit'] not in units:
            units.append(described['unit'])
        pid = described['ppid']
    return units


def process_describer(proc='/proc'):
    """``describe(pid)``, remembering each answer: one /proc read per process however often it is asked."""
    root = cgroup_root(proc)
    described = {}

    def describe(pid):
        if pid not in described:
            described[pid] = describe_process(pid, root, proc)
        return described[pid]

    return describe


def container_addresses(proc='/proc'):
    """Map each container's IPv4 address to the container's id, one process read per container."""
    addresses = {}
    seen = set()
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        container = container_from_cgroup(cgroup_path(read_text(os.path.join(proc, name, 'cgroup')) or ''))
        if not container or container in seen:
            continue
        seen.add(container)
        for address in parse_local_addresses(read_text(os.path.join(proc, name, 'net', 'fib_trie')) or ''):
            if not address.startswith('127.'):
                addresses[address] = container
    return addresses


NO_OWNER = {'pid': None, 'ppid': None, 'session': None, 'name': None, 'user': None, 'cmdline': [], 'exe': None,
            'unit': None, 'user_manager': None, 'container': None}


def read_listeners(port=None, protocol=None, include_non_listening=False, proc='/proc', targets=None, bound_ports=()):
    """Every listening socket in this network namespace, one entry per owning process.

    ``port``, ``protocol`` and ``targets`` (a set of ``(port, protocol)``)
    narrow it down. Owners are looked for only when a socket is left, so a
    free port costs no walk through /proc.

    On the TCP ports in ``bound_ports``, sockets that hold the port without
    listening and would make a service's bind fail (``blocks_bind``) are
    holders too, each entry with ``blocks_bind`` True.

    Returns ``(listeners, complete)``; ``complete`` is False when some
    processes could not be inspected (not root), so owners may be missing.
    """
    sockets = [sock for sock in list_sockets(protocol, not include_non_listening, proc)
               if (port is None or sock['port'] == port)
               and (targets is None or (sock['port'], sock['protocol']) in targets)]
    candidates = list_bound_sockets(bound_ports, proc) if bound_ports and not include_non_listening else []
    if not sockets and not candidates:
        return [], True

    holders, complete = socket_fds(set(sock['inode'] for sock in sockets + candidates), proc)
    describe = process_describer(proc)
    listeners = []
    listener_pids = {}
    for sock in sockets:
        for pid in sorted(holders.get(sock['inode']) or {}) or [None]:
            listeners.append(_holder_entry(sock, pid, describe))
            listener_pids.setdefault((sock['port'], sock['protocol']), set()).add(pid)
    for sock, pid in blocking_holders(candidates, holders, listener_pids, reuse_address):
        listeners.append(dict(_holder_entry(sock, pid, describe), blocks_bind=True))
    # docker-proxy runs on the host for a published port; the container it
    # serves is the one that owns the address it forwards to.
    proxies = [item for item in listeners if item['name'] == 'docker-proxy' and not item['container']]
    if proxies:
        by_address = container_addresses(proc)
        for item in proxies:
            item['container'] = by_address.get(docker_proxy_target(item['cmdline']))
    listeners.sort(key=lambda item: (item['protocol'], item['port'], item['family'], item['address'],
                                     item['remote_address'], item['remote_port'], item['pid'] or 0))
    return listeners, complete
