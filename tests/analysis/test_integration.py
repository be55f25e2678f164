"""End to end: real serving processes (Paddle Inference) getting real traffic, a real Prometheus
scraping them every second, the judge polled every second over the growing window.

Each broken candidate fails on the right gate with a reason naming it; an A/A pair (v1 against a
copy of v1 under another version label) passes; a Prometheus stopped mid-analysis gives
inconclusive. Traffic is split 50/50 by our own loop, in batches of reference rows.
"""

from __future__ import annotations

import time

import pytest
from analysis_live import wait_scraped
from analysis_serving import BROKEN, MODEL, Serving, Traffic, copy_as_version, poll

from paddle_canary.analysis import GateConfig, PrometheusProvider, analyze, thresholds_for
from paddle_canary.localstack.prometheus import PrometheusServer
from paddle_canary.registry import Registry

pytestmark = pytest.mark.slow

ROWS = Registry().card(MODEL, "v1").reference_inputs()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One Prometheus and one stable v1 for the module; stopped by PID at the end."""
    root = tmp_path_factory.mktemp("analysis-it")
    prom = PrometheusServer(root / "prometheus", scrape_interval_s=1.0).start()
    stable = None
    try:
        stable = Serving(root, "v1").wait_ready()
        prom.add_target(MODEL, "v1", [stable.address])
        yield root, prom, stable
    finally:
        if stable:
            stable.stop()
        prom.stop()


def start_candidate(stack, version, registry):
    root, prom, stable = stack
    cand = Serving(root, version, registry=registry).wait_ready()
    prom.add_target(MODEL, version, [cand.address])
    provider = PrometheusProvider(prom.url)
    for v in ("v1", version):
        wait_scraped(provider, f'up{{model="{MODEL}",version="{v}"}}', 1.0, timeout=20)
    return cand, provider


def run_scenario(stack, version, registry, config, until_s, stop_on=("fail",), batch=40):
    root, prom, stable = stack
    cand, provider = start_candidate(stack, version, registry)
    try:
        start = time.time()
        with Traffic({stable: 0.5, cand: 0.5}, ROWS, batch=batch):
            verdict, elapsed, _ = poll(
                lambda: analyze(provider, MODEL, "v1", version, config, start=start),
                until_s=until_s, stop_on=stop_on)
    finally:
        cand.stop()
        prom.remove_target(MODEL, version)
    return verdict, elapsed


@pytest.mark.parametrize("version, gate, batch", [
    ("bad-shift", "score_distribution", 40),
    ("bad-reject", "rejection_rate", 40),
    # ~50 ms a row: single-row requests, as users send them (a batch of 40 would hold the
    # serving event loop for 2 s at a time, and its /metrics scrapes would time out)
    ("bad-slow", "latency_p95", 1),
    ("bad-nan", "errors", 40),
])
def test_broken_candidate_fails_on_the_right_gate(stack, version, gate, batch):
    verdict, elapsed = run_scenario(stack, version, BROKEN, thresholds_for(MODEL), until_s=20,
                                    batch=batch)
    assert verdict.status == "fail", verdict.reason
    assert gate in verdict.failed_gates(), verdict.reason
    assert verdict.gate(gate).reason.startswith(f"{gate} fail:")
    assert gate in verdict.reason


def test_aa_passes(stack, tmp_path):
    registry = copy_as_version(tmp_path / "registry")
    verdict, elapsed = run_scenario(stack, "v1-copy", registry, thresholds_for(MODEL),
                                    until_s=30, stop_on=("fail", "pass"))
    assert verdict.status == "pass", verdict.reason


def test_prometheus_stopped_mid_analysis_is_inconclusive(stack, tmp_path):
    root, _, stable = stack
    # a Prometheus of its own, so the module's one keeps running for the other tests
    prom = PrometheusServer(tmp_path / "prom", scrape_interval_s=1.0).start()
    cand = None
    try:
        registry = copy_as_version(tmp_path / "registry")
        cand = Serving(root, "v1-copy", registry=registry).wait_ready()
        prom.add_target(MODEL, "v1", [stable.address])
        prom.add_target(MODEL, "v1-copy", [cand.address])
        provider = PrometheusProvider(prom.url, timeout=2, retries=0)
        for v in ("v1", "v1-copy"):
            wait_scraped(provider, f'up{{model="{MODEL}",version="{v}"}}', 1.0, timeout=20)
        config = GateConfig.from_dict(Registry().model_defaults(MODEL)["gates"])
        start = time.time()
        with Traffic({stable: 0.5, cand: 0.5}, ROWS):
            wait_scraped_any = analyze(provider, MODEL, "v1", "v1-copy", config, start=start)
            assert wait_scraped_any.status != "fail"
            prom.stop()
            verdict = analyze(provider, MODEL, "v1", "v1-copy", config, start=start)
    finally:
        if cand:
            cand.stop()
        prom.stop()
    assert verdict.status == "inconclusive"
    assert "unreachable" in verdict.reason
    assert all(g.status == "inconclusive" for g in verdict.gates)
