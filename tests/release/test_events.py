"""The journal contract: every kind round-trips, journals written by earlier versions still
read, and one outcome() answers for the controller, the report and the driver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paddle_canary.release import events as ev
from paddle_canary.release.journal import Journal
from paddle_canary.report import data

SAMPLES = Path(__file__).with_name("journal_samples")


def test_every_kind_round_trips_through_a_journal(tmp_path):
    written = [
        ev.PlanRecorded(plan={"model": "m", "candidate": "v2"}),
        ev.Validated(report={"passed": True}),
        ev.Deployed(stable_url="http://a:1", candidate_url="http://b:2", candidate_instance="i"),
        ev.MirrorSet(share=100),
        ev.WeightSet(weight=5, step=1),
        ev.Look(verdict={"status": "pass"}, step=1, weight=5, health={"status": "pass"}),
        ev.StepVerdict(task="step_01.analyze", verdict={"status": "pass"}, step=1, weight=5),
        ev.ApprovalRequested(task="step_02.approve", weight=50),
        ev.ApprovalRequested(task="step_03.approve", weight=100, assigned_users=["bo"],
                             timeout_s=600.0),
        ev.ApprovalAnswered(task="step_02.approve", answer="Approve", by="ana"),
        ev.Failure(task="step_02.analyze", reason="latency", blame="candidate"),
        ev.Cut(reason="latency"),
        ev.RolledBack(reason="latency", incomplete=["traffic: down"]),
        ev.Promoted(previous="v1"),
        ev.TeardownScheduled(at="2026-01-01T00:00:00+00:00"),
        ev.TornDown(version="v1"),
        ev.TeardownSkipped(reason="stable again"),
        ev.Finished(outcome="promoted"),
        ev.Paused(by="ana", reason="incident elsewhere"),
        ev.Resumed(by="ana"),
        ev.FullPromotionRequested(by="ana", reason="hotfix CVE-1"),
        ev.Undone(by="bo", reason="complaints", restored="v1", version="v2",
                  incomplete=["registry: x"]),
        ev.WindowWait(step=2, weight=15, until=1796115600.0,
                      window="mon,tue,wed,thu,fri 09:00-17:00 Europe/Berlin"),
    ]
    journal = Journal(tmp_path / "r.jsonl")
    for e in written:
        journal.append(e)
    assert journal.read() == written
    assert {e.kind for e in written} == set(ev._KINDS)  # every declared kind is covered


@pytest.mark.parametrize("name, outcome, steps", [
    ("v0.1-promoted.jsonl", "promoted", [5, 50, 100]),
    ("v0.1-rolled-back.jsonl", "rolled_back", [5]),
])
def test_journals_written_by_version_0_1_still_read(name, outcome, steps):
    """Committed journals from real Airflow runs of the first release format."""
    journal = Journal(SAMPLES / name)
    raw = [json.loads(line) for line in (SAMPLES / name).read_text().splitlines()]
    events = journal.read()
    assert len(events) == len(raw)
    assert not any(isinstance(e, ev.Unknown) for e in events)
    assert ev.outcome(events) == outcome
    assert [e.weight for e in ev.of_kind(events, ev.WeightSet)] == steps
    assert ev.plan_in(events)["model"] == "risk-score"
    assert data.outcome(journal.records())["outcome"] == outcome
    # old records lack the fields added since: they take their defaults
    assert all(e.step is None for e in ev.of_kind(events, ev.Look))


def test_unknown_kinds_and_fields_from_a_newer_writer_are_kept(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"ts": 1, "event": "shadow_started", "share": 10}) + "\n"
                    + json.dumps({"ts": 2, "event": "weight", "weight": 5, "region": "eu"}) + "\n")
    unknown, weight = Journal(path).read()
    assert isinstance(unknown, ev.Unknown) and unknown.to_record()["share"] == 10
    assert weight.weight == 5 and weight.extra == {"region": "eu"}
    assert weight.to_record()["region"] == "eu"


def test_a_record_missing_a_required_field_is_refused():
    with pytest.raises(ValueError, match="missing"):
        ev.parse({"ts": 1, "event": "weight"})
    with pytest.raises(ValueError):
        ev.parse(["not", "a", "record"])


@pytest.mark.parametrize("kinds, outcome", [
    ([], "unfinished"),
    (["plan"], "unfinished"),
    (["plan", "failure"], "failed"),
    (["plan", "failure", "rolled_back"], "rolled_back"),
    (["plan", "promoted"], "promoted"),
    (["failure", "finished:refused"], "refused"),
])
def test_one_outcome_for_everyone(kinds, outcome):
    records = []
    for k in kinds:
        kind, _, said = k.partition(":")
        records.append({"ts": 1.0, "event": kind, "plan": {"model": "m"}, "reason": "r",
                        "task": "t", "previous": "v1", "outcome": said or "x"})
    events = [ev.parse(r) for r in records]
    assert ev.outcome(events) == outcome
    assert data.outcome(records)["outcome"] == outcome
