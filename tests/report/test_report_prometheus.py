"""The report's per-version charts from a real Prometheus scraping the real serving series.

Two in-process exporters expose :class:`ServingMetrics` (the serving process's own series) for
a stable and a candidate version; a real Prometheus scrapes them every second. The journal has
no judge looks, so P95, rejection rate and score histograms must all come from Prometheus.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import report_journal as rj

from paddle_canary import process, telemetry
from paddle_canary.settings import Settings
from paddle_canary.report.html import write_report
from paddle_canary.serving.metrics import ServingMetrics

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed"),
]


def _exporter(metrics: ServingMetrics) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = metrics.exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", process.free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def scraped(tmp_path):
    """(prometheus url, {version: ServingMetrics}) with both versions scraped every second."""
    metrics = {v: ServingMetrics(rj.MODEL, v, "hash-" + v, "cpu") for v in (rj.STABLE, rj.CANDIDATE)}
    servers = [_exporter(m) for m in metrics.values()]
    port = process.free_port()
    targets = ", ".join(f'"127.0.0.1:{s.server_address[1]}"' for s in servers)
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s, scrape_timeout: 800ms}\n"
                      "scrape_configs:\n"
                      f"  - job_name: report-test\n    static_configs: [{{targets: [{targets}]}}]\n")
    proc = process.spawn(["prometheus", f"--config.file={config}",
                          f"--storage.tsdb.path={tmp_path / 'data'}",
                          f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                         tmp_path / "prometheus.log")
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_until(lambda: _query(url, 'count(up{job="report-test"} == 1)') == 2,
                           30, what="Prometheus scraping both exporters")
        yield url, metrics
    finally:
        process.stop_pid(proc.pid)
        for s in servers:
            s.shutdown()
            s.server_close()


def _query(url: str, q: str) -> float | None:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": q}),
                                timeout=2) as resp:
        result = json.loads(resp.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_per_version_charts_come_from_prometheus(tmp_path, scraped):
    url, metrics = scraped
    rng = np.random.default_rng(7)
    start = time.time()
    rows = {rj.STABLE: 0, rj.CANDIDATE: 0}
    # stable: fast, low scores; candidate: slow, higher scores (more rejections)
    shapes = {rj.STABLE: (2.0, 5.0, 0.008), rj.CANDIDATE: (4.0, 3.0, 0.045)}

    scored = f'sum({telemetry.SCORE}_count{{model="{rj.MODEL}"}})'

    def feed():
        for version, (a, b, seconds) in shapes.items():
            for _ in range(20):
                scores = rng.beta(a, b, size=5)
                metrics[version].scored(scores, ["reject" if s >= 0.5 else "approve"
                                                 for s in scores], seconds)
                rows[version] += 5
        return time.time() - start > 3  # several scrapes with traffic in them

    process.wait_until(feed, 30, interval=0.5, what="a few seconds of traffic")
    process.wait_until(lambda: _query(url, scored) == sum(rows.values()), 10,
                       what="Prometheus scraping the last rows")
    end = time.time()
    plan = rj.plan("prom-run")
    events = [{"ts": start - 1, "event": "plan", "plan": plan},
              {"ts": start, "event": "weight", "weight": 50},
              {"ts": end, "event": "finished", "outcome": "unfinished"}]
    paths = Settings(home=tmp_path / "stack", registry_root=tmp_path, prometheus_url=url)

    html_path = write_report(plan, events, paths)

    summary = json.loads(html_path.with_suffix(".json").read_text())
    m = summary["metrics"]
    assert m["note"] is None
    assert m["p95_source"] == "prometheus" and m["rejection_source"] == "prometheus"
    # increase() over the window sees (nearly) every row each version scored
    for version in (rj.STABLE, rj.CANDIDATE):
        assert m["score_rows"][version] == pytest.approx(rows[version], rel=0.2)
    page = html_path.read_text()
    hist = page[page.index('aria-label="Score distribution'):]
    hist = hist[:hist.index("</svg>")]
    assert f"{rj.STABLE} (stable)" in hist and f"{rj.CANDIDATE} (candidate)" in hist
    assert "no data" not in hist
    for title in ("P95 latency", "Rejection rate"):
        chart = page[page.index(f'aria-label="{title}'):]
        chart = chart[:chart.index("</svg>")]
        assert "<polyline" in chart and "no data" not in chart
