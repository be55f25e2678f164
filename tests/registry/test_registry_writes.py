"""Pointer moves and history: what a release does to the registry, and what it refuses."""

import json
import os

import pytest
from registry_helpers import MODEL, export_copy

from paddle_canary.registry import Pointers, RegistryError
from paddle_canary.registry import store


def events(registry):
    return [(e["event"], e["version"]) for e in registry.history(MODEL)][3:]  # after the seed


def test_candidate_set_then_promoted(registry, root):
    assert registry.set_candidate(MODEL, "v2") == Pointers(stable="v1", candidate="v2")
    assert registry.pointers(MODEL) == Pointers(stable="v1", candidate="v2")
    registry.mark_validated(MODEL, "v2", {"psi": 0.01, "passed": True})
    assert registry.status(MODEL, "v2") == "validated"
    assert registry.promote(MODEL, "v2", reason="all gates passed") == Pointers("v2", None)
    assert registry.status(MODEL, "v2") == "stable"
    assert registry.status(MODEL, "v1") == "promoted"  # was stable once, superseded
    last = registry.history(MODEL)[-1]
    assert last["event"] == "promoted" and last["previous"] == "v1"
    assert last["reason"] == "all gates passed"
    assert events(registry) == [("candidate_set", "v2"), ("validated", "v2"), ("promoted", "v2")]
    assert json.loads((root / MODEL / "pointers.json").read_text()) == {
        "stable": "v2", "candidate": None, "set_by": last}  # the event that set it


def test_rejection_clears_the_candidate_and_keeps_the_reason(registry):
    registry.set_candidate(MODEL, "v2")
    registry.mark_rejected(MODEL, "v2", "rejection_rate gate failed: +12.0 pp")
    assert registry.pointers(MODEL) == Pointers(stable="v1", candidate=None)
    assert registry.status(MODEL, "v2") == "rejected"
    assert registry.history(MODEL)[-1]["reason"] == "rejection_rate gate failed: +12.0 pp"


def test_rejection_needs_a_reason_and_cannot_hit_the_stable_version(registry):
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.mark_rejected(MODEL, "v2", " ")
    with pytest.raises(RegistryError, match="is the stable version"):
        registry.mark_rejected(MODEL, "v1", "oops")
    assert events(registry) == []


def test_a_second_candidate_is_refused_while_one_is_set(registry, root):
    export_copy(root / MODEL / "v2", root / MODEL / "v3", "v3")
    registry.set_candidate(MODEL, "v2")
    registry.set_candidate(MODEL, "v2")  # same again: no change, no event
    with pytest.raises(RegistryError, match="already has candidate 'v2'"):
        registry.set_candidate(MODEL, "v3")
    assert events(registry) == [("candidate_set", "v2")]
    registry.clear_candidate(MODEL)
    registry.clear_candidate(MODEL)  # nothing to clear: no event
    assert registry.pointers(MODEL).candidate is None
    assert events(registry) == [("candidate_set", "v2"), ("candidate_cleared", "v2")]


def test_stable_version_cannot_be_candidate(registry):
    with pytest.raises(RegistryError, match="already the stable version"):
        registry.set_candidate(MODEL, "v1")


def test_promoting_the_stable_version_again_changes_nothing(registry):
    before = registry.history(MODEL)
    assert registry.promote(MODEL, "v1") == Pointers("v1", None)
    assert registry.history(MODEL) == before


def test_rollback_after_promotion_is_a_promotion_back(registry):
    registry.promote(MODEL, "v2")
    registry.promote(MODEL, "v1", reason="rollback")
    assert registry.pointers(MODEL).stable == "v1"
    assert registry.history(MODEL)[-1]["previous"] == "v2"


def test_writes_to_unknown_versions_are_refused_and_write_nothing(registry, root):
    before = (root / MODEL / "history.jsonl").read_bytes()
    for call in (lambda: registry.set_candidate(MODEL, "v9"),
                 lambda: registry.promote(MODEL, "../v1"),
                 lambda: registry.mark_validated(MODEL, "v9", {}),
                 lambda: registry.mark_rejected(MODEL, "v9", "x"),
                 lambda: registry.record(MODEL, "note", "v9")):
        with pytest.raises(RegistryError):
            call()
    assert (root / MODEL / "history.jsonl").read_bytes() == before
    assert registry.pointers(MODEL) == Pointers("v1", None)


def test_record_appends_any_event_with_details(registry):
    line = registry.record(MODEL, "weight_set", "v2", weight=15, run_id="r1")
    assert registry.history(MODEL)[-1] == line
    assert line["weight"] == 15 and line["model"] == MODEL
    registry.record(MODEL, "note", None, text="model-level")
    assert registry.history(MODEL)[-1]["version"] is None
    with pytest.raises(RegistryError, match="invalid event name"):
        registry.record(MODEL, "Bad Event", "v2")
    with pytest.raises(RegistryError, match="JSON-serialisable"):
        registry.record(MODEL, "note", "v2", obj=object())


def test_history_keeps_the_order_of_writes(registry):
    for i in range(20):
        registry.record(MODEL, "tick", "v2", i=i)
    ticks = [e for e in registry.history(MODEL) if e["event"] == "tick"]
    assert [e["i"] for e in ticks] == list(range(20))
    assert [e["ts"] for e in ticks] == sorted(e["ts"] for e in ticks)


def test_a_history_cut_short_by_a_crash_loses_only_the_partial_line(registry, root):
    with open(root / MODEL / "history.jsonl", "a") as fh:
        fh.write('{"ts": "2026-01-01T00:00:00+00:00", "event": "prom')
    assert len(registry.history(MODEL)) == 3


def test_a_corrupt_history_line_is_reported(registry, root):
    path = root / MODEL / "history.jsonl"
    path.write_text("not json\n" + path.read_text())
    with pytest.raises(RegistryError, match=r"history.jsonl:1: not valid JSON"):
        registry.history(MODEL)


def test_pointer_write_that_fails_leaves_the_old_file_and_no_temp(registry, root, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", broken_replace)
    with pytest.raises(OSError):
        registry.promote(MODEL, "v2")
    monkeypatch.undo()
    assert registry.pointers(MODEL) == Pointers("v1", None)
    assert sorted(p.name for p in (root / MODEL).iterdir()) == [
        ".lock", "history.jsonl", "model.yaml", "pointers.json", "v1", "v2"]
    assert events(registry) == []  # the event is only written once the pointer moved


def test_pointer_file_is_replaced_not_rewritten_in_place(registry, root):
    path = root / MODEL / "pointers.json"
    inode = os.stat(path).st_ino
    registry.set_candidate(MODEL, "v2")
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    assert json.loads(path.read_text())["candidate"] == "v2"


def test_missing_pointer_file_means_no_stable_version(registry, root):
    (root / MODEL / "pointers.json").unlink()
    assert registry.pointers(MODEL) == Pointers(None, None)
    registry.promote(MODEL, "v1")
    assert registry.pointers(MODEL) == Pointers("v1", None)
