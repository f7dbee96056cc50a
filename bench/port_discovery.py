"""Benchmark: port discovery against ss and community.general.listen_ports_facts.

Creates 1,000 TCP listeners and 200 UDP sockets across 50 processes, plus
2,000 idle connected TCP sockets, all on 127.0.0.1, then times in one run:

- the discovery core (read_listeners, in process),
- ss -H -tulpn,
- psutil.net_connections(), an independent reader of the same kernel tables,
- qwf.collision_guard.port_usage_info and community.general.listen_ports_facts,
  each run as a module on this host through `ansible localhost -m`.

Ten of the processes are pre-fork servers: each binds its listeners, then
forks workers that inherit them, as nginx and gunicorn do. The sockets found
are compared with psutil's: the (protocol, address, port) sets, the owner of
each socket one process holds, and the holders of inherited sockets, which
psutil reports one per socket. It also times what `import psutil` adds to a
Python start, which the eviction helper would pay at every unit start.

Run it with `make bench` (root, so every owner can be read). It prints a
Markdown table of medians and ratios; it asserts nothing about speed.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import time

PROCESSES = 50
TCP_PER_PROCESS = 20          # 1,000 listeners
UDP_PER_PROCESS = 4           # 200 UDP sockets
PAIRS_PER_PROCESS = 20        # 20 client + 20 accepted sockets: 2,000 idle connections
BASE_PORT = 31000
CORE_RUNS = 20
MODULE_RUNS = 3
PREFORK_SERVERS = 10          # of the 50 processes: each forks workers that inherit its sockets
WORKERS_PER_SERVER = 4
IMPORT_RUNS = 20


def hold_sockets(index, ready):
    """Child: open this process's share of sockets, say so, then sleep."""
    held = []
    first = BASE_PORT + index * (TCP_PER_PROCESS + UDP_PER_PROCESS)
    for offset in range(TCP_PER_PROCESS):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', first + offset))
        listener.listen(64)
        held.append(listener)
    for offset in range(UDP_PER_PROCESS):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(('127.0.0.1', first + TCP_PER_PROCESS + offset))
        held.append(udp)
    for pair in range(PAIRS_PER_PROCESS):
        client = socket.create_connection(('127.0.0.1', first + pair % TCP_PER_PROCESS))
        server, dummy = held[pair % TCP_PER_PROCESS].accept()
        held += [client, server]
    if index < PREFORK_SERVERS:
        for dummy in range(WORKERS_PER_SERVER):
            if os.fork() == 0:
                os.write(ready, b'w')
                time.sleep(3600)
                os._exit(0)
    os.write(ready, b'.')
    time.sleep(3600)


def psutil_listeners():
    """psutil's listening TCP and unconnected UDP sockets, as (protocol, address, port, pid) with psutil's one pid."""
    import psutil
    found = []
    for conn in psutil.net_connections(kind='inet'):
        protocol = 'tcp' if conn.type == socket.SOCK_STREAM else 'udp'
        if (protocol == 'tcp' and conn.status == psutil.CONN_LISTEN) or (protocol == 'udp' and not conn.raddr):
            found.append((protocol, conn.laddr.ip, conn.laddr.port, conn.pid))
    return found


def import_cost_ms():
    """What "import psutil" adds to a python3 -I start: the medians' difference, in ms."""
    def start(code):
        return median_seconds(lambda: subprocess.run([sys.executable, '-I', '-c', code], check=True), IMPORT_RUNS)
    return (start('import psutil') - start('pass')) * 1000


def compare_with_psutil(listeners, pids):
    """How psutil's view of the sockets of ``pids`` (and their workers) differs from read_listeners'."""
    ours = [item for item in listeners if item['pid'] in pids]
    holders = {}
    for item in ours:
        holders.setdefault((item['protocol'], item['address'], item['port']), set()).add(item['pid'])
    theirs = {}
    for protocol, address, port, pid in psutil_listeners():
        if (protocol, address, port) in holders or pid in pids:
            theirs.setdefault((protocol, address, port), set()).add(pid)
    unshared = [key for key in holders if len(holders[key]) == 1]
    shared = [key for key in holders if len(holders[key]) > 1]
    return {
        'same_endpoints': set(holders) == set(theirs),
        'unshared': len(unshared),
        'unshared_same_pid': sum(1 for key in unshared if theirs.get(key) == holders[key]),
        'shared': len(shared),
        'shared_holders': sum(len(holders[key]) for key in shared),
        'shared_holders_psutil': sum(len(theirs.get(key, set()) & holders[key]) for key in shared),
    }


