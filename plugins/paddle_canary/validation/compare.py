"""Offline comparison of a candidate with the stable version, before any traffic.

Both versions score the stable version's reference rows; the Great Expectations suite of
:mod:`paddle_canary.validation.suite` checks the inputs and the candidate's scores (finite, in
[0, 1], KL divergence from stable's reference histogram, decision agreement). The live gates are
stricter; this check only keeps a plainly broken model from ever getting traffic. A fault that
only live traffic shows (latency under load, say) passes here and is caught by the gates.
"""

from __future__ import annotations

from paddle_canary.validation.offline import validate_version
from paddle_canary.validation.suite import MAX_KL, MIN_AGREEMENT

__all__ = ["MAX_KL", "MIN_AGREEMENT", "compare_with_baseline"]


def compare_with_baseline(candidate, baseline, max_kl: float = MAX_KL,
                          min_agreement: float = MIN_AGREEMENT, device: str = "cpu") -> dict:
    """A JSON-ready summary with ``passed``, ``problems`` (each naming the failed expectation)
    and the suite's results under ``suite``."""
    return validate_version(candidate, baseline, device=device, max_kl=max_kl,
                            min_agreement=min_agreement)
