"""Prevention benchmark, run as root inside the benchmark's systemd container.

prevention.py --port PORT --service UNIT --evict RUNS RECOVERED P50 P95

Expects SocketBindDeny= for tcp:PORT armed on user.slice (harden with
collision_guard_prevent) and checks it with a probe before measuring. The
reference is a sibling slice with no deny, measured in the same run: squatters'
binds of the registered port, and 10,000 unrelated binds, interleaved. The
--evict figures come from the recovery drill of the same run. Prints tables;
asserts nothing.
"""
import argparse
import ctypes
import os
import socket
import struct
import statistics
import subprocess
import threading
import time

DENY_SLICE = 'user.slice'
# No dash: a dash nests slices, and the reference must sit as deep as user.slice.
FREE_SLICE = 'cgbench.slice'
UNLISTED_PORT = 18080

# A squatter: binds PORT on every IPv4 address and reports errno and how long bind() took.
SQUATTER = '''
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
start = time.perf_counter()
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
    error = 0
except OSError as exc:
    error = exc.errno
print(error, repr(time.perf_counter() - start))
'''

# Unrelated binds, in a worker that stays up so the slice's programs stay as
# they are: for each line "COUNT PORT" of stdin, COUNT times socket, bind to
# 127.0.0.1:PORT (0 = any free port), close; answers the time of the whole loop
# and of the bind() calls alone.
BINDS = '''
import socket, sys, time
clock = time.perf_counter
for line in sys.stdin:
    count, port = map(int, line.split())
    total = binding = 0.0
    for _ in range(count):
        start = clock()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        before = clock()
        s.bind(("127.0.0.1", port))
        binding += clock() - before
        s.close()
        total += clock() - start
    print(repr(total), repr(binding), flush=True)
'''


def transient_argv(slice_name, code, *args):
    return ['systemd-run', '--slice=' + slice_name, '--wait', '--collect', '--quiet', '--pipe',
            '-p', 'DynamicUser=yes', '/usr/bin/python3', '-I', '-c', code] + [str(arg) for arg in args]


def squat(slice_name, port):
    """Run a squatter in a transient unit of SLICE; return (errno, bind() seconds, systemd-run seconds)."""
    start = time.perf_counter()
    out = subprocess.run(transient_argv(slice_name, SQUATTER, port), check=True, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL).stdout.split()
    return int(out[0]), float(out[1]), time.perf_counter() - start


def show(unit, prop):
    return subprocess.run(['systemctl', 'show', '-p', prop, '--value', unit], check=True, capture_output=True, text=True).stdout.strip()


def bind_programs(slice_name):
    """How many cgroup BPF programs run on an IPv4 bind() in SLICE's own cgroup (BPF_PROG_QUERY)."""
    if os.uname().machine != 'x86_64':
        return 'unknown'
    base = '/sys/fs/cgroup/unified' if os.path.isdir('/sys/fs/cgroup/unified') else '/sys/fs/cgroup'
    path = base + show(slice_name, 'ControlGroup')
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ids = (ctypes.c_uint32 * 256)()
        # union bpf_attr.query: target_fd, attach_type (BPF_CGROUP_INET4_BIND), flags, prog_ids, prog_cnt
        attr = ctypes.create_string_buffer(struct.pack('IIIIQI', fd, 8, 0, 0, ctypes.addressof(ids), 256), 120)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syscall(321, 16, attr, 120) != 0:  # x86_64 bpf(BPF_PROG_QUERY)
            return 'unknown (errno %d)' % ctypes.get_errno()
        return struct.unpack_from('I', attr.raw, 24)[0]
    finally:
        os.close(fd)


def pct(values, q):
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * q // 100) - 1)]


