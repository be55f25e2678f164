"""Live-test helpers for the alert and dashboard tests: a stand-in for the gateway's release
series, a Prometheus that loads the shipped rules, and plain Prometheus API calls.

The gateway does not export the release series yet (paddle_canary/ops/series.py proposes them):
:class:`ReleaseSeries` serves them from a thread of the test process, in the exposition format,
with the names and labels the rules and the dashboard expect.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from paddle_canary import process
from paddle_canary.localstack.prometheus import PrometheusServer, render_config
from paddle_canary.ops import series
from paddle_canary.ops.alertmanager import with_alerting
from paddle_canary.ops.rules import RULES_FILE


def _label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict) -> str:
    return "{" + ",".join(f'{k}="{_label_value(str(v))}"' for k, v in labels.items()) + "}"


class ReleaseSeries:
    """``/metrics`` with the gateway and release series of :mod:`paddle_canary.ops.series`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, dict] = {}
        self._verdicts: dict[tuple, float] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = owner.exposition().encode() if self.path == "/metrics" else b""
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, model: str, *, weight: int, since: float, stable: str,
            candidate: str | None = None, step_seconds: float | None = None,
            window_wait_seconds: float | None = None) -> None:
        with self._lock:
            self._models[model] = dict(weight=weight, since=since, stable=stable,
                                       candidate=candidate, step=step_seconds,
                                       window=window_wait_seconds)

    def verdict(self, model: str, version: str, weight: int, status: str, at: float) -> None:
        """A step's final verdict, given at unix time ``at``."""
        with self._lock:
            self._verdicts[(model, version, str(weight), status)] = at

    def exposition(self) -> str:
        lines: list[str] = []
        with self._lock:
            models = dict(self._models)
            verdicts = dict(self._verdicts)

        def family(name: str, kind: str, samples: list[tuple[dict, float]]) -> None:
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{_labels(lab)} {val!r}" for lab, val in samples)

        family(series.GATEWAY_WEIGHT, "gauge",
               [({"model": m}, float(s["weight"])) for m, s in models.items()])
        family(series.GATEWAY_WEIGHT_SINCE, "gauge",
               [({"model": m}, float(s["since"])) for m, s in models.items()])
        family(series.GATEWAY_BACKEND_INFO, "gauge",
               [({"model": m, "version": v, "role": role}, 1.0) for m, s in models.items()
                for role, v in (("stable", s["stable"]), ("candidate", s["candidate"])) if v])
        family(series.RELEASE_STEP_SECONDS, "gauge",
               [({"model": m}, float(s["step"])) for m, s in models.items()
                if s["step"] is not None])
        family(series.RELEASE_WINDOW_WAIT, "gauge",
               [({"model": m}, float(s["window"])) for m, s in models.items()
                if s["window"] is not None])
        family(series.RELEASE_VERDICT_TIME, "gauge",
               [(dict(model=m, version=v, weight=w, status=st), at)
                for (m, v, w, st), at in verdicts.items()])
        return "\n".join(lines) + "\n"

    def start(self) -> "ReleaseSeries":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def add_static_target(targets_dir: Path, name: str, address: str, labels: dict | None = None
                      ) -> Path:
    """A file-SD target that is not a serving version (no model/version target labels)."""
    path = Path(targets_dir) / f"{name}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": labels or {}}]))
    tmp.replace(path)
    return path


def start_prometheus(workdir: Path, alertmanager: str | None = None,
                     evaluation_interval_s: float = 1.0) -> PrometheusServer:
    """A real Prometheus (1 s scrape) that loads the shipped rules and, if given, sends alerts
    to ``alertmanager`` (host:port).

    PrometheusServer renders the plain scrape config at start; the alerting part is added by
    ``ops.alertmanager.with_alerting`` and loaded with ``POST /-/reload``.
    """
    server = PrometheusServer(workdir, scrape_interval_s=1.0).start()
    try:
        text = with_alerting(render_config(server.targets_dir, 1.0),
                             [alertmanager] if alertmanager else [], [RULES_FILE],
                             evaluation_interval_s)
        server.config_path.write_text(text)
        api_post(server.url, "/-/reload")
        process.wait_until(lambda: api(server.url, "/api/v1/rules")["groups"], 15,
                           what="Prometheus to load the rules")
    except BaseException:
        server.stop()
        raise
    return server


def api(base_url: str, path: str, params: dict | None = None, timeout: float = 5.0):
    """``data`` of a Prometheus/Alertmanager API answer; raises on an error status."""
    url = base_url.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{url}: HTTP {exc.code}: {exc.read().decode()[:500]}") from None
    if isinstance(body, dict) and "status" in body:
        if body["status"] != "success":
            raise AssertionError(f"{url}: {body}")
        return body["data"]
    return body


def api_post(base_url: str, path: str) -> None:
    req = urllib.request.Request(base_url.rstrip("/") + path, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.status != 200:
            raise AssertionError(f"POST {path}: {resp.status}")


class ServingStandIn:
    """A serving process' ``/metrics`` without a model: the real ``ServingMetrics`` series,
    driven by the test (``.metrics.scored(...)``, ``.failed(...)``), served from a thread."""

    def __init__(self, model: str, version: str) -> None:
        from paddle_canary.serving.metrics import CONTENT_TYPE, ServingMetrics

        self.model, self.version = model, version
        self.metrics = ServingMetrics(model, version, "stand-in", "cpu")
        metrics = self.metrics

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = metrics.exposition() if self.path == "/metrics" else b""
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "ServingStandIn":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
