"""The run note people tell release runs apart by, from journals real releases wrote."""

from __future__ import annotations

import json
from pathlib import Path

from paddle_canary.report.note import MAX_CHARS, plan_line, refused_note, run_note

SAMPLES = Path(__file__).resolve().parents[1] / "release" / "journal_samples"


def journal(name: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines()]


def test_plan_line_names_the_versions_steps_and_step_length():
    plan = {"model": "risk-score", "candidate": "v2", "baseline": "v1",
            "steps": [5, 25, 50, 100], "step_interval_s": 30.0}
    assert plan_line(plan) == "risk-score v2 vs v1: 5/25/50/100 %, 30 s steps"
    assert plan_line({**plan, "step_interval_s": 3600}).endswith("1 h steps")
    assert plan_line({**plan, "step_interval_s": 90}).endswith("1 min 30 s steps")


def test_a_running_release_says_its_live_weight_then_its_outcome():
    records = journal("v0.1-promoted.jsonl")
    plan = records[0]["plan"]
    at_5 = next(i for i, r in enumerate(records) if r["event"] == "weight") + 1
    assert run_note(plan, records[:at_5]).endswith("· now 5 % (step 1 of 3)")
    done = run_note(plan, records)
    assert done.startswith("risk-score v2 vs v1: 5/50/100 %, 6 s steps · promoted at ")
    assert "v1 torn down at" in done


def test_a_promoted_release_waiting_for_teardown_says_when():
    records = [r for r in journal("v0.1-promoted.jsonl") if r["event"] != "torn_down"]
    text = run_note(records[0]["plan"], records)
    assert "v1 to be torn down at" in text and "(promotion + 2 s)" in text


def test_a_rolled_back_release_says_where_and_why():
    records = journal("v0.1-rolled-back.jsonl")
    text = run_note(records[0]["plan"], records)
    assert "· rolled back at 5 %: latency_p95 fail" in text
    assert len(text) <= MAX_CHARS


def test_a_refused_request_says_why_and_stays_within_airflow_s_limit():
    assert refused_note({"model": "risk-score", "version": "v9"}, "unknown version") == \
        "risk-score v9: refused: unknown version"
    assert len(refused_note({}, "x" * 5000)) == MAX_CHARS
