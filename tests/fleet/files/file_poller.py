"""A hostile neighbour's poller: asks ports for files, over and over.

file_poller.py OUT SECONDS PORTS PATH...

PORTS is "registry" (every entry of /etc/collision-guard/registry.json) or a
list such as "8798/tcp,5514/udp". For SECONDS (0: until SIGTERM) it connects
to each port on its registered address or the loopback, asks for each PATH as
an HTTP GET (a datagram for UDP), and keeps every byte any port answers. OUT
gets a JSON summary per port: connections made, connections that got no
answer (a squatter that never serves), bytes received, and the distinct
answers (as Latin-1 text), so a test can look in them for the contents of files.
"""
import json
import signal
import socket
import sys
import time

out, seconds, ports, paths = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
if ports == 'registry':
    with open('/etc/collision-guard/registry.json') as handle:
        registry = json.load(handle)['registry']
    targets = sorted(set((entry['port'], entry['protocol'], entry.get('address') or '127.0.0.1') for entry in registry))
else:
    targets = [(int(item.split('/')[0]), item.split('/')[1], '127.0.0.1') for item in ports.split(',')]
summary = dict(('%s/%s' % (port, protocol), {'connections': 0, 'silent': 0, 'bytes': 0, 'answers': []})
               for port, protocol, dummy in targets)
stopping = []
signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))


def ask(port, protocol, address, request):
    """What the port answers to ``request``: bytes, or None when nothing listens there."""
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol == 'tcp' else socket.SOCK_DGRAM
    with socket.socket(family, kind) as sock:
        sock.settimeout(0.1)
        try:
            sock.connect((address, port))
            sock.send(request)
        except socket.timeout:
            return b''  # a full backlog: something holds the port and never accepts
        except OSError:
            return None
        received = b''
        try:
            while len(received) < 1 << 20:
                chunk = sock.recv(65536)
                received += chunk
                if not chunk or protocol == 'udp':
                    break
        except socket.timeout:
            pass
        except OSError:
            return None if protocol == 'udp' else received  # UDP: refused, nothing bound there
        return received


end = time.monotonic() + seconds if seconds else None
while not stopping and (end is None or time.monotonic() < end):
    for port, protocol, address in targets:
        record = summary['%s/%s' % (port, protocol)]
        # One datagram a round: a UDP port that never answers costs a whole timeout each time.
        for path in paths if protocol == 'tcp' else paths[:1]:
            answer = ask(port, protocol, address, ('GET %s HTTP/1.0\r\n\r\n' % path).encode())
            if answer is None:
                continue  # nothing listens at this moment
            record['connections'] += 1
            record['silent'] += 0 if answer else 1
            record['bytes'] += len(answer)
            text = answer.decode('latin-1')
            if text and text not in record['answers']:
                record['answers'].append(text)
    time.sleep(0.02)
with open(out, 'w') as handle:
    json.dump(summary, handle)
