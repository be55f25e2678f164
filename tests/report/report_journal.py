"""Synthetic release journals shaped like the ones the release tasks write.

Verdicts follow the analysis package's ``Verdict.to_dict()`` (gates with checks, details,
samples as a dict, NaN written as null).
"""

from __future__ import annotations

import math

T0 = 1_764_000_000.0
MODEL, STABLE, CANDIDATE = "risk-score", "v1", "v2"
STEPS = [5, 25, 50, 100]
GATES = {
    "score_distribution": {"max_mean_rel_diff": 0.05, "max_psi": 0.1},
    "rejection_rate": {"max_abs_diff_pp": 1.0},
    "latency_p95": {"max_ms": 80.0, "max_ratio": 1.2},
    "errors": {"max_abs_diff_pp": 0.5, "burst_min_errors": 5, "burst_min_rate_pp": 20.0},
    "min_samples": 200,
    "alpha": 0.05,
}
# Promoted run: fault never seen. Rolled-back run: the first failing look, then the cut.
FAULT_LOOK_AT = T0 + 38.0
CUT_AT = T0 + 39.7
FAULT_TO_ZERO_S = CUT_AT - FAULT_LOOK_AT
LATENCY_REASON = ("latency_p95 fail: candidate P95 142.0 ms; 31.0% of 410 requests above 80 ms "
                  "(CS 22.1%..40.9%), limit 5%")


def plan(run_id: str, steps=STEPS) -> dict:
    return {
        "model": MODEL, "candidate": CANDIDATE, "baseline": STABLE, "steps": list(steps),
        "step_interval_s": 12.0, "approvals_before": [50, 100], "teardown_delay_s": 30.0,
        "poll_interval_s": 2.0, "max_extensions": 2, "runtime": "local", "gates": GATES,
        "run_id": run_id,
    }


def _check(name, status, effect, lo, hi, limit, unit, reason):
    return {"name": name, "status": status, "effect": effect, "interval": [lo, hi],
            "limit": limit, "unit": unit, "reason": reason}


def _gate(name, checks, n_b, n_c, details):
    statuses = [c["status"] for c in checks]
    status = "fail" if "fail" in statuses else "pass" if all(s == "pass" for s in statuses) \
        else "inconclusive"
    deciding = next(c for c in checks if c["status"] == status) if status in statuses else checks[0]
    return {"gate": name, "status": status, "effect": deciding["effect"],
            "interval": deciding["interval"], "samples": {"baseline": n_b, "candidate": n_c},
            "reason": f"{name} {status}: " + "; ".join(c["reason"] for c in checks),
            "thresholds": GATES[name], "checks": checks, "details": details}


def verdict(at: float, since: float, n_c: float, *, p95_c: float = 21.0, slow: bool = False) -> dict:
    """One look: inconclusive below 200 candidate rows, pass after; ``slow`` fails latency."""
    n_b = n_c * 9
    enough = n_c >= 200
    shrink = 1 / math.sqrt(max(n_c, 1))
    st = "pass" if enough else "inconclusive"
    gates = [
        _gate("score_distribution", [
            _check("mean_score", st, 0.004, 0.004 - 0.4 * shrink, 0.004 + 0.4 * shrink, 0.05,
                   "relative", "mean score 0.372 vs 0.371 (+0.4%)"),
            _check("psi", st, 0.012, 0.0, 0.03 + shrink, 0.1, "psi", "PSI 0.012"),
        ], n_b, n_c, {"baseline_mean_score": 0.371, "candidate_mean_score": 0.372, "psi": 0.012}),
        _gate("rejection_rate", [
            _check("reject_rate_diff", st, 0.2, 0.2 - 15 * shrink, 0.2 + 15 * shrink, 1.0, "pp",
                   "reject rate 37.4% vs 37.2%: +0.20 pp"),
        ], n_b, n_c, {"baseline_reject_rate": 0.372, "candidate_reject_rate": 0.374}),
    ]
    if slow:
        share = 0.31
        lat = [_check("p95_under_max_ms", "fail", share, 0.221, 0.409, 0.05, "share",
                      "candidate P95 142.0 ms; 31.0% of 410 requests above 80 ms "
                      "(CS 22.1%..40.9%), limit 5%")]
        p95_c = 142.0
    else:
        lat = [_check("p95_under_max_ms", st, 0.01, 0.0, 0.02 + shrink, 0.05, "share",
                      f"candidate P95 {p95_c:.1f} ms")]
    lat.append(_check("p95_ratio", st if not slow else "inconclusive", None, None, None, 0.05,
                      "share", "P95 ratio"))
    gates.append(_gate("latency_p95", lat, n_b, n_c,
                       {"baseline_p95_ms": 20.0, "candidate_p95_ms": p95_c}))
    gates.append(_gate("errors", [
        _check("error_rate_diff", st, 0.0, -0.3, 0.3 + shrink, 0.5, "pp", "error rate 0.00%"),
        _check("burst", "pass", 0.0, 0.0, 0.0, 5.0, "errors", "no burst"),
    ], n_b, n_c, {"baseline_error_rate": 0.0, "candidate_error_rate": 0.0}))
    statuses = [g["status"] for g in gates]
    status = "fail" if "fail" in statuses else "pass" if all(s == "pass" for s in statuses) \
        else "inconclusive"
    reason = LATENCY_REASON if slow else "all gates pass" if status == "pass" else "too few rows"
    return {"status": status, "model": MODEL, "baseline": STABLE, "candidate": CANDIDATE,
            "window": {"start": since, "end": at, "seconds": at - since}, "evaluated_at": at,
            "reason": reason, "gates": gates}


