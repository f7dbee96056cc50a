"""A bare HTTP server on PORT: cg-listen.py PORT."""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'ok\n')


HTTPServer(('0.0.0.0', int(sys.argv[1])), Hello).serve_forever()
