"""A bare UDP receiver, like a syslog relay: it dies if its port is taken."""
import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(('0.0.0.0', int(sys.argv[1])))
while True:
    sock.recvfrom(65535)
