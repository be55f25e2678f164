"""What people are told about a release, and the JSON webhook that tells them.

A :class:`Message` is built here from the plan and the journal (plain Python, no Airflow):
model, versions, step, the current verdict with each gate's interval, and links to the run,
its Required Actions page and the report. The Airflow notifiers
(:mod:`paddle_canary.airflow.notifiers`) send it: :func:`post_webhook` as JSON that Slack,
Mattermost and Teams incoming webhooks accept (``{"text": ...}``, plus the structured fields
under ``paddle_canary``), and mail through the SMTP provider.
"""

from __future__ import annotations

import dataclasses
import html
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from paddle_canary.release import events as ev
from paddle_canary.release import messages
from paddle_canary.release.plan import ReleasePlan

DAG_ID = "model_release"
WEBHOOK_TIMEOUT_S = 10.0


class NotifyError(RuntimeError):
    """A notification could not be delivered (the message says where and why)."""


@dataclasses.dataclass(frozen=True)
class Message:
    kind: str  # approval | confirmation | rolled_back | failed | timeout | overdue
    title: str
    text: str  # plain text with the details, one fact a line
    fields: dict[str, Any]
    links: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """The webhook body: ``text`` for chat tools, the same facts structured beside it."""
        link_lines = [f"{name}: {url}" for name, url in self.links.items()]
        return {"text": "\n".join([f"*{self.title}*", self.text, *link_lines]),
                "paddle_canary": {"kind": self.kind, "title": self.title, **self.fields,
                                  "links": dict(self.links)}}

    def html(self) -> str:
        rows = "".join(f"<li>{html.escape(line)}</li>" for line in self.text.splitlines() if line)
        links = "".join(f'<li><a href="{html.escape(u, quote=True)}">{html.escape(n)}</a></li>'
                        for n, u in self.links.items())
        return f"<h3>{html.escape(self.title)}</h3><ul>{rows}</ul><ul>{links}</ul>"


