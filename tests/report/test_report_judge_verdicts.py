"""The report reads what the real judge writes: verdicts from ``paddle_canary.analysis``,
journalled the way the release tasks journal them, for a candidate whose latency fails."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import report_journal as rj

from paddle_canary import telemetry
from paddle_canary.release import events as ev
from paddle_canary.release.journal import Journal
from paddle_canary.report.html import report_from_journal

judge_mod = pytest.importorskip("paddle_canary.analysis.judge")
counts_mod = pytest.importorskip("paddle_canary.analysis.counts")
config_mod = pytest.importorskip("paddle_canary.analysis.config")


def _window(version: str, start: float, end: float, rows: int, latency_s: float, beta, seed: int):
    rng = np.random.default_rng(seed)
    scores = rng.beta(*beta, size=rows)
    # non-cumulative: bucket i counts scores in (edge[i-1], edge[i]]; the last one is +Inf
    index = np.searchsorted(telemetry.SCORE_BUCKETS, scores, side="left")
    score_buckets = np.bincount(index, minlength=counts_mod.N_SCORE_BUCKETS).astype(float)
    lat = [0.0] * counts_mod.N_LATENCY_BUCKETS
    lat[next(i for i, e in enumerate(telemetry.LATENCY_BUCKETS) if e >= latency_s)] = float(rows)
    reject = float(np.sum(scores >= 0.5))
    return counts_mod.WindowCounts(
        model=rj.MODEL, version=version, start=start, end=end, requests=float(rows),
        approve=rows - reject, reject=reject, score_buckets=tuple(score_buckets.tolist()),
        score_sum=float(scores.sum()), score_count=float(rows), latency_buckets=tuple(lat),
        latency_sum=latency_s * rows, latency_count=float(rows))


def test_report_of_a_release_judged_by_the_real_judge(paths):
    cfg = config_mod.GateConfig.from_dict(rj.GATES)
    plan = rj.plan("judged-run")
    journal = Journal.of_run(paths.home, rj.MODEL, plan["run_id"])
    journal.append(ev.PlanRecorded(plan=plan))
    since = journal.append(ev.WeightSet(weight=5, step=1)).ts
    first_fail = None
    for k, cand_rows in enumerate((40, 150, 400), 1):
        verdict = judge_mod.judge(
            _window(rj.STABLE, since, since + k, cand_rows * 19, 0.009, (2, 5), k),
            _window(rj.CANDIDATE, since, since + k, cand_rows, 0.14, (2, 5), 100 + k), cfg)
        rec = journal.append(ev.Look(verdict=verdict.to_dict(), step=1, weight=5))
        if verdict.status == "fail" and first_fail is None:
            first_fail = rec.ts
    assert first_fail is not None, "the slow candidate should fail latency"
    journal.append(ev.Cut(reason="latency"))
    journal.append(ev.StepVerdict(task="step_01.analyze", verdict=verdict.to_dict(), step=1,
                                  weight=5))
    journal.append(ev.Failure(task="step_01.analyze", reason=verdict.reason))
    journal.append(ev.RolledBack(reason=verdict.reason))
    events = journal.records()

    html_path = report_from_journal(events, paths)

    page = html_path.read_text()
    summary = json.loads(html_path.with_suffix(".json").read_text())
    assert summary["outcome"] == "rolled_back"
    assert summary["verdicts"][0]["gates"]["latency_p95"] == "fail"
    cut_at = next(e["ts"] for e in events if e["event"] == "cut")
    assert summary["fault_to_zero_s"] == pytest.approx(cut_at - first_fail)
    assert summary["metrics"]["p95_source"] == "judge"  # the judge's P95 figures are used
    assert re.search(r"latency_p95</td><td><span class='st fail'>fail", page)
    for check in ("p95_under_max_ms", "reject_rate_diff", "mean_score", "psi"):
        assert f"· {check}" in page  # one effect chart per check the judge ran
