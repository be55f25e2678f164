"""A real serving process (risk-score v1) for the load generator's tests."""

from __future__ import annotations

import http.client
import signal
import sys

import pytest

from paddle_canary import process
from paddle_canary.registry import Registry, default_root


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.fixture(scope="session")
def serving_v1(tmp_path_factory):
    """URL of a `paddle-canary serve --model risk-score --version v1` process."""
    port = process.free_port()
    proc = process.spawn([sys.executable, "-m", "paddle_canary.cli", "serve", "--model",
                          "risk-score", "--version", "v1", "--port", str(port), "--threads", "1"],
                         tmp_path_factory.mktemp("serving") / "serve.log")
    try:
        process.wait_until(lambda: proc.poll() is not None or _healthy(port), 60,
                           what="serving v1 /health")
        assert proc.poll() is None, "serving v1 exited at start"
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            process.stop_pid(proc.pid, signal.SIGTERM, 15)


@pytest.fixture(scope="session")
def reference_rows():
    return Registry(default_root()).card("risk-score", "v1").reference_inputs()
