"""Query text and counter arithmetic, without a Prometheus."""

from __future__ import annotations

import math

import pytest

from paddle_canary import telemetry
from paddle_canary.analysis import promql


def test_window_queries_pin_the_window_with_the_at_modifier():
    q = promql.window_queries("risk-score", "v2", 1000.0, 1060.5)
    assert "[60500ms] @ 1060.500" in q["end"]
    assert q["start"].endswith("@ 1000.000")
    assert 'model="risk-score",version="v2"' in q["start"]
    for name in promql.METRICS:
        assert f'"{promql.NAME_LABEL}", "{name}"' in q["resets"]
    assert promql.samples_query("x", "m", "v", 0, 2.5) == 'x{model="m",version="v"}[2500ms] @ 2.500'
    with pytest.raises(ValueError):
        promql.window_queries("m", "v", 10, 10)


def test_label_values_are_quoted():
    assert promql.selector('a"b', "c\\d") == '{model="a\\"b",version="c\\\\d"}'


def L(name, **labels):
    return {"__name__": name, "model": "m", "version": "v", "instance": "h:1", **labels}


def N(name, **labels):
    """As a function's result carries it: the name in the marker label."""
    d = L(name, **labels)
    d[promql.NAME_LABEL] = d.pop("__name__")
    return d


def test_increase_is_end_minus_start_born_series_count_from_zero_resets_use_samples():
    end = [(N("a"), 50.0), (N("b"), 7.0), (N("c"), 4.0), (N("d"), 3.0), (N("e"), math.nan)]
    start = [(L("a"), 20.0), (L("c"), 25.0), (L("d"), 5.0)]
    resets = [(N("a"), 0.0), (N("b"), 0.0), (N("c"), 1.0), (N("d"), 0.0)]
    samples = [(L("c"), [28.0, 30.0, 1.0, 4.0])]       # 25 -> 30, restart, 0 -> 4
    out = {lab["__name__"]: v for lab, v in promql.series_increases(end, start, resets, samples)}
    assert out["a"] == 30.0          # plain difference
    assert out["b"] == 7.0           # born inside the window: from 0
    assert out["c"] == 9.0           # restarted: 5 before + 4 after
    # ended below its start with no raw samples at hand: still a restart from 0 (the rule
    # for every drop), so the 3 counted after it are kept; never negative
    assert out["d"] == 3.0
    assert math.isnan(out["e"])      # a NaN sum stays NaN (the judge uses the buckets)
    assert promql.reset_aware_increase(0.0, [3.0, 3.0, 0.0, 2.0]) == 5.0


def test_counts_sum_instances_and_uncumulate_buckets():
    R, D = telemetry.REQUESTS, telemetry.DECISIONS
    inc = [
        (L(R, outcome="ok"), 90.0), (L(R, outcome="error"), 6.0),
        (L(R, outcome="invalid_input"), 4.0), (L(R, outcome="ok", instance="h:2"), 10.0),
        (L(D, decision="approve"), 60.0), (L(D, decision="reject"), 40.0),
        (L(promql.SCORE_BUCKET, le="0.05"), 50.0), (L(promql.SCORE_BUCKET, le="0.1"), 55.0),
        (L(promql.SCORE_BUCKET, le="1.0"), 100.0), (L(promql.SCORE_BUCKET, le="+Inf"), 100.0),
        (L(promql.SCORE_SUM), 37.5), (L(promql.SCORE_COUNT), 100.0),
        (L(promql.LATENCY_BUCKET, le="0.005"), 80.0),
        (L(promql.LATENCY_BUCKET, le="0.005", instance="h:2"), 10.0),
        (L(promql.LATENCY_BUCKET, le="2.5"), 96.0), (L(promql.LATENCY_BUCKET, le="+Inf"), 96.0),
        (L(promql.LATENCY_BUCKET, le="2.5", instance="h:2"), 10.0),
        (L(promql.LATENCY_BUCKET, le="+Inf", instance="h:2"), 10.0),
    ]
    w = promql.counts_from_increases("m", "v", 0.0, 60.0, inc)
    assert (w.requests, w.errors, w.invalid, w.served) == (110.0, 6.0, 4.0, 106.0)
    assert (w.approve, w.reject, w.rows) == (60.0, 40.0, 100.0)
    assert w.score_buckets[0] == 50.0 and w.score_buckets[1] == 5.0
    assert sum(w.score_buckets) == 100.0 and w.score_sum == 37.5
    i5 = telemetry.LATENCY_BUCKETS.index(0.005)
    assert w.latency_buckets[i5] == 90.0 and sum(w.latency_buckets) == 106.0
