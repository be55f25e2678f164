"""A misbehaving backend for fallback tests: ``python stub_upstream.py PORT MODE``.

MODE ``503``: every request answered 503 (with X-Model-Version: broken).
MODE ``hang``: reads the request, never answers.
"""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, MODE = int(sys.argv[1]), sys.argv[2]
forever = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        if MODE == "hang":
            forever.wait()
        body = b'{"error":"unavailable"}'
        self.send_response(503)
        self.send_header("X-Model-Version", "broken")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
