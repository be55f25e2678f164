"""The run note: one short text that tells release runs apart in Airflow's runs list and says
where each stands (imports no Airflow; :mod:`paddle_canary.airflow.run_note` sets it).

``risk-score v2 vs v1: 5/25/50/100 %, 30 s steps`` then, as the release goes, ``now 25 %
(step 2 of 4)``, and at the end the outcome: ``promoted at 03:41 UTC; v1 torn down at 03:41 UTC
+ 24 h`` or ``rolled back at 25 %: latency_p95 fail: ...``. Airflow keeps at most 1000
characters.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from paddle_canary.release import events as ev
from paddle_canary.report import data

MAX_CHARS = 1000


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size and s % size == 0:
            return f"{s // size} {unit}"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s"
    return f"{s} s"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M UTC")


def plan_line(plan: dict[str, Any]) -> str:
    """``risk-score v2 vs v1: 5/25/50/100 %, 30 s steps``."""
    steps = "/".join(str(s) for s in plan.get("steps") or [])
    return (f"{plan.get('model')} {plan.get('candidate')} vs {plan.get('baseline')}: "
            f"{steps} %, {_duration(float(plan.get('step_interval_s') or 0))} steps")


def refused_note(request: dict[str, Any], reason: str) -> str:
    what = " ".join(str(request.get(k)) for k in ("model", "version") if request.get(k))
    return cut(f"{what or 'release'}: refused: {reason}")


def run_note(plan: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The note of a release whose journal ``records`` are, as it stands now."""
    parts = [plan_line(plan)]
    steps = list(plan.get("steps") or [])
    points = data.weight_points(records)
    weight = points[-1][1] if points else 0
    out = data.outcome(records)
    word = out["outcome"]
    if word == ev.UNFINISHED:
        if weight and weight in steps:
            parts.append(f"now {weight} % (step {steps.index(weight) + 1} of {len(steps)})")
        else:
            parts.append(f"now {weight} %")
        asked = [r for r in records if r.get("event") == ev.APPROVAL_REQUESTED]
        answered = {r.get("task") for r in records if r.get("event") == ev.APPROVAL_ANSWERED}
        if asked and asked[-1].get("task") not in answered:
            parts.append(f"waiting for an approval before {asked[-1].get('weight')} %")
    elif word == ev.PROMOTED_OUTCOME:
        promoted = next((r for r in records if r.get("event") == ev.PROMOTED), {})
        text = f"promoted at {_clock(data.ts_of(promoted))}" if promoted else "promoted"
        torn = next((r for r in records if r.get("event") == ev.TORN_DOWN), None)
        delay = float(plan.get("teardown_delay_s") or 0)
        if torn:
            text += f"; {plan.get('baseline')} torn down at {_clock(data.ts_of(torn))}"
        elif promoted:
            text += (f"; {plan.get('baseline')} to be torn down at "
                     f"{_clock(data.ts_of(promoted) + delay)} (promotion + {_duration(delay)})")
        parts.append(text)
    else:
        reached = max((w for _, w in points), default=0)
        at = f" at {reached} %" if word == ev.ROLLED_BACK_OUTCOME else ""
        parts.append(f"{out['label']}{at}" + (f": {out['reason']}" if out["reason"] else ""))
    return cut(" · ".join(parts))


def cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"
