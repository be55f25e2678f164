"""The judge's five defects of issue #10, each pinned by a test that failed before its fix:
a collapsed candidate crashing it, negative (reset) counts crashing it, PSI passing above its
limit, NaN/negative counts deciding, and a pass that did not stick."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from analysis_helpers import V1_SCORES, add, counts, increments, window

from paddle_canary.analysis import FAIL, INCONCLUSIVE, PASS, GateConfig, NoData, Verdict, judge
from paddle_canary.analysis import promql
from paddle_canary.analysis.counts import WindowCounts

CFG = GateConfig.from_dict()


def collapsed(rng, n: int) -> WindowCounts:
    """A candidate whose scores all fell to ~1e-6: it approves everyone."""
    p = np.zeros_like(V1_SCORES)
    p[0] = 1.0
    w = increments(rng, n, score_p=p, reject=0.0)
    w["score_sum"] = 1e-6 * n
    return window("collapsed", w)


@pytest.mark.parametrize("n", [200, 2_000, 20_000])
def test_1_a_collapsed_candidate_fails_on_rejection_rate_and_score_distribution(n):
    """Was: OverflowError in math.expm1 (the mean-ratio interval) at every look, which the
    trigger turned into 'inconclusive': never rolled back."""
    rng = np.random.default_rng(31)
    v = judge(counts(rng, "v1", 20 * n), collapsed(rng, n), CFG)
    assert v.status == FAIL
    assert {"rejection_rate", "score_distribution"} <= set(v.failed_gates())
    Verdict.from_json(v.to_json())


def test_2_negative_window_counts_from_a_counter_reset_never_raise():
    """A candidate restarted: 300 requests after, 2,000 before; a provider that subtracted the
    raw counters gives negative counts. Was: ValueError (math domain error) in lgamma."""
    rng = np.random.default_rng(32)
    before, after = increments(rng, 2_000), increments(rng, 300)
    negative = window("v2", {k: after[k] - before[k] for k in after})
    v = judge(counts(rng, "v1", 40_000), negative, CFG)
    assert v.status == INCONCLUSIVE
    assert "counts not trusted" in v.reason and "v2 requests: -1700" in v.reason
    assert all(g.status == INCONCLUSIVE for g in v.gates)


def test_2_provider_and_judge_agree_on_what_a_reset_window_holds():
    """A drop is a restart from 0, with or without the raw samples: the window holds what the
    new process counted (never a negative, never dropped to 0), and the restart is reported."""
    end = [({promql.NAME_LABEL: "paddle_canary_requests_total", "outcome": "ok",
             "instance": "h:1"}, 300.0)]
    start = [({"__name__": "paddle_canary_requests_total", "outcome": "ok",
               "instance": "h:1"}, 2_000.0)]
    resets = [({promql.NAME_LABEL: "paddle_canary_requests_total", "outcome": "ok",
                "instance": "h:1"}, 1.0)]
    inc = promql.series_increases(end, start, resets, samples=())
    assert [v for _, v in inc] == [300.0]
    w = promql.counts_from_increases("m", "v2", 0, 60, inc,
                                     restarts=promql.restarts_from_resets(resets))
    assert w.requests == 300.0 and w.restarts == 1.0


def test_2_a_restarted_candidate_fails_a_restarted_stable_is_inconclusive():
    rng = np.random.default_rng(33)
    base, cand = counts(rng, "v1", 40_000), counts(rng, "v2", 2_000)
    v = judge(base, dataclasses.replace(cand, restarts=1.0), CFG)
    assert v.status == FAIL and v.failed_gates() == ["errors"]
    assert "restarted 1 time(s)" in v.reason
    v = judge(dataclasses.replace(base, restarts=2.0), cand, CFG)
    assert v.status == INCONCLUSIVE and "stable v1 restarted 2 time(s)" in v.reason


def vanished_region(rng, n: int) -> WindowCounts:
    """v1, except that no score lands in (0.75, 0.80] any more (2 % of v1's rows): those
    rows score in (0.95, 1.0] instead. Decisions unchanged, mean +1 %; PSI 0.107."""
    p = V1_SCORES.copy()
    p[19] += p[15]
    p[15] = 0.0
    return counts(rng, "c", n, score_p=p)


def exact_v1(rng, n: int) -> WindowCounts:
    """v1 with its score buckets at exactly their expected counts (the PSI groups, each >= 2 %
    of stable's rows, then do not move with sampling noise)."""
    w = increments(rng, n)
    w["score_buckets"] = V1_SCORES * n
    return window("v1", w)


def test_3_psi_never_passes_above_its_limit():
    """Was: at 100,000 candidate rows every gate passed, the reason saying 'PSI 0.107 ...
    below 0.1': the pass side bounded the chi-square form D (<= PSI), not PSI."""
    rng = np.random.default_rng(34)
    base = exact_v1(rng, 1_900_000)
    for n in (100_000, 400_000):
        g = judge(base, vanished_region(rng, n), CFG).gate("score_distribution")
        psi = next(c for c in g.checks if c.name == "psi")
        assert psi.effect > CFG.score_distribution.max_psi
        assert psi.status != PASS and g.status != PASS, g.reason
        assert psi.interval[1] > CFG.score_distribution.max_psi


def test_3_a_psi_pass_is_bounded_by_psi_itself():
    """Whenever the PSI check passes, its interval's upper end - a bound on PSI - is under the
    limit, and so is the PSI it reports."""
    rng = np.random.default_rng(35)
    base = exact_v1(rng, 1_900_000)
    for n in (20_000, 100_000):
        for cand in (counts(rng, "v1-copy", n), vanished_region(rng, n)):
            psi = next(c for c in judge(base, cand, CFG).gate("score_distribution").checks
                       if c.name == "psi")
            if psi.status == PASS:
                assert psi.effect <= psi.interval[1] <= CFG.score_distribution.max_psi


def test_4_a_nan_candidate_latency_bucket_is_inconclusive_naming_it():
    """Was: latency *fail* ('50.0 %..50.0 %'), which rolls back."""
    rng = np.random.default_rng(36)
    base, cand = counts(rng, "v1", 1_900_000), counts(rng, "v2", 100_000)
    lat = list(cand.latency_buckets)
    lat[5] = float("nan")
    v = judge(base, dataclasses.replace(cand, latency_buckets=tuple(lat)), CFG)
    assert v.status == INCONCLUSIVE
    assert "v2 latency bucket le=0.005: NaN" in v.reason


def test_4_a_negative_stable_latency_bucket_is_inconclusive_not_a_silent_pass():
    rng = np.random.default_rng(37)
    base, cand = counts(rng, "v1", 1_900_000), counts(rng, "v1-copy", 100_000)
    assert judge(base, cand, CFG).gate("latency_p95").status == PASS
    lat = list(base.latency_buckets)
    lat[3] = -50.0
    v = judge(dataclasses.replace(base, latency_buckets=tuple(lat)), cand, CFG)
    assert v.status == INCONCLUSIVE and v.gate("latency_p95").status == INCONCLUSIVE
    assert "v1 latency bucket le=0.003: -50 (negative" in v.reason


@pytest.mark.slow
def test_5_a_pass_sticks_when_each_look_builds_on_the_previous():
    """An identical candidate judged at every look of a step: alone, a look's rejection gate
    can pass and the next fall back to inconclusive; given the previous verdict (a running
    intersection of the sequences), a pass stays a pass and intervals never widen."""
    rng = np.random.default_rng(38)
    fell_back = 0
    for _ in range(12):
        base = cand = None
        prev = None
        fresh_passed = chained_passed = False
        widths = []
        for _look in range(40):
            base = add(base, increments(rng, 38_000))
            cand = add(cand, increments(rng, 2_000))
            b, c = window("v1", base), window("v1-copy", cand)
            fresh = judge(b, c, CFG).gate("rejection_rate").status
            fresh_passed |= fresh == PASS
            if fresh_passed and fresh != PASS:
                fell_back += 1
                fresh_passed = False
            v = judge(b, c, CFG, previous=prev and prev.to_dict())
            rr = v.gate("rejection_rate")
            if chained_passed:
                assert rr.status == PASS, rr.reason
            chained_passed |= rr.status == PASS
            widths.append(rr.interval[1] - rr.interval[0])
            assert v.status != FAIL
            prev = v
        assert all(w2 <= w1 + 1e-12 for w1, w2 in zip(widths, widths[1:]))
    assert fell_back > 0   # the defect shows in this simulation without `previous`


def test_5_previous_verdicts_of_another_step_are_refused():
    rng = np.random.default_rng(39)
    b, c = counts(rng, "v1", 4_000), counts(rng, "v2", 400)
    v = judge(b, c, CFG)
    other = dataclasses.replace(c, start=30.0)
    with pytest.raises(ValueError, match="not an earlier look"):
        judge(b, other, CFG, previous=v.to_dict())
    with pytest.raises(ValueError, match="not risk-score v3"):
        judge(b, dataclasses.replace(c, version="v3"), CFG, previous=v.to_dict())


def test_5_analyze_starts_fresh_when_the_previous_look_is_of_another_window():
    """A release's window moves (stable restarted): analyze, what the release calls, judges the
    look on its own and says why in ``note``, where judge() refuses (a caller's mistake)."""
    from doubles import CountsProvider
    from paddle_canary.analysis import analyze

    rng = np.random.default_rng(41)
    b, c = counts(rng, "v1", 4_000), counts(rng, "v2", 400)
    before = judge(b, dataclasses.replace(c, start=-30.0), CFG).to_dict()
    v = analyze(CountsProvider({"v1": b, "v2": c}), "risk-score", "v1", "v2", CFG, start=0.0,
                end=60.0, previous=before)
    assert v.note.startswith("previous look not built on: previous verdict's window")
    assert v == dataclasses.replace(judge(b, c, CFG, evaluated_at=v.evaluated_at), note=v.note)
    assert Verdict.from_json(v.to_json()).note == v.note
    same = analyze(CountsProvider({"v1": b, "v2": c}), "risk-score", "v1", "v2", CFG,
                   start=0.0, end=60.0, previous=v.to_dict())
    assert same.note == ""


def test_5_a_look_without_data_carries_the_intervals_to_the_next():
    rng = np.random.default_rng(40)
    base = counts(rng, "v1", 1_900_000)
    cand = counts(rng, "v1-copy", 100_000)
    first = judge(base, cand, CFG)
    assert first.gate("score_distribution").status == PASS
    gap = judge(base, NoData("risk-score", "v1-copy", "Prometheus down", 0.0, 60.0), CFG,
                previous=first.to_dict())
    assert gap.status == INCONCLUSIVE
    assert gap.gate("score_distribution").checks == first.gate("score_distribution").checks
    # the next look has fewer rows than needed on its own, yet builds on the first one
    again = judge(base, dataclasses.replace(counts(rng, "v1-copy", 150)), CFG,
                  previous=gap.to_dict())
    assert again.gate("score_distribution").status == PASS
