"""Paired analysis end to end: a candidate served with ``--shadow v1`` (real Paddle models),
a real Prometheus scraping it every second, ``analyze`` reading the paired series and the
judge deciding on them; without them (another baseline) it falls back to the unpaired ones."""

from __future__ import annotations

import time

import pytest
from analysis_live import wait_scraped
from analysis_serving import BROKEN, MODEL, ShadowServing, Serving, Traffic

from paddle_canary.analysis import PrometheusProvider, analyze, thresholds_for
from paddle_canary.localstack.prometheus import PrometheusServer
from paddle_canary.registry import Registry

pytestmark = pytest.mark.slow
ROWS = Registry().card(MODEL, "v1").reference_inputs()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired-it")
    prom = PrometheusServer(root / "prometheus", scrape_interval_s=1.0).start()
    stable = None
    try:
        stable = Serving(root, "v1").wait_ready()
        prom.add_target(MODEL, "v1", [stable.address])
        yield root, prom, stable, PrometheusProvider(prom.url)
    finally:
        if stable:
            stable.stop()
        prom.stop()


def judged(stack, version, registry, until_s, stop_on):
    """Serve ``version`` with a v1 shadow, send traffic 50/50, look every second building on
    the previous look; return the last verdict and the counts it was read from."""
    root, prom, stable, provider = stack
    cand = ShadowServing(root, version, "v1", registry=registry).wait_ready()
    prom.add_target(MODEL, version, [cand.address])
    try:
        for v in ("v1", version):
            wait_scraped(provider, f'up{{model="{MODEL}",version="{v}"}}', 1.0, timeout=20)
        start = time.time()
        config = thresholds_for(MODEL)
        verdict = None
        with Traffic({stable: 0.5, cand: 0.5}, ROWS, batch=20):
            t0 = time.monotonic()
            while True:
                verdict = analyze(provider, MODEL, "v1", version, config, start=start,
                                  previous=verdict and verdict.to_dict())
                if verdict.status in stop_on or time.monotonic() - t0 > until_s:
                    break
                time.sleep(1.0)
        counts = provider.window_counts(MODEL, version, start=start, end=verdict.window_end,
                                        paired_with="v1")
        unpaired = provider.window_counts(MODEL, version, start=start, end=verdict.window_end,
                                          paired_with="v0")
    finally:
        cand.stop()
        prom.remove_target(MODEL, version)
    return verdict, counts, unpaired


def test_a_good_retrain_passes_on_paired_series(stack):
    verdict, counts, unpaired = judged(stack, "v2", None, until_s=60, stop_on=("fail", "pass"))
    assert verdict.status == "pass", verdict.reason
    rr = verdict.gate("rejection_rate")
    assert rr.details["paired"] == 1.0 and "paired:" in rr.reason
    assert verdict.gate("score_distribution").details["paired"] == 1.0
    # the window holds the paired rows; another baseline's shadow would not count
    assert counts.paired is not None and counts.paired.shadow_version == "v1"
    assert 0 < counts.paired.rows <= counts.rows
    assert unpaired.paired is None


def test_a_candidate_rejecting_more_fails_on_the_paired_flips(stack):
    verdict, counts, _ = judged(stack, "bad-reject", BROKEN, until_s=30, stop_on=("fail",))
    assert verdict.status == "fail", verdict.reason
    assert "rejection_rate" in verdict.failed_gates()
    assert verdict.gate("rejection_rate").details["paired"] == 1.0
    assert counts.paired.approve_to_reject > 0 and counts.paired.reject_to_approve == 0