class Poller(threading.Thread):
    """A client that asks the service for a page every 5 ms and counts what fails."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.ok, self.failed, self.stop = port, 0, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=1) as conn:
                    conn.sendall(b'GET / HTTP/1.0\r\n\r\n')
                    answered = conn.recv(64).startswith(b'HTTP/1.0 200')
            except OSError:
                answered = False
            self.ok, self.failed = self.ok + answered, self.failed + (not answered)
            time.sleep(0.005)


def errno_name(code):
    return {0: 'bound', 1: 'EPERM', 98: 'EADDRINUSE'}.get(code, 'errno %d' % code)


def probe(port):
    """Measure nothing unless a squatter in the deny slice gets EPERM."""
    code, seconds, dummy = squat(DENY_SLICE, port)
    if code != 1:
        raise SystemExit('prevention is not active: a probe bind of %d from %s got %s, not EPERM' % (port, DENY_SLICE, errno_name(code)))
    return seconds


def cost(opts, label):
    """Unrelated binds in one worker per slice, interleaved; prints table rows."""
    workers = dict((name, subprocess.Popen(transient_argv(name, BINDS), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
                   for name in (DENY_SLICE, FREE_SLICE))
    try:
        for worker in workers.values():  # warm up, and wait until both run
            worker.stdin.write('1000 0\n')
            worker.stdin.flush()
            worker.stdout.readline()
        programs = dict((name, bind_programs(name)) for name in workers)
        for port in (0, UNLISTED_PORT):
            times = dict((name, []) for name in workers)
            for rnd in range(opts.rounds):
                for name in ([DENY_SLICE, FREE_SLICE] if rnd % 2 == 0 else [FREE_SLICE, DENY_SLICE]):
                    workers[name].stdin.write('%d %d\n' % (opts.binds, port))
                    workers[name].stdin.flush()
                    times[name].append([float(word) for word in workers[name].stdout.readline().split()])
            for name in (DENY_SLICE, FREE_SLICE):
                # The least disturbed round of each, and each round's back-to-back pair: what the load
                # of the machine adds shows as a difference between the two ratios.
                loop, binding = [min(row[i] for row in times[name]) for i in (0, 1)]
                base = [min(row[i] for row in times[FREE_SLICE]) for i in (0, 1)]
                paired = statistics.median(mine[0] / other[0] for mine, other in zip(times[name], times[FREE_SLICE]))
                print('| %s | %s | %s | %s | %.1f | %.2f | %.3fx | %.3fx | %.3fx |' % (
                    label, 'port 0' if port == 0 else 'port %d (unlisted)' % port,
                    '%s (deny)' % name if name == DENY_SLICE else '%s (none)' % name, programs[name],
                    loop * 1e3, binding / opts.binds * 1e6, loop / base[0], binding / base[1], paired))
    finally:
        for worker in workers.values():
            worker.stdin.close()
            worker.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--service', required=True)
    parser.add_argument('--evict', nargs=4, required=True, metavar=('RUNS', 'RECOVERED', 'P50', 'P95'))
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--binds', type=int, default=10000)
    parser.add_argument('--rounds', type=int, default=25)
    opts = parser.parse_args()
    unit = opts.service if '.' in opts.service else opts.service + '.service'

    print('prevention: a probe bind() of %d/tcp in %s failed with EPERM in %.1f us' % (opts.port, DENY_SLICE, probe(opts.port) * 1e6))
    # The cost first, from the fewest programs: on some hosts every unit started in
    # the slice attaches one more copy of the program, up to the kernel's 64.
    print('\nCost: %d unrelated binds (socket, bind 127.0.0.1, close) in one worker per slice, %d rounds each, interleaved\n'
          % (opts.binds, opts.rounds))
    print('| when | bind to | slice | bind programs | loop min (ms) | bind() min (us) | loop / none | bind() / none | loop / none, paired p50 |')
    print('|---|---|---|---|---|---|---|---|---|')
    cost(opts, 'after harden')

    # 1 and 3: squatters while the service runs, watched by a client; then with the service stopped.
    rows = []
    pid, restarts = show(unit, 'MainPID'), show(unit, 'NRestarts')
    poller = Poller(opts.port)
    poller.start()
    time.sleep(0.5)
    running = [squat(DENY_SLICE, opts.port) for dummy in range(opts.runs)]
    time.sleep(0.5)
    poller.stop.set()
    poller.join()
    pid_after, restarts_after = show(unit, 'MainPID'), show(unit, 'NRestarts')
    rows.append((DENY_SLICE, 'running', running))
    rows.append((FREE_SLICE, 'running', [squat(FREE_SLICE, opts.port) for dummy in range(opts.runs)]))
    subprocess.run(['systemctl', 'stop', unit], check=True)
    try:
        rows.append((DENY_SLICE, 'stopped', [squat(DENY_SLICE, opts.port) for dummy in range(opts.runs)]))
        rows.append((FREE_SLICE, 'stopped', [squat(FREE_SLICE, opts.port) for dummy in range(opts.runs)]))
    finally:
        subprocess.run(['systemctl', 'start', unit], check=True)

    # The same cost again, after the squatters' transient units.
    cost(opts, 'after %d units' % (4 * opts.runs))

    print('\nSquatters: bind() of %d/tcp as a dynamic user in a transient unit (systemd-run --wait), %d each\n' % (opts.port, opts.runs))
    print('| slice | service | squatter\'s bind | bind() p50 (us) | bind() p95 (us) | systemd-run p50 (s) | systemd-run p95 (s) |')
    print('|---|---|---|---|---|---|---|')
    for slice_name, state, results in rows:
        outcomes = sorted(set(errno_name(code) for code, dummy, dummy in results))
        binds = [sec * 1e6 for dummy, sec, dummy in results]
        walls = [wall for dummy, dummy, wall in results]
        print('| %s | %s | %s | %.1f | %.1f | %.3f | %.3f |' % (
            '%s (deny)' % slice_name if slice_name == DENY_SLICE else '%s (none)' % slice_name, state, ', '.join(outcomes),
            statistics.median(binds), pct(binds, 95), statistics.median(walls), pct(walls, 95)))

    failed_fast = [sec for code, sec, dummy in running]
    denied = sum(code == 1 for code, dummy, dummy in running)
    untouched = not poller.failed and pid == pid_after and restarts == restarts_after
    runs, recovered, p50, p95 = opts.evict
    print('\nPrevention against eviction only (eviction: the recovery drill earlier in this run, prevention off)\n')
    print('| protection | the squatter | stopped in p50 | p95 | service downtime | MainPID |')
    print('|---|---|---|---|---|---|')
    print('| prevention | bind() fails with EPERM (%d of %d) | %.1f us | %.1f us | %s: %d of %d client requests failed, NRestarts %s -> %s | %s -> %s |' % (
        denied, len(running), statistics.median(failed_fast) * 1e6, pct(failed_fast, 95) * 1e6, '0 s' if untouched else 'NOT 0 s',
        poller.failed, poller.ok + poller.failed, restarts, restarts_after, pid, pid_after))
    print('| eviction only | evicted by the service\'s restart (%s of %s) | %s s | %s s | %s s (p50) for the restart, '
          'after however long the squatter held the port | new at every restart |' % (recovered, runs, p50, p95, p50))


if __name__ == '__main__':
    main()
