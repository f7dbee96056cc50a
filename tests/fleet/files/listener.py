"""Listeners and squatters of every kind the collection must handle: listener.py KIND PORT."""
import os
import signal
import socket
import sys
import time

kind, port = sys.argv[1], int(sys.argv[2])
if kind in ('plain', 'stubborn', 'forked'):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('0.0.0.0', port))
elif kind == 'loopback':
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', port))
elif kind in ('dual', 'v6only'):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(kind == 'v6only'))
    sock.bind(('::', port))
elif kind == 'udp':
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('0.0.0.0', port))
elif kind == 'udp6':
    # The wildcard address: containers often have no IPv6 address, not even ::1.
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(('::', port))
else:
    sys.exit('unknown kind %r' % kind)

if sock.type == socket.SOCK_STREAM:
    sock.listen()
if kind == 'stubborn':
    # Only SIGKILL ends it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if kind == 'forked':
    # Parent and child now hold the same listening socket.
    os.fork()
time.sleep(3600)
