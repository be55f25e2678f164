"""What the judge reads: one version's counts over one window, or a "no data" marker.

Counts are increases over the window (what happened in it), not running totals. They may be
fractional when a provider had to fall back to Prometheus' extrapolating ``increase()``.

What a window holds when a serving process restarted (its counters reset to 0): everything the
old process counted until its last scrape plus everything the new one counted since (a drop is
a restart from 0; ``promql.reset_aware_increase``), and ``restarts`` says how many restarts
were seen. A count that is negative, not finite or beyond 2**53 (where floats stop being exact
integers) cannot be trusted: :func:`problems` names it and the judge answers *inconclusive*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from paddle_canary import telemetry

N_SCORE_BUCKETS = len(telemetry.SCORE_BUCKETS) + 1      # + the +Inf bucket
N_LATENCY_BUCKETS = len(telemetry.LATENCY_BUCKETS) + 1  # + the +Inf bucket
MAX_COUNT = 2.0 ** 53   # floats are exact integers up to here; a larger "count" is not one


@dataclass(frozen=True)
class NoData:
    """Nothing usable for this version over this window; ``reason`` says why."""

    model: str
    version: str
    reason: str
    start: float = math.nan
    end: float = math.nan


@dataclass(frozen=True)
class PairedCounts:
    """Rows the candidate's process also scored with the stable version (its shadow, loaded in
    the same process) over the window: both versions on the very same requests.

    ``approve_to_reject`` counts rows stable approved and the candidate rejected (a flip of +1
    in the reject-rate difference), ``reject_to_approve`` the other way (-1). Score sums are
    over the same rows (scores clipped to [0, 1]); ``diff_sq_sum`` is the sum of
    ``(candidate - stable)**2``.
    """

    shadow_version: str
    rows: float = 0.0
    approve_to_reject: float = 0.0
    reject_to_approve: float = 0.0
    candidate_score_sum: float = 0.0
    stable_score_sum: float = 0.0
    diff_sq_sum: float = 0.0

    @property
    def flips(self) -> float:
        return self.approve_to_reject + self.reject_to_approve


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
    restarts: float = 0.0
    paired: PairedCounts | None = None

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


_COUNTS = ("requests", "errors", "invalid", "approve", "reject", "score_count", "latency_count",
           "restarts")
# Sums: a non-finite one is not used (the judge falls back to the buckets), a negative one is
# wrong.
_SUMS = ("score_sum", "latency_sum")
_PAIRED = ("rows", "approve_to_reject", "reject_to_approve", "candidate_score_sum",
           "stable_score_sum", "diff_sq_sum")


def _bad(x) -> str | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return f"{x!r} is not a number"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return f"{x} (not finite)"
    if x < 0:
        return f"{x:g} (negative: a counter reset the provider did not account for?)"
    if x > MAX_COUNT:
        return f"{x:g} (beyond 2**53: not a count)"
    return None


def problems(w: WindowCounts) -> list[str]:
    """Why ``w`` cannot be trusted (empty when it can): each count that is negative, not finite
    or beyond 2**53, named (``v2 latency bucket le=0.005: NaN``); paired counts that contradict
    each other (more flips than rows, a squared difference larger than the rows allow)."""
    out: list[str] = []
    who = w.version
    for name in _COUNTS:
        why = _bad(getattr(w, name))
        if why:
            out.append(f"{who} {name}: {why}")
    for name in _SUMS:
        x = getattr(w, name)
        if isinstance(x, (int, float)) and not math.isnan(x) and x < 0:
            out.append(f"{who} {name}: {x:g} (negative)")
    for label, values, edges in (("score", w.score_buckets, telemetry.SCORE_BUCKETS),
                                 ("latency", w.latency_buckets, telemetry.LATENCY_BUCKETS)):
        for i, x in enumerate(values):
            why = _bad(x)
            if why:
                le = "+Inf" if i == len(edges) else f"{edges[i]:g}"
                out.append(f"{who} {label} bucket le={le}: {why}")
    p = w.paired
    if p is not None:
        for name in _PAIRED:
            why = _bad(getattr(p, name))
            if why:
                out.append(f"{who} paired {name}: {why}")
        if not out:
            if p.flips > p.rows:
                out.append(f"{who} paired: {p.flips:g} flips in {p.rows:g} rows")
            for name in ("candidate_score_sum", "stable_score_sum", "diff_sq_sum"):
                if getattr(p, name) > p.rows * (1 + 1e-9) + 1e-6:
                    out.append(f"{who} paired {name}: {getattr(p, name):g} over {p.rows:g} "
                               "rows (scores lie in [0, 1])")
    return out
