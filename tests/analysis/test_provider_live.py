"""PrometheusProvider against a real Prometheus scraping stand-in serving processes (the real
ServingMetrics series): exact window counts, restarts, and every way of having no data."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from analysis_live import wait_scraped

from paddle_canary import telemetry
from paddle_canary.analysis import GateConfig, NoData, PrometheusProvider, analyze
from paddle_canary.analysis.provider import ENV_URL
from paddle_canary.errors import UserError

pytestmark = pytest.mark.slow

OK = 'sum(paddle_canary_requests_total{model="m",version="%s"})'


def test_window_counts_are_exactly_what_happened_inside_the_window(prometheus, exporters):
    exp = exporters("m", "v1")
    prometheus.add_target("m", "v1", [exp.address])
    provider = PrometheusProvider(prometheus.url)
    for _ in range(5):                       # before the window: must not be counted
        exp.scored([0.9])
    wait_scraped(provider, OK % "v1", 5.0)
    start = time.time()
    for s in [0.01, 0.02, 0.3, 0.72, 0.99, 0.99]:
        exp.scored([s], seconds=0.004)
    exp.scored([0.04, 0.6], seconds=0.12)    # a batch of two rows, one slow request
    exp.failed(seconds=0.05)
    exp.refused()
    wait_scraped(provider, OK % "v1", 14.0)
    end = time.time()
    w = provider.window_counts("m", "v1", start=start, end=end)
    assert (w.requests, w.errors, w.invalid, w.served) == (9.0, 1.0, 1.0, 8.0)
    assert (w.approve, w.reject) == (4.0, 4.0)
    assert w.score_count == 8.0
    assert w.score_sum == pytest.approx(0.01 + 0.02 + 0.3 + 0.72 + 0.99 + 0.99 + 0.04 + 0.6)
    assert w.score_buckets[0] == 3.0         # 0.01, 0.02, 0.04 <= 0.05
    assert w.score_buckets[telemetry.SCORE_BUCKETS.index(1.0)] == 2.0
    lat = dict(zip(telemetry.LATENCY_BUCKETS, w.latency_buckets))
    assert lat[0.004] == 6.0 and lat[0.05] == 1.0 and lat[0.15] == 1.0
    assert w.latency_count == 8.0            # refused requests are not timed
    # the same window asked again later gives the same answer (the @ modifier pins it)
    exp.scored([0.5])
    wait_scraped(provider, OK % "v1", 15.0)
    assert provider.window_counts("m", "v1", start=start, end=end) == w


def test_a_restarted_serving_process_never_gives_negative_counts(prometheus, exporters):
    first = exporters("m", "v1")
    port = first.port
    prometheus.add_target("m", "v1", [first.address])
    provider = PrometheusProvider(prometheus.url)
    wait_scraped(provider, OK % "v1", 0.0)
    start = time.time()
    for _ in range(30):
        first.scored([0.1])
    wait_scraped(provider, OK % "v1", 30.0)
    first.stop()                             # restart on the same port: counters back to 0
    second = exporters("m", "v1", port=port)
    for _ in range(4):
        second.scored([0.1])
    wait_scraped(provider, OK % "v1", 4.0)
    w = provider.window_counts("m", "v1", start=start, end=time.time())
    assert w.requests == 34.0                # both lives counted exactly, none negative
    assert all(x >= 0 for x in (*w.score_buckets, *w.latency_buckets, w.approve, w.reject))
    assert w.restarts == 1.0                 # and the judge is told the process restarted


def test_no_series_unreachable_and_stopped_prometheus_are_no_data(prometheus, exporters):
    provider = PrometheusProvider(prometheus.url)
    none = provider.window_counts("m", "never-deployed", window_s=30)
    assert isinstance(none, NoData) and "no series" in none.reason
    assert "no scrape target" in none.reason
    prometheus.add_target("m", "down", ["127.0.0.1:1"])       # nothing listens there
    wait_scraped(provider, 'up{version="down"}', 0.0)
    down = provider.window_counts("m", "down", window_s=30)
    assert isinstance(down, NoData) and "up=0" in down.reason

    gone = PrometheusProvider("http://127.0.0.1:1", timeout=1, retries=0)
    assert not gone.is_online()
    nd = gone.window_counts("m", "v1", window_s=30)
    assert isinstance(nd, NoData) and "unreachable" in nd.reason


def test_prometheus_stopped_mid_analysis_gives_inconclusive(prometheus, exporters):
    base, cand = exporters("m", "v1"), exporters("m", "v2")
    prometheus.add_target("m", "v1", [base.address])
    prometheus.add_target("m", "v2", [cand.address])
    provider = PrometheusProvider(prometheus.url, timeout=2, retries=0)
    start = time.time()
    for i in range(20):
        base.scored([0.1 * (i % 10)])
        cand.scored([0.1 * (i % 10)])
    wait_scraped(provider, OK % "v2", 20.0)
    cfg = GateConfig.from_dict(None, {"min_samples": 10})
    first = analyze(provider, "m", "v1", "v2", cfg, start=start)
    assert first.status != "pass"            # 20 rows: nothing can pass yet, and no fail
    prometheus.stop()
    verdict = analyze(provider, "m", "v1", "v2", cfg, start=start)
    assert verdict.status == "inconclusive"
    assert "unreachable" in verdict.reason
    assert all(g.status == "inconclusive" for g in verdict.gates)


def test_connection_settings_from_environment_or_airflow_connection(monkeypatch):
    monkeypatch.setenv(ENV_URL, "http://127.0.0.1:9999")
    assert PrometheusProvider.from_env().url == "http://127.0.0.1:9999"
    monkeypatch.delenv(ENV_URL)
    with pytest.raises(UserError, match=ENV_URL):
        PrometheusProvider.from_env()
    conn = SimpleNamespace(host="prom.internal", port=9090, schema="https")
    assert PrometheusProvider.from_connection(conn).url == "https://prom.internal:9090"
    conn = SimpleNamespace(host="http://10.0.0.5", port=None, schema=None)
    assert PrometheusProvider.from_connection(conn).url == "http://10.0.0.5"
    with pytest.raises(UserError):
        PrometheusProvider.from_connection(SimpleNamespace(host="", port=1, schema=None))
    with pytest.raises(UserError):
        PrometheusProvider("localhost:9090")
