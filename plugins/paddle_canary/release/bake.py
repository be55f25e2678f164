"""The bake period: after promotion, while the previous version still runs (until its
teardown, ``teardown_delay_s``), the new stable is watched, and a breach undoes the promotion.

There is no second version left to compare with (every user is on the new stable), so the
guards are absolute, over the new stable's series since its promotion:

- **errors**: its error share (of the requests it is answerable for) must stay at or under the
  previous version's error rate plus ``gates.errors.max_abs_diff_pp``;
- **latency**: at most 5 % of its requests above ``gates.latency_p95.max_ms`` (its P95 under
  the gate's limit);
- **rejection rate**: within ``gates.rejection_rate.max_abs_diff_pp`` of the previous version's
  reject rate;
- **the process**: a restart (its counters reset) or a version that is gone is a breach.

The previous version's rates come from the last step judged, over the release so far (at 100 %
stable has almost no rows of its own), from at least ``min_samples`` rows; the allowed band is
widened by that estimate's own confidence interval, so a reference from few rows cannot undo a
good promotion. Without such a reference the rejection guard is not used.

Each share is judged with an exact beta-binomial confidence sequence (``analysis.stats``), at
``gates.alpha`` split over the three, and only a *fail* acts: the whole sequence beyond its
limit. No data, or counts that cannot be trusted, is "inconclusive" and acts on nothing. A
breach calls :func:`paddle_canary.release.manual.undo` (by ``bake guard``): traffic back to the
previous version, the registry's stable pointer back, the promoted version rejected and
stopped, all journalled as ``undone``; the teardown then keeps the previous version.
"""

from __future__ import annotations

import math
import time
from typing import Any

from paddle_canary.release import events as ev

BY = "bake guard"
N_CHECKS = 3
OK, FAIL, INCONCLUSIVE, UNDONE = "ok", "fail", "inconclusive", "undone"


def _reference(events: list[ev.Event], gate: str, key: str, min_samples: int
               ) -> tuple[float, float] | None:
    """The previous version's ``key`` rate in ``gate`` and the rows it is from: from the last
    step judged, over the release so far when that look had it (stable has almost no rows of
    its own at 100 %), and only from at least ``min_samples`` rows."""
    for verdict in reversed(ev.of_kind(events, ev.StepVerdict)):
        v = verdict.verdict or {}
        for source in (v.get("release_window"), v):
            found = next((g for g in (source or {}).get("gates") or []
                          if g.get("gate") == gate), None)
            if not found:
                continue
            rate = (found.get("details") or {}).get(key)
            n = (found.get("samples") or {}).get("baseline")
            if rate is not None and n is not None and n >= min_samples:
                return float(rate), float(n)
    return None


def _share_check(name: str, k: float, n: float, alpha: float, lo_limit: float,
                 hi_limit: float, what: str) -> dict[str, Any]:
    from paddle_canary.analysis.stats import beta_binomial_cs
    lo, hi = beta_binomial_cs(k, n, alpha) if n > 0 else (0.0, 1.0)
    share = k / n if n > 0 else math.nan
    status = FAIL if (lo > hi_limit or hi < lo_limit) else OK
    return {"check": name, "status": status, "share": share, "interval": [lo, hi],
            "reason": f"{what}: {share:.2%} of {n:.0f} (CS {lo:.2%}..{hi:.2%}), allowed "
                      f"{max(lo_limit, 0):.2%}..{min(hi_limit, 1):.2%}"}


