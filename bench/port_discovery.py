"""Benchmark: port discovery against ss and community.general.listen_ports_facts.

Creates 1,000 TCP listeners and 200 UDP sockets across 50 processes, plus
2,000 idle connected TCP sockets, all on 127.0.0.1, then times in one run:

- the discovery core (read_listeners, in process),
- ss -H -tulpn,
- qwf.collision_guard.port_usage_info and community.general.listen_ports_facts,
  each run as a module on this host through `ansible localhost -m`.

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
    os.write(ready, b'.')
    time.sleep(3600)


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
    started = 0
    while started < PROCESSES:
        started += len(os.read(ready_read, PROCESSES))

    try:
        listeners, complete = read_listeners()
        ours = [item for item in listeners if item['pid'] in children]
        ss_lines = subprocess.run(['ss', '-H', '-tulpn'], check=True, stdout=subprocess.PIPE,
                                  universal_newlines=True).stdout.splitlines()
        facts = json.loads(run_module('community.general.listen_ports_facts').split('=>', 1)[1])
        legacy_count = sum(len(facts['ansible_facts'].get(key, [])) for key in ('tcp_listen', 'udp_listen'))

        rows = [
            ('discovery core (read_listeners)', median_seconds(read_listeners, CORE_RUNS), CORE_RUNS, len(listeners)),
            ('ss -H -tulpn', median_seconds(lambda: subprocess.run(['ss', '-H', '-tulpn'], stdout=subprocess.DEVNULL,
                                                                   check=True), CORE_RUNS), CORE_RUNS, len(ss_lines)),
            ('port_usage_info (module)', median_seconds(lambda: run_module('qwf.collision_guard.port_usage_info'),
                                                        MODULE_RUNS), MODULE_RUNS, len(listeners)),
            ('listen_ports_facts (module)', median_seconds(lambda: run_module('community.general.listen_ports_facts'),
                                                           MODULE_RUNS), MODULE_RUNS, legacy_count),
        ]
    finally:
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)

    ss_time = rows[1][1]
    facts_time = rows[3][1]
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
    return 0


if __name__ == '__main__':
    sys.exit(main())