def median_seconds(action, runs):
    times = []
    for dummy in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_module(name):
    output = subprocess.run(['ansible', 'localhost', '-m', name, '-o'], check=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    if 'SUCCESS' not in output:
        raise RuntimeError('%s failed: %s' % (name, output[:500]))
    return output


def main():
    from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import read_listeners

    ready_read, ready_write = os.pipe()
    children = []
    for index in range(PROCESSES):
        pid = os.fork()
        if pid == 0:
            os.close(ready_read)
            hold_sockets(index, ready_write)
            os._exit(0)
        children.append(pid)
    os.close(ready_write)
    expected = PROCESSES + PREFORK_SERVERS * WORKERS_PER_SERVER
    started = 0
    while started < expected:
        started += len(os.read(ready_read, expected))

    try:
        listeners, complete = read_listeners()
        # The children and the workers they forked.
        family = set(children) | set(item['pid'] for item in listeners if item['ppid'] in children)
        ours = [item for item in listeners if item['pid'] in children]
        oracle = compare_with_psutil(listeners, family)
        import_ms = import_cost_ms()
        ss_lines = subprocess.run(['ss', '-H', '-tulpn'], check=True, stdout=subprocess.PIPE,
                                  universal_newlines=True).stdout.splitlines()
        facts = json.loads(run_module('community.general.listen_ports_facts').split('=>', 1)[1])
        legacy_count = sum(len(facts['ansible_facts'].get(key, [])) for key in ('tcp_listen', 'udp_listen'))

        rows = [
            ('discovery core (read_listeners)', median_seconds(read_listeners, CORE_RUNS), CORE_RUNS, len(listeners)),
            ('ss -H -tulpn', median_seconds(lambda: subprocess.run(['ss', '-H', '-tulpn'], stdout=subprocess.DEVNULL,
                                                                   check=True), CORE_RUNS), CORE_RUNS, len(ss_lines)),
            ('psutil.net_connections()', median_seconds(psutil_listeners, CORE_RUNS), CORE_RUNS,
             len(psutil_listeners())),
            ('port_usage_info (module)', median_seconds(lambda: run_module('qwf.collision_guard.port_usage_info'),
                                                        MODULE_RUNS), MODULE_RUNS, len(listeners)),
            ('listen_ports_facts (module)', median_seconds(lambda: run_module('community.general.listen_ports_facts'),
                                                           MODULE_RUNS), MODULE_RUNS, legacy_count),
        ]
    finally:
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        for item in listeners:
            if item['pid'] in family and item['pid'] not in children:
                try:
                    os.kill(item['pid'], 9)
                except OSError:
                    pass

    ss_time = rows[1][1]
    facts_time = rows[4][1]
    print('Load: %d processes holding %d TCP listeners, %d UDP sockets and %d idle connected sockets '
          '(%d of the listeners found belong to them; owners complete: %s).'
          % (PROCESSES, PROCESSES * TCP_PER_PROCESS, PROCESSES * UDP_PER_PROCESS, PROCESSES * PAIRS_PER_PROCESS * 2,
             len(ours), complete))
    print('')
    print('| what | runs | median | vs ss | vs listen_ports_facts | sockets reported |')
    print('|---|---|---|---|---|---|')
    for name, seconds, runs, count in rows:
        print('| %s | %d | %.3f s | %.2fx | %.3fx | %d |' % (name, runs, seconds, seconds / ss_time,
                                                             seconds / facts_time, count))
    print('')
    print('psutil as an oracle, on the benchmark\'s own sockets (%d pre-fork servers with %d workers each):'
          % (PREFORK_SERVERS, WORKERS_PER_SERVER))
    print('')
    print('| compared with read_listeners | result |')
    print('|---|---|')
    print('| (protocol, address, port) sets | %s |' % ('the same' if oracle['same_endpoints'] else 'DIFFERENT'))
    print('| owner of sockets one process holds | %d of %d the same pid |' % (
        oracle['unshared_same_pid'], oracle['unshared']))
    print('| holders of inherited sockets | psutil names %d of %d (one pid per socket, %d sockets) |'
          % (oracle['shared_holders_psutil'], oracle['shared_holders'], oracle['shared']))
    print('| what `import psutil` adds to a python3 -I start | %.0f ms (median of %d) |' % (import_ms, IMPORT_RUNS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
