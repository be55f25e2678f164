"""The judge: baseline and candidate counts over the same window in, a :class:`Verdict` out.

It never talks HTTP (providers do). No data for either version - Prometheus unreachable, no
series, a window with nothing in it - makes every gate *inconclusive* with the reason; it is
never a pass. The step's status: fail if any gate fails, pass only when all pass, else
inconclusive.
"""

from __future__ import annotations

import math
import time

from paddle_canary.analysis.config import GATES, GateConfig
from paddle_canary.analysis.counts import NoData, WindowCounts
from paddle_canary.analysis.gates import GATE_FUNCTIONS
from paddle_canary.analysis.verdict import FAIL, INCONCLUSIVE, PASS, GateResult, Verdict, combine


def judge(baseline: WindowCounts | NoData, candidate: WindowCounts | NoData,
          config: GateConfig, evaluated_at: float | None = None) -> Verdict:
    """Compare ``candidate`` with ``baseline`` on every gate of ``config``."""
    evaluated_at = time.time() if evaluated_at is None else evaluated_at
    missing = [x for x in (baseline, candidate) if isinstance(x, NoData)]
    window = next((x for x in (candidate, baseline) if isinstance(x, WindowCounts)), None)
    start = window.start if window else missing[0].start
    end = window.end if window else missing[0].end
    if missing:
        why = "; ".join(f"{m.version}: {m.reason}" for m in missing)
        gates = tuple(_no_data(name, why, config) for name in GATES)
    else:
        gates = tuple(GATE_FUNCTIONS[name](baseline, candidate, config) for name in GATES)
    status = combine(g.status for g in gates)
    if status == FAIL:
        reason = " | ".join(g.reason for g in gates if g.status == FAIL)
    elif status == PASS:
        reason = "all gates pass"
    elif missing:
        reason = f"no data: {why}"
    else:
        reason = " | ".join(g.reason for g in gates if g.status == INCONCLUSIVE)
    return Verdict(status=status, model=candidate.model, baseline=baseline.version,
                   candidate=candidate.version, window_start=start, window_end=end,
                   evaluated_at=evaluated_at, reason=reason, gates=gates)


def _no_data(name: str, why: str, config: GateConfig) -> GateResult:
    thresholds = config.to_dict()[name]
    return GateResult(gate=name, status=INCONCLUSIVE, effect=math.nan,
                      interval=(math.nan, math.nan), samples=(0.0, 0.0),
                      reason=f"{name} inconclusive: no data ({why})", thresholds=thresholds)
