"""Header limits of the serving process (issue #9, item 10), with raw sockets on 127.0.0.1: a
1 MB header used to be accepted and a slow-header connection kept open indefinitely."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from serve_helpers import Serve

pytestmark = pytest.mark.slow
TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory, registry_root):
    s = Serve(tmp_path_factory.mktemp("limits"), "risk-score", "v1", "--header-timeout",
              str(TIMEOUT_S), registry_root=registry_root).ready()
    yield s
    s.stop()


def exchange(port: int, parts: list[bytes], gap_s: float = 0.0, read_s: float = 10.0
             ) -> tuple[bytes, float, bool]:
    """Send ``parts`` (``gap_s`` apart), then read until the server closes. Returns what came
    back, the seconds until the close, and whether the server cut the upload short."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=read_s)
    t0 = time.monotonic()
    cut = False
    data = b""
    try:
        for part in parts:
            try:
                sock.sendall(part)
            except OSError:       # the server closed while we were still sending
                cut = True
                break
            time.sleep(gap_s)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                cut = True
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    return data, time.monotonic() - t0, cut


def still_serving(server) -> None:
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("headers", [
    b"X-Big: " + b"a" * (1 << 20) + b"\r\n",            # one 1 MB header
    b"X-Big: " + b"a" * 20_000 + b"\r\n",               # just over the 16 KiB limit
    b"X-A: b\r\n" * 3_000,                              # many small ones, 27 KB in all
])
def test_oversized_headers_are_refused_with_431_and_the_connection_closed(server, headers):
    data, seconds, cut = exchange(
        server.port, [b"POST /predict HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"])
    assert data.startswith(b"HTTP/1.1 431 ") or (cut and not data), data[:100]
    assert seconds < 5
    still_serving(server)


def test_headers_under_the_limit_are_served(server):
    data, _, _ = exchange(server.port, [b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close"
                                        b"\r\nX-Trace: " + b"a" * 8_000 + b"\r\n\r\n"])
    assert data.startswith(b"HTTP/1.1 200 ")


def test_slow_headers_are_cut_after_the_header_timeout(server):
    """A header line every 0.2 s, forever (slowloris): 408 and closed after ~1 s."""
    data, seconds, _ = exchange(server.port, [b"GET /health HTTP/1.1\r\n"]
                                + [b"X-Slow: 1\r\n"] * 50, gap_s=0.2)
    assert data.startswith(b"HTTP/1.1 408 ") or not data
    assert TIMEOUT_S * 0.9 <= seconds < TIMEOUT_S + 3
    still_serving(server)


def test_a_connection_that_never_sends_is_closed(server):
    data, seconds, _ = exchange(server.port, [])
    assert data.startswith(b"HTTP/1.1 408 ")
    assert TIMEOUT_S * 0.9 <= seconds < TIMEOUT_S + 3


def test_keep_alive_requests_each_get_the_full_timeout(server):
    """The timer covers one request's headers; a keep-alive connection making requests for
    longer than the timeout is fine."""
    with httpx.Client(base_url=server.url, timeout=5) as client:
        t0 = time.monotonic()
        while time.monotonic() - t0 < TIMEOUT_S * 2.5:
            assert client.get("/health").status_code == 200
            time.sleep(0.3)
