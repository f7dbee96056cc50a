"""A TCP service without SO_REUSEADDR that closes each connection first.

Each closed connection leaves a TIME_WAIT socket on the service's port for 60
seconds, and while one is left, binding the port without SO_REUSEADDR fails:
the restart of such a service fails by itself, with no squatter at all.
"""
import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(('0.0.0.0', int(sys.argv[1])))
sock.listen()
while True:
    connection, dummy = sock.accept()
    connection.sendall(b'ok\n')
    connection.close()
