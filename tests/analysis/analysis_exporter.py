"""A stand-in serving process for the provider tests: the real ``ServingMetrics`` series,
driven over HTTP instead of by a model.

    python analysis_exporter.py MODEL VERSION PORT
    GET  /metrics                                   the exposition
    POST /observe {"scores": [...], "seconds": s}   a scored request (decision: score >= 0.5)
    POST /observe {"outcome": "error", "seconds": s} a failed request
    POST /observe {"outcome": "invalid_input"}      a refused request
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from paddle_canary.serving.metrics import ServingMetrics


def main() -> None:
    model, version, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    metrics = ServingMetrics(model, version, "test-hash", "cpu")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/metrics":
                self._send(200, metrics.exposition())
            else:
                self._send(404, b"not found")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            req = json.loads(self.rfile.read(length) or b"{}")
            outcome = req.get("outcome", "ok")
            if outcome == "ok":
                scores = np.asarray(req["scores"], dtype=float)
                metrics.scored(scores, ["reject" if s >= 0.5 else "approve" for s in scores],
                               float(req["seconds"]))
            elif outcome == "error":
                metrics.failed(float(req["seconds"]))
            else:
                metrics.refused()
            self._send(200, b"ok")

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
