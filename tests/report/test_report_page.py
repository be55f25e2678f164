"""The rollout report page and its JSON summary, from synthetic release journals."""

from __future__ import annotations

import json
import re

import pytest
import report_journal as rj

from paddle_canary.errors import UserError
from paddle_canary.report.html import write_report

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?\s*(?:https?:)?//""",
                      re.IGNORECASE)
TAG = re.compile(r"<[^>]*>")


def _write(events, paths):
    plan = next(e["plan"] for e in events if e["event"] == "plan")
    html_path = write_report(plan, events, paths)
    return html_path, html_path.read_text(encoding="utf-8"), \
        json.loads(html_path.with_suffix(".json").read_text())


def _chart_titles(page: str) -> list[str]:
    return re.findall(r"<svg [^>]*aria-label=\"([^\"]*)\"", page)


def _assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    # in markup (tags and the style sheet), not in escaped text
    style = page[page.index("<style>"):page.index("</style>")]
    for markup in TAG.findall(page) + [style]:
        assert not EXTERNAL.search(markup), markup
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()


def test_promoted_release_page(paths):
    events = rj.promoted_journal("manual__2025-11-24T16:00:00+00:00")
    html_path, page, summary = _write(events, paths)

    assert html_path == paths.reports_dir / rj.MODEL / "manual__2025-11-24T16_00_00_00_00.html"
    _assert_self_contained(page)
    assert "promoted" in page
    for weight in rj.STEPS:
        assert f"{weight} %" in page
    assert "Approve by admin" in page
    titles = _chart_titles(page)
    for wanted in ("Candidate weight", "P95 latency", "Rejection rate", "Score distribution"):
        assert any(t.startswith(wanted) for t in titles), (wanted, titles)
    for gate in ("score_distribution", "rejection_rate", "latency_p95", "errors"):
        assert any(t.startswith(f"{gate} ·") for t in titles), (gate, titles)
    # every step's final verdict is in a table
    for slot in range(1, len(rj.STEPS) + 1):
        assert f"step_{slot:02d}.analyze at {rj.STEPS[slot - 1]} %" in page

    assert summary["outcome"] == "promoted"
    assert summary["steps_reached"] == 4 and summary["max_weight"] == 100
    assert summary["fault_to_zero_s"] is None
    assert [a["by"] for a in summary["approvals"]] == ["admin", "admin"]
    assert [a["weight"] for a in summary["approvals"]] == [50, 100]
    assert [v["status"] for v in summary["verdicts"]] == ["pass"] * 4
    assert summary["duration_s"] == pytest.approx(events[-1]["ts"] - events[0]["ts"])


def test_rolled_back_release_page(paths):
    events = rj.rolled_back_journal()
    _, page, summary = _write(events, paths)

    _assert_self_contained(page)
    assert "rolled back" in page
    assert rj.LATENCY_REASON in page
    assert f"{rj.FAULT_TO_ZERO_S:.1f} s" in page        # the headline figure
    assert page.count("not reached") == 2               # 50 % and 100 % never applied
    assert "latency_p95 failed" in page                 # the fault marker on the weight chart
    # the failing step's table marks the latency gate as failed
    step2 = page[page.index("step_02.analyze at 25 %"):]
    assert re.search(r"latency_p95</td><td><span class='st fail'>fail", step2)

    assert summary["outcome"] == "rolled_back"
    assert summary["reason"] == rj.LATENCY_REASON
    assert summary["fault_to_zero_s"] == pytest.approx(rj.FAULT_TO_ZERO_S, abs=1e-3)
    assert summary["fault_at"] == pytest.approx(rj.FAULT_LOOK_AT)
    assert summary["zero_at"] == pytest.approx(rj.CUT_AT)
    assert summary["steps_applied"] == [5, 25] and summary["steps_reached"] == 2
    assert [v["status"] for v in summary["verdicts"]] == ["pass", "fail"]
    assert summary["verdicts"][1]["gates"]["latency_p95"] == "fail"


def test_partial_journal_still_gives_a_page(paths):
    events = rj.rolled_back_journal()
    plan_event = events[0]
    failure = {"ts": plan_event["ts"] + 2.0, "event": "failure", "task": "validate_model",
               "reason": "offline validation failed: 3 scores are NaN"}
    _, page, summary = _write([plan_event, failure], paths)

    _assert_self_contained(page)
    assert "offline validation failed: 3 scores are NaN" in page
    assert "no data" in page
    assert page.count("not reached") == len(rj.STEPS)
    assert summary["outcome"] == "failed"
    assert summary["steps_reached"] == 0
    assert summary["fault_to_zero_s"] is None
    assert "no users" in summary["fault_to_zero_note"]


def test_empty_journal_gives_a_page(paths):
    plan = rj.plan("scheduled__2025-11-24T18:00:00+00:00")
    html_path = write_report(plan, [], paths)
    page = html_path.read_text()
    _assert_self_contained(page)
    assert "unfinished" in page
    assert json.loads(html_path.with_suffix(".json").read_text())["outcome"] == "unfinished"


def test_prometheus_unreachable_is_noted_not_fatal(paths, closed_url):
    _, page, summary = _write(rj.rolled_back_journal(), paths)
    assert "Prometheus unavailable" in summary["metrics"]["note"]
    assert closed_url in page
    # the judge's looks still give the per-version charts
    assert summary["metrics"]["p95_source"] == "judge"
    assert summary["metrics"]["score_rows"] == {}


def test_rewrite_replaces_atomically(paths):
    events = rj.rolled_back_journal()
    first, _, _ = _write(events[:8], paths)
    second, page, summary = _write(events, paths)
    assert first == second
    assert summary["outcome"] == "rolled_back"
    leftovers = sorted(p.name for p in first.parent.iterdir())
    assert leftovers == [first.with_suffix(".html").name, first.with_suffix(".json").name]


def test_text_from_the_journal_is_escaped(paths):
    events = rj.rolled_back_journal()
    evil = "<script>alert(1)</script> & <img src=http://x/y.png>"
    for e in events:
        if e["event"] in ("failure", "rolled_back", "cut"):
            e["reason"] = evil
    _, page, _ = _write(events, paths)
    _assert_self_contained(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img" in page


def test_bad_model_name_writes_nothing(paths):
    plan = dict(rj.plan("r1"), model="../../etc")
    with pytest.raises(UserError, match="invalid model name"):
        write_report(plan, [], paths)
    assert not paths.reports_dir.exists()


def test_actions_by_hand_are_shown_with_who_and_why(paths):
    events = rj.promoted_journal()
    t = events[4]["ts"]
    events[5:5] = [rj._e(t + 0.1, "paused", by="ana", reason="incident in payments"),
                   rj._e(t + 0.2, "resumed", by="ana"),
                   rj._e(t + 0.3, "full_promotion", by="bo", reason="hotfix <CVE-1>")]
    events.append(rj._e(events[-1]["ts"] + 1, "undone", by="bo", reason="complaints",
                        restored="v1", version="v2"))
    _, page, summary = _write(events, paths)
    assert [m["action"] for m in summary["manual"]] == ["paused", "resumed", "full_promotion",
                                                        "undone"]
    assert summary["manual"][2] == {"action": "full_promotion", "at": t + 0.3, "by": "bo",
                                    "reason": "hotfix <CVE-1>"}
    assert "<h2>By hand</h2>" in page and "hotfix &lt;CVE-1&gt;" in page
