"""Turn a release journal into what the report shows: outcome, timings, series, verdicts.

The journal's records are ``{"ts", "event", ...}`` dicts whose kinds and fields
:mod:`paddle_canary.release.events` declares (the constants below come from there); the outcome
is that module's :func:`~paddle_canary.release.events.outcome`. Verdicts come from the analysis
package; every field is read defensively, so a journal from an older or newer version of the
judge, or a release that stopped half-way, still gives a report.
"""

from __future__ import annotations

import math
import re
from typing import Any

from paddle_canary.release import events as ev

GATE_ORDER = ("score_distribution", "rejection_rate", "latency_p95", "errors")

# Per-version figures the judge puts in a gate's ``details`` (or, from older judges, on the gate
# itself): (gate, baseline key, candidate key), first match wins.
P95_KEYS = (("latency_p95", "baseline_p95_ms", "candidate_p95_ms"),)
REJECTION_KEYS = (("rejection_rate", "baseline_reject_rate", "candidate_reject_rate"),
                  ("rejection_rate", "baseline_rate", "candidate_rate"))
# Checks whose limit holds on both sides of zero (|effect| <= limit); others are one-sided.
TWO_SIDED_CHECKS = ("mean_score", "reject_rate_diff")


def ts_of(event: dict[str, Any]) -> float:
    try:
        return float(event.get("ts"))
    except (TypeError, ValueError):
        return math.nan


def ordered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with a usable time, oldest first (the journal order breaks ties)."""
    usable = [e for e in events if isinstance(e, dict) and math.isfinite(ts_of(e))]
    return sorted(usable, key=ts_of)


def window(events: list[dict[str, Any]]) -> tuple[float, float]:
    """(first, last) event time; (0, 0) for an empty journal."""
    times = [ts_of(e) for e in ordered(events)]
    return (times[0], times[-1]) if times else (0.0, 0.0)


def _first(events, kind: str) -> dict[str, Any] | None:
    return next((e for e in events if e.get("event") == kind), None)


def status_of(verdict: Any) -> str:
    return verdict.get("status", "") if isinstance(verdict, dict) else ""


# ---- outcome and headline figures ---------------------------------------------------------

def outcome(events: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"outcome": promoted|rolled_back|refused|failed|unfinished, "label", "reason"}``."""
    typed = []
    for record in ordered(events):
        try:
            typed.append(ev.parse(record))
        except ValueError:
            continue
    word = ev.outcome(typed)
    failure_reason = ev.failure_reason(typed)
    rolled = ev.first(typed, ev.RolledBack)
    labels = {ev.PROMOTED_OUTCOME: "promoted", ev.ROLLED_BACK_OUTCOME: "rolled back",
              ev.REFUSED: "refused", ev.FAILED: "failed (not rolled back)",
              ev.UNFINISHED: "unfinished"}
    reason = None
    if word == ev.ROLLED_BACK_OUTCOME:
        reason = (rolled.reason if rolled else None) or failure_reason
    elif word in (ev.REFUSED, ev.FAILED):
        reason = failure_reason
    return {"outcome": word, "label": labels[word], "reason": reason}


def weight_points(events: list[dict[str, Any]], end: float | None = None) -> list[tuple[float, int]]:
    """The candidate's share of users over time, as the points of a step line.

    ``weight`` sets it, ``cut`` and ``rolled_back`` drop it to 0, ``promoted`` means the
    candidate serves everyone (100).
    """
    events = ordered(events)
    if not events:
        return []
    points = [(ts_of(events[0]), 0)]
    for e in events:
        kind = e.get("event")
        if kind == ev.WEIGHT:
            try:
                points.append((ts_of(e), int(e.get("weight"))))
            except (TypeError, ValueError):
                continue
        elif kind in (ev.CUT, ev.ROLLED_BACK):
            points.append((ts_of(e), 0))
        elif kind == ev.PROMOTED:
            points.append((ts_of(e), 100))
    last = end if end is not None else ts_of(events[-1])
    points.append((max(last, points[-1][0]), points[-1][1]))
    return points


