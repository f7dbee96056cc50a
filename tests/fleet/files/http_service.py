"""A bare HTTPServer like the SMS gateway of the incident: it dies if its port is taken.

http_service.py PORT [ADDRESS]: ADDRESS "::" serves IPv6 and IPv4 on one socket.
While the file named by $FAIL_WHILE_EXISTS exists, it exits 1 at once: a start that keeps failing.
"""
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'ok\n')


class DualStackServer(HTTPServer):
    address_family = socket.AF_INET6


if os.path.exists(os.environ.get('FAIL_WHILE_EXISTS', '/nonexistent')):
    sys.exit('failing on purpose while %s exists' % os.environ['FAIL_WHILE_EXISTS'])
address = sys.argv[2] if len(sys.argv) > 2 else '0.0.0.0'
server_class = DualStackServer if ':' in address else HTTPServer
server_class((address, int(sys.argv[1])), Hello).serve_forever()
