"""Evidence carried across steps: each look also judges the release so far.

A step's window holds only the rows since its weight was set: at a 5 % step of a short step
interval that is too few to decide anything (a 20 s step at 100 requests/s gives the candidate
~100 rows), however much the release has already seen - a shadow phase's thousands of mirrored
rows included. So every look of a step judges two windows of the same versions:

- the **step window** (since the step's weight was set), which sees a change quickly, and
- the **release window** (since the candidate was deployed, or since stable last restarted),
  which holds everything: the shadow phase's mirrored rows, the earlier steps' rows, and the
  paired (shadow-scored) rows of all of them. It is one confidence sequence over the whole
  release (its start never moves), so looking at it from every step costs its alpha once.

A gate of the look:

- **fails** when either window fails it (the release window's reason says so);
- **passes** when the step window passes it, or when the release window passes it *and* this
  step's own window holds at least ``min_samples`` candidate rows/requests and does not fail
  it: the candidate was seen at this share, enough to fail it, and did not;
- is **inconclusive** otherwise.

The step's own checks (and intervals) stay in the gate, so the next look's running
intersection (``judge``) still builds on the step window; the release window's verdict travels
beside it (``release_window`` in the controller's look) and is built on the same way. What this
trades: a regression that only shows at a larger share and stays inside the step window's noise
can pass on evidence gathered at smaller shares (latency under load is the one gate where that
is plausible); the step window still fails it as soon as its own rows show it.
"""

from __future__ import annotations

import dataclasses

from paddle_canary.analysis.verdict import FAIL, PASS, GateResult, Verdict, status_and_reason


def _since(release: Verdict) -> str:
    return f"{release.window_end - release.window_start:.0f} s since the candidate was deployed"


def carry_gate(step: GateResult, release: GateResult | None, min_samples: int,
               span: str) -> GateResult:
    """One gate of the look: ``step``'s, with the status the release window gives it (see the
    module)."""
    if release is None or step.status == FAIL:
        return step
    if release.status == FAIL:
        return dataclasses.replace(step, status=FAIL,
                                   reason=f"{step.gate} fail over the release so far ({span}): "
                                          f"{release.reason}")
    if step.status == PASS or release.status != PASS:
        return step
    own = step.samples[1]
    if own < min_samples:
        return dataclasses.replace(step, reason=f"{step.reason} (passes over the release so "
                                                f"far, but this step has {own:.0f} candidate "
                                                f"rows of its own; min_samples {min_samples})")
    return dataclasses.replace(
        step, status=PASS,
        reason=f"{step.gate} pass over the release so far ({span}; "
               f"{release.samples[1]:.0f} candidate rows): {release.reason} | this step's "
               f"{own:.0f} rows alone: {step.reason}")


def carry(step: Verdict, release: Verdict | None, min_samples: int) -> Verdict:
    """``step`` with every gate carried (:func:`carry_gate`) and the status and reason derived
    again, as ``judge`` derives them. ``release`` None (or for other versions): ``step``."""
    if release is None or (release.model, release.baseline, release.candidate) != \
            (step.model, step.baseline, step.candidate):
        return step
    span = _since(release)
    by_name = {g.gate: g for g in release.gates}
    gates = tuple(carry_gate(g, by_name.get(g.gate), min_samples, span) for g in step.gates)
    carried = any(g is not s for g, s in zip(gates, step.gates))
    status, reason = status_and_reason(
        gates, passed="all gates pass (some over the release so far)" if carried
        else "all gates pass")
    return dataclasses.replace(step, status=status, reason=reason or step.reason, gates=gates)
