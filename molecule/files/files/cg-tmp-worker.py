"""A service that keeps its scratch output in /tmp/workdir/out.txt.

cg-tmp-worker.py NAME PORT STATS

It listens on PORT (its registered port) and works in /tmp/workdir, as a
scratch directory, where audit sees it. In a loop it writes NAME to
/tmp/workdir/out.txt, pauses a few milliseconds and reads the file back. A
read that is not NAME is a mismatch: another process wrote the same file.
Cumulative counts go to STATS (outside /tmp) as JSON, atomically.
"""
import json
import os
import socket
import sys
import time

WORKDIR = '/tmp/workdir'


def save(path, counts):
    tmp = path + '.tmp'
    with open(tmp, 'w') as stream:
        json.dump(counts, stream)
    os.replace(tmp, path)


def main():
    name, port, stats = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('0.0.0.0', port))
    listener.listen(8)
    os.makedirs(WORKDIR, exist_ok=True)
    os.chdir(WORKDIR)
    counts = {'pid': os.getpid(), 'ops': 0, 'mismatches': 0, 'last_seen': ''}
    saved = 0.0
    while True:
        os.makedirs(WORKDIR, exist_ok=True)
        with open(os.path.join(WORKDIR, 'out.txt'), 'w') as stream:
            stream.write(name)
        time.sleep(0.005)
        try:
            with open(os.path.join(WORKDIR, 'out.txt')) as stream:
                seen = stream.read()
        except FileNotFoundError:
            seen = ''
        counts['ops'] += 1
        if seen != name:
            counts['mismatches'] += 1
            counts['last_seen'] = seen
        now = time.time()
        if now - saved >= 0.2:
            counts['at'] = now
            save(stats, counts)
            saved = now
        time.sleep(0.005)


if __name__ == '__main__':
    main()
