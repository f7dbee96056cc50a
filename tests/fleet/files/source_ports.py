"""Print the source ports the kernel hands out to outgoing connections, until it has none left.

Usage: source_ports.py LISTEN_PORT. Every connection goes to one listener on
127.0.0.1:LISTEN_PORT, a port outside the ephemeral range the test sets, so
the kernel cannot give one source port twice. The connections close with a
reset, so no port is left in TIME_WAIT.
"""
import socket
import struct
import sys

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(('127.0.0.1', int(sys.argv[1])))
listener.listen(128)

held, ports = [], []
for _ in range(128):
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    try:
        client.connect(listener.getsockname())
    except OSError:
        client.close()
        break
    held.append(client)
    ports.append(client.getsockname()[1])
print(' '.join(str(port) for port in sorted(ports)))
