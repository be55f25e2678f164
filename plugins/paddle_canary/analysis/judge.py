"""The judge: baseline and candidate counts over the same window in, a :class:`Verdict` out.

It never talks HTTP (providers do) and never raises on what it is given. No data for either
version - Prometheus unreachable, no series, a window with nothing in it - makes every gate
*inconclusive* with the reason; so do counts that cannot be trusted (negative, not finite,
beyond 2**53: ``counts.problems`` names them) and a restart of the *baseline's* process inside
the window. A restart of the candidate's process is a fail (``gates.errors``). It is never a
pass. The step's status: fail if any gate fails, pass only when all pass, else inconclusive.

Looks of one step build on each other: given the previous look's verdict, each check's
interval is intersected with the previous one (a running intersection of a confidence
sequence is a confidence sequence: Howard, Ramdas, McAuliffe, Sekhon, Ann. Statist. 2021), so
intervals never widen and a gate that passed stays passed while the data agree. A check whose
interval is not about one fixed quantity (``p95_ratio``: its threshold moves with stable's
P95) keeps a pass or fail it reached instead. When the new interval and the old one do not
overlap at all, the candidate changed during the step (or a 1-in-1/alpha event happened):
the new interval decides alone, so a candidate that turns bad after passing still fails. A
look without usable data carries the previous checks forward unchanged, so the next look can
still build on them, but is itself inconclusive.
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping

from paddle_canary.analysis import counts as counts_mod
from paddle_canary.analysis.config import GATES, GateConfig
from paddle_canary.analysis.counts import NoData, WindowCounts
from paddle_canary.analysis.gates import (GATE_FUNCTIONS, RULES, SHARE, _share_status, decide,
                                          regate)
from paddle_canary.analysis.verdict import (FAIL, INCONCLUSIVE, PASS, Check, GateResult,
                                            Verdict, status_and_reason)


def judge(baseline: WindowCounts | NoData, candidate: WindowCounts | NoData,
          config: GateConfig, evaluated_at: float | None = None,
          previous: Verdict | Mapping[str, Any] | None = None) -> Verdict:
    """Compare ``candidate`` with ``baseline`` on every gate of ``config``.

    ``previous``: the verdict of this step's previous look (a :class:`Verdict` or its
    ``to_dict()``), whose intervals are intersected with this look's; it must be for the same
    model, versions and window start, and not end after this window (``ValueError`` otherwise:
    that is a caller's mistake, not data).
    """
    evaluated_at = time.time() if evaluated_at is None else evaluated_at
    missing = [x for x in (baseline, candidate) if isinstance(x, NoData)]
    window = next((x for x in (candidate, baseline) if isinstance(x, WindowCounts)), None)
    start = window.start if window else missing[0].start
    end = window.end if window else missing[0].end
    prev = _previous(previous, candidate, baseline)
    untrusted = "" if missing else _untrusted(baseline, candidate)
    if missing or untrusted:
        why = ("; ".join(f"{m.version}: {m.reason}" for m in missing) if missing
               else untrusted)
        word = "no data" if missing else "counts not trusted"
        gates = tuple(_held(name, f"{word} ({why})", config, prev) for name in GATES)
        reason = f"{word}: {why}"
    else:
        gates = tuple(GATE_FUNCTIONS[name](baseline, candidate, config) for name in GATES)
        if prev:
            gates = tuple(_intersect(g, prev.get(g.gate, {}), candidate) for g in gates)
        reason = ""
    status, reason = status_and_reason(gates, reason)
    return Verdict(status=status, model=candidate.model, baseline=baseline.version,
                   candidate=candidate.version, window_start=start, window_end=end,
                   evaluated_at=evaluated_at, reason=reason, gates=gates)


def _untrusted(b: WindowCounts, c: WindowCounts) -> str:
    found = counts_mod.problems(b) + counts_mod.problems(c)
    if not found and b.restarts > 0:
        found.append(f"stable {b.version} restarted {b.restarts:.0f} time(s) in the window "
                     "(its counters reset)")
    return "; ".join(found)


def previous_mismatch(previous: Verdict | Mapping[str, Any] | None,
                      baseline: WindowCounts | NoData, candidate: WindowCounts | NoData
                      ) -> str:
    """Why ``previous`` is not an earlier look at the window of these counts ("" when it is, or
    when there is none): not a verdict at all, another model or versions, another window start
    (the window restarted), or a window ending after this one."""
    if previous is None:
        return ""
    try:
        v = previous if isinstance(previous, Verdict) else Verdict.from_dict(dict(previous))
    except (KeyError, TypeError, ValueError) as exc:
        return f"not a verdict ({type(exc).__name__}: {exc})"
    window = next((x for x in (candidate, baseline) if isinstance(x, WindowCounts)), baseline)
    start, end = window.start, window.end
    want = (candidate.model, baseline.version, candidate.version)
    if (v.model, v.baseline, v.candidate) != want:
        return (f"previous verdict is for {v.model} {v.candidate} vs {v.baseline}, "
                f"not {want[0]} {want[2]} vs {want[1]}")
    if not (math.isclose(v.window_start, start, abs_tol=1e-3) and v.window_end <= end + 1e-3):
        return (f"previous verdict's window {v.window_start:.3f}..{v.window_end:.3f} "
                f"is not an earlier look at the window starting {start:.3f}")
    return ""


def _previous(previous, candidate, baseline) -> dict[str, dict[str, Check]]:
    """The previous look's checks by gate and name, after checking it is this step's."""
    if previous is None:
        return {}
    why = previous_mismatch(previous, baseline, candidate)
    if why:
        raise ValueError(why)
    v = previous if isinstance(previous, Verdict) else Verdict.from_dict(dict(previous))
    return {g.gate: {c.name: c for c in g.checks} for g in v.gates}


def _held(name: str, why: str, config: GateConfig, prev: dict) -> GateResult:
    """An inconclusive gate for a look without usable data, carrying the previous checks."""
    thresholds = config.to_dict()[name]
    checks = tuple(prev.get(name, {}).values())
    return GateResult(gate=name, status=INCONCLUSIVE, effect=math.nan,
                      interval=(math.nan, math.nan), samples=(0.0, 0.0),
                      reason=f"{name} inconclusive: {why}", thresholds=thresholds,
                      checks=checks)


def _finite(interval) -> bool:
    return all(isinstance(x, (int, float)) and not math.isnan(x) for x in interval)


def _intersect(gate: GateResult, before: dict[str, Check], candidate: WindowCounts
               ) -> GateResult:
    """This look's checks of ``gate`` combined with the previous look's (see the module)."""
    if not before:
        return gate
    min_samples = gate.thresholds.get("min_samples", 0)
    checks = []
    for new in gate.checks:
        old = before.get(new.name)
        if old is None:
            checks.append(new)
            continue
        rule = RULES.get(new.name)
        if rule is None:  # not one fixed quantity: keep a decision once reached
            if old.status in (PASS, FAIL) and new.status == INCONCLUSIVE:
                checks.append(Check(new.name, old.status, new.effect, new.interval, new.limit,
                                    new.unit, f"{new.reason} ({old.status} at an earlier "
                                    "look, kept)"))
            elif old.status == FAIL:
                checks.append(Check(new.name, FAIL, new.effect, new.interval, new.limit,
                                    new.unit, f"{new.reason} (failed at an earlier look)"))
            else:
                checks.append(new)
            continue
        if not _finite(old.interval):
            checks.append(new)
            continue
        if not _finite(new.interval):      # nothing new (too few rows): the old one holds
            checks.append(Check(new.name, old.status, new.effect, old.interval, new.limit,
                                new.unit, f"{new.reason}; CS from earlier looks "
                                f"{old.interval[0]:.4g}..{old.interval[1]:.4g}"))
            continue
        lo = max(new.interval[0], old.interval[0])
        hi = min(new.interval[1], old.interval[1])
        if lo > hi:                        # disjoint: the candidate changed; the new one decides
            checks.append(Check(new.name, new.status, new.effect, new.interval, new.limit,
                                new.unit, f"{new.reason} (disjoint from the earlier looks' "
                                f"CS {old.interval[0]:.4g}..{old.interval[1]:.4g}: the "
                                "candidate changed during the step?)"))
            continue
        if rule == SHARE:
            n = gate.samples[1]
            status = _share_status(lo, hi, new.limit, n, min_samples)
            if old.status == PASS and status == INCONCLUSIVE:
                status = PASS
        else:
            status = decide(rule, lo, hi, new.limit)
        if (lo, hi) == tuple(new.interval) and status == new.status:
            checks.append(new)
            continue
        checks.append(Check(new.name, status, new.effect, (lo, hi), new.limit, new.unit,
                            f"{new.reason}; intersected with earlier looks: "
                            f"{lo:.4g}..{hi:.4g} -> {status}"))
    return regate(gate, checks)