def weight_at(points: list[tuple[float, int]], t: float) -> int:
    """The weight just before time ``t``."""
    w = 0
    for ts, weight in points:
        if ts >= t:
            break
        w = weight
    return w


def fault_to_zero(events: list[dict[str, Any]]) -> dict[str, Any]:
    """When the first fault signal came, when the candidate was back at 0 %, and the gap.

    A fault signal is the first judge look that says ``fail``, a step's final ``fail`` verdict,
    or a recorded task ``failure``. ``seconds`` is None when there was no fault, no cut yet, or
    when the candidate had no users at the time (then ``note`` says so).
    """
    events = ordered(events)
    faults = []
    for e in events:
        kind = e.get("event")
        if kind in (ev.LOOK, ev.VERDICT) and status_of(e.get("verdict")) == "fail":
            faults.append((ts_of(e), f"judge: {kind} failed"
                           + (f" ({failing_gates(e['verdict'])})" if failing_gates(e["verdict"])
                              else "")))
        elif kind == ev.FAILURE:
            faults.append((ts_of(e), f"failure in {e.get('task') or 'a task'}: "
                                     f"{e.get('reason') or 'no reason given'}"))
    out: dict[str, Any] = {"fault_at": None, "fault_signal": None, "zero_at": None,
                           "seconds": None, "note": None}
    if not faults:
        out["note"] = "no fault signal"
        return out
    fault_at, signal = min(faults, key=lambda f: f[0])
    out.update(fault_at=fault_at, fault_signal=signal)
    if weight_at(weight_points(events), fault_at) == 0:
        out["note"] = "the candidate had no users when the fault was seen"
        return out
    zero = next((e for e in events if e.get("event") in (ev.CUT, ev.ROLLED_BACK)
                 and ts_of(e) >= fault_at), None)
    if zero is None:
        out["note"] = "traffic was not cut to 0 %"
        return out
    out.update(zero_at=ts_of(zero), seconds=ts_of(zero) - fault_at)
    return out


def failing_gates(verdict: Any) -> str:
    gates = verdict.get("gates") if isinstance(verdict, dict) else None
    return ", ".join(str(g.get("gate")) for g in gates or []
                     if isinstance(g, dict) and g.get("status") == "fail")