def run_links(airflow_url: str | None, run_id: str, task_id: str | None = None,
              report: str | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    if airflow_url:
        base = f"{airflow_url.rstrip('/')}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"
        out["run"] = base
        if task_id:
            out["approve"] = f"{base}/tasks/{task_id}/required_actions"
    if report:
        out["report"] = report
    return out


def verdict_lines(verdict: dict[str, Any] | None) -> list[str]:
    """One line per gate: status, effect with its interval, and the reason."""
    if not verdict:
        return ["verdict: no analysis yet"]
    lines = [f"verdict: {verdict.get('status')} - {messages.verdict_reason(verdict)}"]
    for g in verdict.get("gates") or []:
        part = f"  {g.get('gate')}: {g.get('status')}"
        lo, hi = (list(g.get("interval") or [None, None]) + [None, None])[:2]
        if g.get("effect") is not None:
            part += f", effect {_num(g['effect'])}"
        if lo is not None or hi is not None:
            part += f" [{_num(lo)}, {_num(hi)}]"
        if g.get("reason"):
            part += f" - {g['reason']}"
        lines.append(part)
    return lines


def _num(x: Any) -> str:
    if isinstance(x, (int, float)):
        return f"{x:.4g}"
    return "-" if x is None else str(x)


def approval_message(plan: ReleasePlan, events: list[ev.Event], *, task_id: str, weight: int,
                     kind: str, timeout_s: float | None, assigned: list[dict[str, str]],
                     airflow_url: str | None) -> Message:
    """Asked before moving to ``weight`` (kind ``approval``) or after an inconclusive step
    (``confirmation``)."""
    verdict = messages.latest_verdict(events)
    step = int(task_id.split(".")[0].removeprefix("step_")) if task_id.startswith("step_") else None
    what = (f"move {weight} % of traffic to the candidate" if kind == "approval"
            else f"go on after an inconclusive analysis at {weight} %")
    title = f"Approval needed: {plan.model} {plan.candidate} - {what}"
    lines = [f"model: {plan.model}", f"candidate: {plan.candidate}", f"stable: {plan.baseline}",
             f"step: {step} of {len(plan.steps)} ({weight} %)", f"run: {plan.run_id}"]
    if assigned:
        lines.append("may answer: " + ", ".join(u["id"] for u in assigned))
    if timeout_s:
        lines.append(f"unanswered after {timeout_s / 3600:.3g} h: Reject (the release rolls back)")
    lines += verdict_lines(verdict)
    return Message(kind, title, "\n".join(lines),
                   {"model": plan.model, "candidate": plan.candidate, "stable": plan.baseline,
                    "step": step, "weight": weight, "run_id": plan.run_id,
                    "verdict": (verdict or {}).get("status"), "timeout_s": timeout_s},
                   run_links(airflow_url, plan.run_id, task_id))


def outcome_message(plan: ReleasePlan, events: list[ev.Event], *, airflow_url: str | None,
                    report: str | None) -> Message:
    """After a rollback or a failure: what happened and why, with the report."""
    outcome = ev.outcome(events)
    reason = ev.failure_reason(events) or "no reason recorded (see the Airflow log)"
    rolled = ev.first(events, ev.RolledBack)
    weights = [e.weight for e in ev.of_kind(events, ev.WeightSet)]
    title = (f"Release rolled back: {plan.model} {plan.candidate}" if rolled
             else f"Release {outcome}: {plan.model} {plan.candidate}")
    lines = [f"model: {plan.model}", f"candidate: {plan.candidate}", f"stable: {plan.baseline}",
             f"outcome: {outcome}", f"reason: {reason}",
             f"highest weight reached: {max(weights) if weights else 0} %", f"run: {plan.run_id}"]
    if rolled and rolled.incomplete:
        lines.append("ROLLBACK INCOMPLETE: " + "; ".join(rolled.incomplete))
    lines += verdict_lines(messages.latest_verdict(events))
    return Message("rolled_back" if rolled else outcome, title, "\n".join(lines),
                   {"model": plan.model, "candidate": plan.candidate, "stable": plan.baseline,
                    "outcome": outcome, "reason": reason, "run_id": plan.run_id,
                    "incomplete": list(rolled.incomplete) if rolled else []},
                   run_links(airflow_url, plan.run_id, report=report))


def overdue_message(plan: ReleasePlan, events: list[ev.Event], *, deadline: str,
                    airflow_url: str | None, report: str | None) -> Message:
    """The run is past its planned end plus the deadline's margin (Airflow's DeadlineAlert):
    where it stands, so a person can see what holds it (an approval, a pause, a stuck task)."""
    weights = [e.weight for e in ev.of_kind(events, ev.WeightSet)]
    weight = weights[-1] if weights else 0
    title = f"Release overdue: {plan.model} {plan.candidate} at {weight} %"
    lines = [f"model: {plan.model}", f"candidate: {plan.candidate}", f"stable: {plan.baseline}",
             f"deadline passed: {deadline} (the planned end - shadow phase, steps, teardown "
             "delay - plus the margin)",
             f"candidate weight now: {weight} %",
             f"last event: {events[-1].kind if events else 'none'}", f"run: {plan.run_id}"]
    lines += verdict_lines(messages.latest_verdict(events))
    return Message("overdue", title, "\n".join(lines),
                   {"model": plan.model, "candidate": plan.candidate, "stable": plan.baseline,
                    "weight": weight, "deadline": deadline, "run_id": plan.run_id},
                   run_links(airflow_url, plan.run_id, report=report))


def post_webhook(url: str, message: Message, timeout: float = WEBHOOK_TIMEOUT_S) -> int:
    """POST the message as JSON; the HTTP status. A refusal or an unreachable endpoint raises
    :class:`NotifyError` (never a silent drop: the caller logs it and goes on)."""
    body = json.dumps(message.to_json()).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise NotifyError(f"webhook {_safe(url)} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NotifyError(f"webhook {_safe(url)} unreachable: {exc}") from None


def _safe(url: str) -> str:
    """The URL without its path: webhook paths are secrets (Slack's tokens live there)."""
    parts = url.split("/", 3)
    return "/".join(parts[:3]) + ("/..." if len(parts) > 3 else "")
