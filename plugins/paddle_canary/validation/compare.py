"""Offline comparison of a candidate with the stable version, before any traffic.

Both versions score the stable version's reference rows. The candidate fails when it does not
load, gives a non-finite or out-of-range score, or disagrees with stable far more than a retrain
should: score PSI above ``max_psi`` or decision agreement below ``min_agreement``. The live gates
are stricter; this check only keeps a plainly broken model from ever getting traffic. A fault
that only live traffic shows (latency under load, say) passes here and is caught by the gates.
"""

from __future__ import annotations

import numpy as np

from paddle_canary.registry import score_histogram
from paddle_canary.validation.offline import check_model

MAX_PSI = 0.25          # "large shift" in the usual PSI reading; the live gate uses 0.1
MIN_AGREEMENT = 0.90    # share of reference rows on which both versions decide alike


def compare_with_baseline(candidate, baseline, max_psi: float = MAX_PSI,
                          min_agreement: float = MIN_AGREEMENT) -> dict:
    """A JSON-ready summary with ``passed`` and ``problems`` (each naming the check)."""
    from paddle_canary.analysis.stats import psi
    from paddle_canary.serving.predictor import Predictor

    summary = check_model(candidate)
    summary["baseline"] = baseline.version
    if not summary["passed"]:
        return summary
    rows = baseline.reference_inputs()
    cand = Predictor(candidate, device="cpu").predict(rows).astype(np.float64)
    base = Predictor(baseline, device="cpu").predict(rows).astype(np.float64)
    if not np.isfinite(cand).all():
        summary["problems"].append(
            f"{int((~np.isfinite(cand)).sum())} of {len(cand)} scores on the stable version's "
            "reference rows are not finite")
        summary["passed"] = False
        return summary
    value = psi(score_histogram(cand)["counts"], score_histogram(base)["counts"])
    agreement = float(np.mean([candidate.decision(c) == baseline.decision(b)
                               for c, b in zip(cand, base)]))
    summary.update({"psi_vs_baseline": round(value, 4), "decision_agreement": round(agreement, 4),
                    "reject_rate_baseline": float(np.mean([baseline.decision(b) == "reject"
                                                           for b in base]))})
    if value > max_psi:
        summary["problems"].append(f"score PSI against {baseline.version} is {value:.3f} "
                                   f"(> {max_psi} offline limit)")
    if agreement < min_agreement:
        summary["problems"].append(f"decisions agree with {baseline.version} on {agreement:.1%} "
                                   f"of reference rows (< {min_agreement:.0%})")
    summary["passed"] = not summary["problems"]
    return summary