def _e(ts, event, **details):
    return {"ts": ts, "event": event, **details}


def promoted_journal(run_id: str = "manual__2025-11-24T16:00:00+00:00") -> list[dict]:
    p = plan(run_id)
    ev = [_e(T0, "plan", plan=p),
          _e(T0 + 1.2, "validated", report={"passed": True, "problems": []}),
          _e(T0 + 3.5, "deployed", stable_url="http://127.0.0.1:1", candidate_url="http://127.0.0.1:2")]
    t = T0 + 4.0
    for slot, w in enumerate(STEPS, 1):
        if w in (50, 100):
            ev.append(_e(t, "approval_requested", task=f"step_{slot:02d}.approve", weight=w))
            t += 6.0
            ev.append(_e(t, "approval_answered", task=f"step_{slot:02d}.approve",
                         answer="Approve", by="admin"))
            t += 0.3
        ev.append(_e(t, "weight", weight=w))
        since = t
        for k in range(1, 7):
            t = since + 2.0 * k
            ev.append(_e(t, "look", verdict=verdict(t, since, n_c=40 * k * w / 5)))
        ev.append(_e(t + 0.1, "verdict", task=f"step_{slot:02d}.analyze",
                     verdict=verdict(t, since, n_c=40 * 6 * w / 5)))
        t += 0.5
    ev += [_e(t, "promoted", previous=STABLE),
           _e(t + 0.2, "teardown_scheduled", at="2025-11-24T16:02:00+00:00"),
           _e(t + 0.4, "finished", outcome="promoted")]
    return ev


def rolled_back_journal(run_id: str = "manual__2025-11-24T17:00:00+00:00") -> list[dict]:
    """5 % passes; at 25 % the candidate turns slow, the judge fails, the trigger cuts."""
    p = plan(run_id)
    ev = [_e(T0, "plan", plan=p),
          _e(T0 + 1.2, "validated", report={"passed": True, "problems": []}),
          _e(T0 + 3.5, "deployed", stable_url="http://127.0.0.1:1", candidate_url="http://127.0.0.1:2"),
          _e(T0 + 4.0, "weight", weight=5)]
    for k in range(1, 7):
        ev.append(_e(T0 + 4.0 + 2 * k, "look", verdict=verdict(T0 + 4 + 2 * k, T0 + 4, 60 * k)))
    ev.append(_e(T0 + 16.1, "verdict", task="step_01.analyze",
                 verdict=verdict(T0 + 16, T0 + 4, 360)))
    ev.append(_e(T0 + 30.0, "weight", weight=25))
    for k in range(1, 4):
        ev.append(_e(T0 + 30 + 2 * k, "look", verdict=verdict(T0 + 30 + 2 * k, T0 + 30, 60 * k)))
    ev.append(_e(FAULT_LOOK_AT, "look",
                 verdict=verdict(FAULT_LOOK_AT, T0 + 30, 410, slow=True)))
    ev.append(_e(CUT_AT, "cut", weight=0, reason=LATENCY_REASON))
    ev.append(_e(T0 + 40.2, "verdict", task="step_02.analyze",
                 verdict=verdict(FAULT_LOOK_AT, T0 + 30, 410, slow=True)))
    ev.append(_e(T0 + 40.3, "failure", task="step_02.analyze", reason=LATENCY_REASON))
    ev.append(_e(T0 + 42.0, "cut", weight=0, reason=LATENCY_REASON))
    ev.append(_e(T0 + 43.1, "rolled_back", reason=LATENCY_REASON))
    ev.append(_e(T0 + 43.5, "finished", outcome="rolled_back"))
    return ev
