"""What people read about a release: verdict reasons and approval prompts (plain text/markdown)."""

from __future__ import annotations

from typing import Any

from paddle_canary.release import events as ev
from paddle_canary.release.plan import ReleasePlan


def verdict_reason(verdict: dict[str, Any]) -> str:
    return verdict.get("reason") or verdict.get("status", "no verdict")


def verdict_markdown(verdict: dict[str, Any]) -> str:
    rows = ["| gate | status | reason |", "|---|---|---|"]
    for g in verdict.get("gates") or []:
        rows.append(f"| {g.get('gate')} | {g.get('status')} | {g.get('reason', '')} |")
    return f"**Verdict: {verdict.get('status')}**\n\n" + "\n".join(rows)


def latest_verdict(events: list[ev.Event]) -> dict[str, Any] | None:
    looks = [e.verdict for e in events if isinstance(e, (ev.Look, ev.StepVerdict))]
    return looks[-1] if looks else None


def approval_body(plan: ReleasePlan, events: list[ev.Event], weight: int,
                  health: str | None = None) -> str:
    last = latest_verdict(events)
    lines = [f"Candidate **{plan.candidate}** of **{plan.model}** against stable "
             f"**{plan.baseline}**. Approve to move the candidate to **{weight} %** of users; "
             "Reject to roll back (weight 0, candidate marked rejected)."]
    if last and last.get("status") == "inconclusive":
        lines += ["", "The last step's analysis was **inconclusive** (not enough evidence "
                  "either way): approving also goes on from it."]
    if health:
        lines += ["", health]
    if last:
        lines += ["", "Latest analysis:", "", verdict_markdown(last)]
    return "\n".join(lines)
