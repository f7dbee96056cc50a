"""A daemon that guards against a second copy of itself with a PID file.

cg-pidfile-daemon.py PORT PIDFILE

It refuses to run ("already running as pid N", exit 1) while PIDFILE names a
live process, as many daemons do. Otherwise it writes its own pid there and
serves PORT. A PID file left by a killed copy, whose pid now belongs to a
stranger, keeps it from ever starting again.
"""
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'ok\n')


def running_pid(path):
    try:
        with open(path) as stream:
            pid = int(stream.read().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def main():
    port, pid_file = int(sys.argv[1]), sys.argv[2]
    pid = running_pid(pid_file)
    if pid is not None:
        sys.exit('cg-pidfile: already running as pid %d (%s)' % (pid, pid_file))
    with open(pid_file, 'w') as stream:
        stream.write('%d\n' % os.getpid())
    HTTPServer(('0.0.0.0', port), Hello).serve_forever()


if __name__ == '__main__':
    main()