def steps_reached(plan: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Which planned weights were actually applied."""
    planned = [int(s) for s in plan.get("steps") or [] if isinstance(s, (int, float))]
    applied = []
    for e in ordered(events):
        if e.get("event") == ev.WEIGHT and isinstance(e.get("weight"), (int, float)):
            w = int(e["weight"])
            if w not in applied:
                applied.append(w)
    reached = [w for w in planned if w in applied]
    return {"planned": planned, "applied": applied, "count": len(reached),
            "of": len(planned), "max_weight": max(applied, default=0)}


_NAME = re.compile(r"""['"]name['"]\s*:\s*['"]([^'"]*)['"]""")
_ID = re.compile(r"""['"]id['"]\s*:\s*['"]([^'"]*)['"]""")


def person(by: Any) -> str | None:
    """Who answered, as a name: Airflow gives the responding user as ``{'id', 'name'}`` (and
    journals hold that dict, or its text)."""
    if by is None or by == "":
        return None
    if isinstance(by, dict):
        return str(by.get("name") or by.get("id") or "?")
    text = str(by)
    m = _NAME.search(text) or _ID.search(text)
    return m.group(1) if m else text


def approval_kind(task: Any) -> str:
    """``before``: asked before its step's weight was applied (``step_NN.approve``);
    ``after``: a confirmation asked after the step's analysis stayed inconclusive."""
    return "after" if str(task or "").endswith(".confirm") else "before"


def approvals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per approval asked: the weight, whether it was asked before that weight was
    applied or after its step (a confirmation), when, the answer and who gave it."""
    rows: list[dict[str, Any]] = []
    for e in ordered(events):
        kind = e.get("event")
        if kind == ev.APPROVAL_REQUESTED:
            rows.append({"task": e.get("task"), "weight": e.get("weight"),
                         "kind": approval_kind(e.get("task")),
                         "requested_at": ts_of(e), "answered_at": None, "answer": None,
                         "by": None})
        elif kind == ev.APPROVAL_ANSWERED:
            row = next((r for r in reversed(rows) if r["task"] == e.get("task")
                        and r["answered_at"] is None), None)
            if row is None:
                row = {"task": e.get("task"), "weight": e.get("weight"),
                       "kind": approval_kind(e.get("task")), "requested_at": None}
                rows.append(row)
            row.update(answered_at=ts_of(e), answer=e.get("answer"), by=person(e.get("by")))
    return rows


MANUAL_KINDS = (ev.PAUSED, ev.RESUMED, ev.FULL_PROMOTION, ev.UNDONE)


def manual_actions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What people did by hand (pause, resume, promote --full, undo): when, who, why."""
    return [{"action": e.get("event"), "at": ts_of(e), "by": e.get("by"),
             "reason": e.get("reason") or ""}
            for e in ordered(events) if e.get("event") in MANUAL_KINDS]


def window_waits(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps that waited for the model's promotion window: when, which step, until when."""
    return [{"at": ts_of(e), "step": e.get("step"), "weight": e.get("weight"),
             "until": e.get("until"), "window": e.get("window") or ""}
            for e in ordered(events) if e.get("event") == ev.WINDOW_WAIT]


# ---- verdicts -----------------------------------------------------------------------------

_STEP = re.compile(r"step_(\d+)")


def step_weight_of(task: Any, plan: dict[str, Any]) -> int | None:
    """The weight of the step a task id like ``step_03.analyze`` belongs to (1-based slots)."""
    m = _STEP.search(str(task or ""))
    steps = plan.get("steps") or []
    if m and 1 <= int(m.group(1)) <= len(steps):
        return steps[int(m.group(1)) - 1]
    return None


def final_verdicts(plan: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step's final verdict in order: ``{task, weight, ts, verdict}``."""
    points = weight_points(events)
    out = []
    for e in ordered(events):
        if e.get("event") != ev.VERDICT or not isinstance(e.get("verdict"), dict):
            continue
        weight = step_weight_of(e.get("task"), plan)
        if weight is None:
            weight = weight_at(points, ts_of(e))
        out.append({"task": e.get("task"), "weight": weight, "ts": ts_of(e),
                    "verdict": e["verdict"]})
    return out


def gate_rows(verdict: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdict's gates as plain dicts (skipping anything that is not one)."""
    gates = verdict.get("gates") if isinstance(verdict, dict) else None
    return [g for g in gates or [] if isinstance(g, dict)]


def samples_of(gate: dict[str, Any]) -> tuple[Any, Any]:
    s = gate.get("samples")
    if isinstance(s, dict):
        return s.get("baseline"), s.get("candidate")
    if isinstance(s, (list, tuple)) and len(s) == 2:
        return s[0], s[1]
    return None, None


def interval_of(item: dict[str, Any]) -> tuple[float, float] | None:
    iv = item.get("interval")
    if isinstance(iv, (list, tuple)) and len(iv) == 2 and all(number(v) is not None for v in iv):
        return float(iv[0]), float(iv[1])
    return None


def figure(gate: dict[str, Any], key: str) -> float | None:
    """A supporting number of a gate: from ``details``, else from the gate itself."""
    details = gate.get("details") if isinstance(gate.get("details"), dict) else {}
    return number(details.get(key, gate.get(key)))


def number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# ---- series from the judge's looks --------------------------------------------------------

def looks(events: list[dict[str, Any]]) -> list[tuple[float, dict[str, Any]]]:
    return [(ts_of(e), e["verdict"]) for e in ordered(events)
            if e.get("event") == ev.LOOK and isinstance(e.get("verdict"), dict)]


def gate_names(events: list[dict[str, Any]]) -> list[str]:
    """Gates seen in any look or verdict, in the usual order, then any others."""
    seen: list[str] = []
    for e in ordered(events):
        if e.get("event") in (ev.LOOK, ev.VERDICT):
            for g in gate_rows(e.get("verdict")):
                name = str(g.get("gate"))
                if name not in seen:
                    seen.append(name)
    return [g for g in GATE_ORDER if g in seen] + [g for g in seen if g not in GATE_ORDER]


def effect_series(events: list[dict[str, Any]], gate: str) -> list[dict[str, Any]]:
    """Per look of ``gate``, one series per check (or one for the gate when it has no checks).

    Returns ``[{"name", "unit", "limit", "points": [(ts, effect, lo, hi, status)]}]``;
    ``lo``/``hi`` are None where the look had no interval.
    """
    series: dict[str, dict[str, Any]] = {}
    for ts, verdict in looks(events):
        for g in gate_rows(verdict):
            if g.get("gate") != gate:
                continue
            checks = [c for c in g.get("checks") or [] if isinstance(c, dict)]
            items = checks or [dict(g, name=gate)]
            for item in items:
                name = str(item.get("name") or gate)
                s = series.setdefault(name, {"name": name, "unit": item.get("unit") or "",
                                             "limit": number(item.get("limit")), "points": []})
                if s["limit"] is None:
                    s["limit"] = number(item.get("limit"))
                effect = number(item.get("effect"))
                iv = interval_of(item)
                if effect is None and iv is None:
                    continue
                s["points"].append((ts, effect, iv[0] if iv else None, iv[1] if iv else None,
                                    str(item.get("status") or g.get("status") or "")))
    return list(series.values())


def version_series(events: list[dict[str, Any]], keys) -> dict[str, list[tuple[float, float]]]:
    """``{"baseline": [(ts, v)], "candidate": [(ts, v)]}`` from the looks' per-gate figures."""
    out: dict[str, list[tuple[float, float]]] = {"baseline": [], "candidate": []}
    for ts, verdict in looks(events):
        for g in gate_rows(verdict):
            for gate, b_key, c_key in keys:
                if g.get("gate") != gate:
                    continue
                found = [(side, figure(g, key)) for side, key in
                         (("baseline", b_key), ("candidate", c_key))]
                for side, v in found:
                    if v is not None:
                        out[side].append((ts, v))
                if any(v is not None for _, v in found):
                    break  # the first key pair this gate has
    return out


# ---- the JSON summary ---------------------------------------------------------------------

def summary(plan: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """What a script (or ``make demo``) needs to know about the release, JSON-ready."""
    start, end = window(events)
    out = outcome(events)
    ftz = fault_to_zero(events)
    reached = steps_reached(plan, events)
    return {
        "model": plan.get("model"),
        "candidate": plan.get("candidate"),
        "baseline": plan.get("baseline"),
        "run_id": plan.get("run_id"),
        "outcome": out["outcome"],
        "reason": out["reason"],
        "steps_planned": reached["planned"],
        "steps_applied": reached["applied"],
        "steps_reached": reached["count"],
        "max_weight": reached["max_weight"],
        "started_at": start or None,
        "ended_at": end or None,
        "duration_s": (end - start) if events else None,
        "fault_at": ftz["fault_at"],
        "fault_signal": ftz["fault_signal"],
        "zero_at": ftz["zero_at"],
        "fault_to_zero_s": ftz["seconds"],
        "fault_to_zero_note": ftz["note"],
        "approvals": approvals(events),
        "manual": manual_actions(events),
        "window_waits": window_waits(events),
        "verdicts": [{"task": v["task"], "weight": v["weight"], "ts": v["ts"],
                      "status": status_of(v["verdict"]),
                      "reason": v["verdict"].get("reason"),
                      "gates": {str(g.get("gate")): g.get("status")
                                for g in gate_rows(v["verdict"])}}
                     for v in final_verdicts(plan, events)],
        "looks": len(looks(events)),
    }
