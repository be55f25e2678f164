"""The lines the release tasks log: one per look of the judge, one per rollback action, and a
one-line analysis event instead of a multi-kB verdict dump."""

from __future__ import annotations

import json
from pathlib import Path

from paddle_canary.airflow.loglines import event_line, look_line, rollback_lines

SAMPLES = Path(__file__).resolve().parents[1] / "release" / "journal_samples"


def looks(name: str) -> list[dict]:
    records = [json.loads(line) for line in (SAMPLES / name).read_text().splitlines()]
    return [r for r in records if r["event"] == "look"]


def test_a_look_is_one_line_with_time_weight_rows_and_each_gate():
    look = looks("v0.1-rolled-back.jsonl")[-1]
    line = look_line(look["verdict"], step=1, weight=5)
    assert "\n" not in line
    assert line.startswith("look ") and " UTC · step 1 at 5 % · rows stable 279 / candidate 16 · " in line
    assert ("score_distribution inconclusive, rejection_rate inconclusive, latency_p95 fail, "
            "errors inconclusive → fail: latency_p95 fail: P95 46.0 ms") in line


def test_a_look_that_could_not_judge_says_why():
    line = look_line({"status": "inconclusive", "reason": "analysis error: timeout", "gates": []},
                     step=2, weight=25, at=0.0)
    assert line.endswith("no gates → inconclusive (analysis error: timeout)")


def test_the_analysis_event_is_logged_as_one_short_line():
    verdict = looks("v0.1-promoted.jsonl")[-1]["verdict"]
    assert len(json.dumps(verdict)) > 2000
    line = event_line({"verdict": verdict, "looked_until": 1.0})
    assert line.startswith(f"analysis ended {verdict['status']}") and len(line) < 300
    from paddle_canary.airflow.triggers import AnalysisEvent
    assert len(repr(AnalysisEvent({"verdict": verdict}))) < 300


def test_each_rollback_action_gets_a_line_and_a_failed_one_says_why():
    plan = {"model": "risk-score", "candidate": "bad-slow", "baseline": "v1"}
    ok = rollback_lines(plan, {"reason": "latency", "incomplete": []}, "candidate")
    assert ok == ["rollback traffic: every user of risk-score on stable v1, candidate weight 0",
                  "rollback registry: risk-score bad-slow marked rejected (latency)",
                  "rollback candidate: bad-slow stopped"]
    part = rollback_lines(plan, {"reason": "x", "incomplete": ["candidate: OSError: busy"]},
                          "gateway")
    assert part[1].endswith("(the gateway was at fault: not rejected)")
    assert part[2] == "rollback candidate: FAILED, OSError: busy"
