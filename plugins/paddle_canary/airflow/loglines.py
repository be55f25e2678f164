"""One readable log line per thing a release task did (plain strings; imports no Airflow).

``analyze``: one line per look of the judge, written by the trigger into the task's log::

    look 03:41:07 UTC · step 2 at 25 % · rows stable 2,790 / candidate 160 ·
    score_distribution pass, rejection_rate inconclusive, latency_p95 fail, errors pass → fail

``rollback``: one line per action (traffic, registry, candidate), saying what was done or why
it could not be.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from paddle_canary.report import data


def _rows(verdict: dict[str, Any]) -> str:
    base = cand = None
    for gate in data.gate_rows(verdict):
        b, c = (data.number(x) for x in data.samples_of(gate))
        base = b if b is not None and (base is None or b > base) else base
        cand = c if c is not None and (cand is None or c > cand) else cand
    if base is None and cand is None:
        return "rows ?"
    fmt = (lambda v: "?" if v is None else f"{v:,.0f}")
    return f"rows stable {fmt(base)} / candidate {fmt(cand)}"


def look_line(verdict: dict[str, Any], step: int | None = None, weight: int | None = None,
              at: float | None = None) -> str:
    """One look of the judge in one line: time, weight, rows, status per gate, verdict."""
    ts = at if at is not None else data.number(verdict.get("evaluated_at"))
    when = datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S UTC") if ts else "?"
    where = (f"step {step} at {weight} %" if step is not None else f"at {weight} %"
             if weight is not None else "")
    gates = ", ".join(f"{g.get('gate')} {g.get('status')}" for g in data.gate_rows(verdict))
    parts = [f"look {when}", where, _rows(verdict), gates or "no gates"]
    line = " · ".join(p for p in parts if p) + f" → {verdict.get('status')}"
    reason = str(verdict.get("reason") or "")
    if verdict.get("status") == "fail" and reason:
        line += f": {reason[:300]}"
    elif not data.gate_rows(verdict) and reason:
        line += f" ({reason[:200]})"
    return line


def event_line(event: dict[str, Any]) -> str:
    """What a TriggerEvent of the analysis says, in one line (instead of the whole verdict)."""
    verdict = event.get("verdict") if isinstance(event, dict) else None
    if not isinstance(verdict, dict):
        return f"analysis event ({type(event).__name__})"
    reason = str(verdict.get("reason") or "")
    return (f"analysis ended {verdict.get('status')}"
            + (f": {reason[:200]}" if reason else "")
            + (" (traffic cut to 0 %)" if verdict.get("cut_at") else ""))


def rollback_lines(plan: dict[str, Any], result: dict[str, Any], blame: str) -> list[str]:
    """One line per rollback action: what was done, or what could not be and why."""
    failed = {part.split(":", 1)[0]: part.split(":", 1)[1].strip()
              for part in result.get("incomplete") or []}
    model, cand, base = plan.get("model"), plan.get("candidate"), plan.get("baseline")

    def line(part: str, done: str) -> str:
        return f"rollback {part}: FAILED, {failed[part]}" if part in failed else \
            f"rollback {part}: {done}"

    registry = (f"{model} {cand} marked rejected ({result.get('reason')})"
                if blame == "candidate" else
                f"{model} {cand} no longer the candidate (the gateway was at fault: not rejected)")
    return [line("traffic", f"every user of {model} on stable {base}, candidate weight 0"),
            line("registry", registry),
            line("candidate", f"{cand} stopped")]


def log_safely(log_fn, make_line, *args) -> None:
    """Log ``make_line(*args)``; a line that cannot be made is a warning, never an exception
    (the analysis and the rollback must not fail over a log line)."""
    try:
        log_fn(make_line(*args))
    except Exception as exc:  # noqa: BLE001
        log_fn(f"(log line not made: {type(exc).__name__}: {exc})")