def look(release, now: float | None = None) -> dict[str, Any]:
    """One look at the new stable (see the module): ``{"status": ok|fail|inconclusive|undone,
    "reason", "checks"}``. Never raises for what Prometheus or the runtime say."""
    from paddle_canary.analysis import counts as counts_mod
    from paddle_canary.analysis.config import GateConfig
    from paddle_canary.analysis.counts import NoData
    from paddle_canary.analysis.gates import P95
    from paddle_canary.analysis.stats import beta_binomial_cs, count_above
    from paddle_canary.runtime.base import GONE
    from paddle_canary.telemetry import LATENCY_BUCKETS

    p = release.plan
    events = release.events()
    if ev.first(events, ev.Undone) is not None:
        return {"status": UNDONE, "reason": "the promotion was undone", "checks": []}
    promoted = ev.first(events, ev.Promoted)
    if promoted is None:
        return {"status": INCONCLUSIVE, "reason": "not promoted", "checks": []}
    health = release.runtime.probe(p.model, p.candidate)
    if health.state == GONE:
        return {"status": FAIL, "checks": [],
                "reason": f"the new stable {p.candidate} is gone: {health.detail}"}
    now = time.time() if now is None else now
    if now <= promoted.ts:
        return {"status": INCONCLUSIVE, "reason": "no time since the promotion", "checks": []}
    counts = release.provider.window_counts(p.model, p.candidate, start=promoted.ts, end=now)
    if isinstance(counts, NoData):
        return {"status": INCONCLUSIVE, "reason": f"no data: {counts.reason}", "checks": []}
    problems = counts_mod.problems(counts)
    if problems:
        return {"status": INCONCLUSIVE, "checks": [],
                "reason": "counts not trusted: " + "; ".join(problems)}
    if counts.restarts > 0:
        return {"status": FAIL, "checks": [],
                "reason": f"the new stable {p.candidate} restarted {counts.restarts:.0f} "
                          "time(s) since its promotion"}
    config = GateConfig.from_dict(p.gates)
    alpha = config.alpha / N_CHECKS

    def band(ref: tuple[float, float] | None) -> tuple[float, float]:
        """The reference rate's own confidence interval (it was estimated too)."""
        if ref is None:
            return 0.0, 0.0
        return beta_binomial_cs(ref[0] * ref[1], ref[1], alpha)

    errors_ref = _reference(events, "errors", "baseline_error_rate", config.min_samples)
    rejects_ref = _reference(events, "rejection_rate", "baseline_reject_rate",
                             config.min_samples)
    err_limit = band(errors_ref)[1] + config.errors.max_abs_diff_pp / 100
    checks = [
        _share_check("errors", counts.errors, counts.served, alpha, -1.0, err_limit,
                     "error share"),
        _share_check("latency", count_above(counts.latency_buckets, LATENCY_BUCKETS,
                                            config.latency_p95.max_ms / 1000),
                     float(sum(counts.latency_buckets)), alpha, -1.0, 1 - P95,
                     f"requests above {config.latency_p95.max_ms:g} ms"),
    ]
    if rejects_ref is not None:
        m = config.rejection_rate.max_abs_diff_pp / 100
        lo, hi = band(rejects_ref)
        checks.append(_share_check("rejection_rate", counts.reject, counts.rows, alpha,
                                   lo - m, hi + m,
                                   f"reject share (the previous version's {rejects_ref[0]:.2%} "
                                   f"of {rejects_ref[1]:.0f} rows, +/- {m:.0%})"))
    failed = [c for c in checks if c["status"] == FAIL]
    if failed:
        return {"status": FAIL, "checks": checks,
                "reason": f"bake guard breached by {p.candidate} since its promotion: "
                          + "; ".join(c["reason"] for c in failed)}
    return {"status": OK, "checks": checks,
            "reason": "; ".join(c["reason"] for c in checks)}


def watch_once(release, now: float | None = None) -> dict[str, Any]:
    """A look, and on a breach the undo (:func:`manual.undo`). Adds ``undo`` (what undo
    returned) or ``undo_refused`` (why it could not: e.g. the previous version is not healthy)
    to the look."""
    from paddle_canary.release import manual

    result = look(release, now)
    if result["status"] != FAIL:
        return result
    try:
        result["undo"] = manual.undo(release, result["reason"], by=BY)
    except manual.ManualActionRefused as exc:
        result["undo_refused"] = str(exc)
    return result
