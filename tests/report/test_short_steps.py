"""The warning for steps too short to reach min_samples at current traffic (issue 17, item 8)."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import report_journal as rj
from test_report_prometheus import scraped  # noqa: F401

from paddle_canary import process
from paddle_canary.report.estimate import scored_rows_per_s, short_steps

PLAN = {"model": "risk-score", "steps": [5, 25, 50, 100], "step_interval_s": 30,
        "gates": {"min_samples": 200}}


def test_steps_that_cannot_reach_min_samples_are_named_with_their_rows():
    text = short_steps(PLAN, rows_per_s=20.0)
    # 20 rows/s x 30 s: 5 % -> 30 rows, 25 % -> 150, 50 % -> 300, 100 % -> 600
    assert text.startswith("short steps: at ~20 scored rows/s now, 5 % (~30), 25 % (~150) see")
    assert "min_samples 200 in 30 s" in text and "50 %" not in text


def test_no_warning_with_enough_rows_or_without_an_estimate():
    assert short_steps(PLAN, rows_per_s=200.0) is None
    assert short_steps(PLAN, rows_per_s=None) is None
    assert short_steps({**PLAN, "gates": {}}, rows_per_s=1.0) is None


def test_prometheus_down_gives_no_estimate_not_an_error():
    assert scored_rows_per_s(f"http://127.0.0.1:{process.free_port()}", "risk-score") is None


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
def test_current_traffic_is_read_from_a_real_prometheus(scraped):
    """Two exporters of the real serving series, scraped every second; ~50 rows/s scored."""
    url, metrics = scraped
    fed = {"rows": 0}
    start = time.monotonic()

    def feed():
        for m in metrics.values():
            m.scored(np.full(5, 0.2), ["approve"] * 5, 0.01)
        fed["rows"] += 10
        return time.monotonic() - start > 8

    process.wait_until(feed, 30, interval=0.2, what="8 s of traffic")
    # the rate over the last 5 s (the default 2 min window would read the 8 s of traffic as
    # spread over 2 min)
    rate = process.wait_until(lambda: scored_rows_per_s(url, rj.MODEL, window_s=5), 10,
                              interval=0.5, what="a rate from Prometheus")
    assert rate == pytest.approx(fed["rows"] / (time.monotonic() - start), rel=0.6)
    assert scored_rows_per_s(url, "no-such-model") is None
