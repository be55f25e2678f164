"""What the judge reads: one version's counts over one window, or a "no data" marker.

Counts are increases over the window (what happened in it), not running totals. They may be
fractional when a provider had to fall back to Prometheus' extrapolating ``increase()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from paddle_canary import telemetry

N_SCORE_BUCKETS = len(telemetry.SCORE_BUCKETS) + 1      # + the +Inf bucket
N_LATENCY_BUCKETS = len(telemetry.LATENCY_BUCKETS) + 1  # + the +Inf bucket


@dataclass(frozen=True)
class NoData:
    """Nothing usable for this version over this window; ``reason`` says why."""

    model: str
    version: str
    reason: str
    start: float = math.nan
    end: float = math.nan


@dataclass(frozen=True)
class WindowCounts:
    """One version over one window ``[start, end]`` (Unix seconds).

    ``requests`` counts every /predict request; ``errors`` those the model or server failed
    (outcome="error"); ``invalid`` those refused as the caller's fault (outcome="invalid_input",
    not held against the model). ``approve``/``reject`` count scored rows. Bucket counts are
    non-cumulative, one per edge of ``telemetry.SCORE_BUCKETS`` / ``LATENCY_BUCKETS`` plus the
    ``+Inf`` bucket; ``*_sum``/``*_count`` are the histograms' own sum and count.
    """

    model: str
    version: str
    start: float
    end: float
    requests: float = 0.0
    errors: float = 0.0
    invalid: float = 0.0
    approve: float = 0.0
    reject: float = 0.0
    score_buckets: tuple[float, ...] = field(default=(0.0,) * N_SCORE_BUCKETS)
    score_sum: float = 0.0
    score_count: float = 0.0
    latency_buckets: tuple[float, ...] = field(default=(0.0,) * N_LATENCY_BUCKETS)
    latency_sum: float = 0.0
    latency_count: float = 0.0

    def __post_init__(self) -> None:
        if len(self.score_buckets) != N_SCORE_BUCKETS:
            raise ValueError(f"score_buckets: need {N_SCORE_BUCKETS} counts, "
                             f"got {len(self.score_buckets)}")
        if len(self.latency_buckets) != N_LATENCY_BUCKETS:
            raise ValueError(f"latency_buckets: need {N_LATENCY_BUCKETS} counts, "
                             f"got {len(self.latency_buckets)}")

    @property
    def served(self) -> float:
        """Requests the model is answerable for: all but the caller's invalid ones."""
        return max(self.requests - self.invalid, 0.0)

    @property
    def rows(self) -> float:
        """Scored rows (each has a decision)."""
        return self.approve + self.reject
