"""Report details a data scientist reads: who approved (a name), confirmations said to come
after their step, approvals only beside the steps that had one, times without microseconds,
and one verdict per step with its looks folded behind it."""

from __future__ import annotations

import re

from report_journal import _e, promoted_journal, verdict

from paddle_canary.report import data
from paddle_canary.report.html import write_report

TAG = re.compile(r"<[^>]*>")


def page_of(events, paths) -> str:
    plan = next(e["plan"] for e in events if e["event"] == "plan")
    return write_report(plan, events, paths).read_text()


def with_confirmation(events):
    """Step 1 (5 %) stayed inconclusive, was extended once, then a person confirmed it; the
    answer names the user the way Airflow gives it."""
    out, done = [], False
    for e in events:
        out.append(e)
        if not done and e["event"] == "verdict" and e["task"] == "step_01.analyze":
            t = e["ts"]
            out.append(_e(t + 0.2, "verdict", task="step_01.analyze",
                          verdict={**verdict(t, t - 12, n_c=60), "status": "inconclusive"}))
            out.append(_e(t + 0.3, "approval_requested", task="step_01.confirm", weight=5))
            out.append(_e(t + 0.4, "approval_answered", task="step_01.confirm", answer="Approve",
                          by="{'id': 'admin', 'name': 'Ada Admin'}"))
            done = True
    return out


def test_approver_is_shown_by_name():
    assert data.person("{'id': 'admin', 'name': 'Ada Admin'}") == "Ada Admin"
    assert data.person({"id": "u1", "name": "Bo"}) == "Bo"
    assert data.person({"id": "u1"}) == "u1"
    assert data.person("admin") == "admin" and data.person(None) is None


def test_confirmations_come_after_their_step_and_approvals_only_beside_steps_that_had_one(paths):
    page = page_of(with_confirmation(promoted_journal()), paths)
    text = TAG.sub(" ", page)
    assert "{'id'" not in page and "Ada Admin" in page
    assert "Approve by Ada Admin after 5 %" in text
    assert "Approve by admin before 50 %" in text
    steps = page[page.index("<th>approval before it</th>"):]
    steps = steps[:steps.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", steps)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert TAG.sub("", cells[0][4]) == ""  # 5 %: no approval before it
    assert "confirmation: Approve by Ada Admin" in TAG.sub("", cells[0][3])
    assert TAG.sub("", cells[2][4]) == "Approve by admin"  # 50 %


def test_times_have_no_microseconds_and_verdicts_are_one_per_step(paths):
    events = with_confirmation(promoted_journal())
    page = page_of(events, paths)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", TAG.sub(" ", page.split("<details>")[0]))
    assert "teardown at 2025-11-24 16:02:00 UTC" in page
    verdicts = page[page.index("<h2>Verdicts</h2>"):page.index("<h2>Plan</h2>")]
    assert verdicts.count("<h3>step_01.analyze") == 1
    assert "extended 1×" in verdicts
    assert "6 looks behind this verdict; 1 inconclusive verdict extended the step" in verdicts
    assert len(re.findall(r"<h3>", verdicts)) == 4  # one per step
