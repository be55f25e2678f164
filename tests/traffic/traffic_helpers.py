"""Helpers for the traffic tests: real `paddle-canary serve` processes and /predict calls."""

from __future__ import annotations

import http.client
import json
import signal
import sys
from pathlib import Path

from paddle_canary import process

MODEL = "risk-score"
STABLE, CANDIDATE = "v1", "v2"
PADDLE_CANARY = [sys.executable, "-m", "paddle_canary.cli"]


class Serving:
    """One `paddle-canary serve` process, stopped by PID."""

    def __init__(self, version: str, log_dir: Path) -> None:
        self.version = version
        self.port = process.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = process.spawn(
            PADDLE_CANARY + ["serve", "--model", MODEL, "--version", version,
                             "--port", str(self.port), "--threads", "1"],
            log_dir / f"serve-{version}-{self.port}.log")
        process.wait_until(lambda: self.proc.poll() is not None or self._healthy(), 60,
                           what=f"serving {version} /health")
        assert self.proc.poll() is None, f"serving {version} exited; see {log_dir}"

    def _healthy(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def kill(self) -> None:
        process.stop_pid(self.proc.pid, signal.SIGKILL, 5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            process.stop_pid(self.proc.pid, signal.SIGTERM, 15)


def predict(url: str, user_id: str | None, features, conn: http.client.HTTPConnection | None = None):
    """POST /predict through ``url``; returns (status, X-Model-Version, body dict)."""
    host_port = url.split("//", 1)[1]
    own = conn is None
    conn = conn or http.client.HTTPConnection(host_port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if user_id:
            headers["X-User-ID"] = user_id
        body = json.dumps({"user_id": user_id or "anonymous", "features": [float(x) for x in features]})
        conn.request("POST", "/predict", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        is_json = (resp.getheader("Content-Type") or "").startswith("application/json")
        return resp.status, resp.getheader("X-Model-Version"), json.loads(data) if is_json else {}
    finally:
        if own:
            conn.close()
