"""Properties of the judge over arbitrary counts (hypothesis): zeros, negatives, NaN,
infinities, huge and fractional values, with and without paired series, alone and building on
a previous look. It never raises, and every verdict round-trips through JSON."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paddle_canary.analysis import GateConfig, Verdict, judge
from paddle_canary.analysis.counts import (N_LATENCY_BUCKETS, N_SCORE_BUCKETS, PairedCounts,
                                           WindowCounts)
from paddle_canary.analysis.verdict import STATUSES

pytestmark = pytest.mark.slow   # ~8 s each
CFG = GateConfig.from_dict()
ODD = [0.0, -0.0, -1.0, -1700.0, 0.5, 1e-300, 1e300, 2.0 ** 53, 2.0 ** 53 + 2, 2.0 ** 60,
       math.nan, math.inf, -math.inf]

# counts that can be trusted: what reaches the gates' arithmetic
valid = st.one_of(
    st.integers(0, 50).map(float),
    st.integers(0, 10 ** 7).map(float),
    st.floats(0, 1e6),
    st.sampled_from([0.0, 0.5, 1e-300, 1e12, 2.0 ** 53]),
)
count = st.one_of(
    st.integers(0, 50).map(float),
    st.integers(0, 10 ** 7).map(float),
    st.floats(0, 1e6),
    st.sampled_from(ODD),
    st.floats(allow_nan=True, allow_infinity=True),
)
bucket_scale = st.sampled_from([0.0, 1.0, 100.0, 1e5])


@st.composite
def buckets(draw, n: int, count):
    scale = draw(bucket_scale)
    values = draw(st.lists(st.one_of(st.integers(0, 100).map(lambda k: k * scale), count),
                           min_size=n, max_size=n))
    return tuple(values)


@st.composite
def paired(draw, shadow: str, count):
    if not draw(st.booleans()):
        return None
    rows = draw(count)
    share = st.one_of(st.floats(0, 1), count)
    # mostly consistent (flips and sums within the rows), sometimes anything
    return PairedCounts(shadow_version=draw(st.sampled_from([shadow, shadow, "v0"])),
                        rows=rows, approve_to_reject=rows * draw(share) / 2,
                        reject_to_approve=rows * draw(share) / 2,
                        candidate_score_sum=rows * draw(share),
                        stable_score_sum=rows * draw(share), diff_sq_sum=rows * draw(share))


@st.composite
def window(draw, version: str, shadow: str = "v1", count=count):
    return WindowCounts(
        model="risk-score", version=version, start=0.0, end=60.0,
        requests=draw(count), errors=draw(count), invalid=draw(count), approve=draw(count),
        reject=draw(count), score_buckets=draw(buckets(N_SCORE_BUCKETS, count)),
        score_sum=draw(count), score_count=draw(count),
        latency_buckets=draw(buckets(N_LATENCY_BUCKETS, count)), latency_sum=draw(count),
        latency_count=draw(count), restarts=draw(st.sampled_from([0.0, 0.0, 0.0, 1.0, math.nan])),
        paired=draw(paired(shadow, count)) if version != shadow else None)


def round_trips(v: Verdict) -> None:
    assert v.status in STATUSES
    text = v.to_json()                       # strict JSON: no NaN or inf anywhere
    back = Verdict.from_json(text)
    assert back.to_dict() == v.to_dict() == json.loads(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window("v1"), window("v2"), window("v2"))
def test_judge_never_raises_and_verdicts_round_trip(base, cand, later):
    v = judge(base, cand, CFG, evaluated_at=100.0)
    round_trips(v)
    # a later look building on this one (same window start, a later end)
    later = WindowCounts(**{**vars(later), "end": 61.0})
    round_trips(judge(base, later, CFG, evaluated_at=101.0, previous=v.to_dict()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window("v1", count=valid), window("v2", count=valid), window("v2", count=valid))
def test_judge_never_raises_on_counts_it_trusts(base, cand, later):
    """Only trusted counts (finite, >= 0, <= 2**53, fractional allowed): every gate's
    arithmetic runs, on zeros, single rows, huge windows and lopsided arms."""
    v = judge(base, cand, CFG, evaluated_at=100.0)
    round_trips(v)
    later = WindowCounts(**{**vars(later), "end": 61.0})
    round_trips(judge(base, later, CFG, evaluated_at=101.0, previous=v.to_dict()))
