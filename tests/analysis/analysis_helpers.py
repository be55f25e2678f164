"""Generated window counts for the judge's unit tests (seeded; no servers)."""

from __future__ import annotations

import numpy as np

from paddle_canary import telemetry
from paddle_canary.analysis.counts import WindowCounts

# v1's score histogram on its reference rows (model card), + an empty +Inf bucket.
V1_SCORES = np.array([118, 3, 2, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 4, 2, 0, 0, 67, 0], float)
V1_SCORES /= V1_SCORES.sum()
# bad-shift's histogram (scores pile up mid-range).
SHIFTED_SCORES = np.array([35, 31, 16, 8, 14, 5, 7, 1, 1, 1, 4, 1, 2, 1, 6, 0, 1, 1, 1, 64, 0],
                          float)
SHIFTED_SCORES /= SHIFTED_SCORES.sum()
SCORE_MIDS = np.concatenate([[0.025], np.array(telemetry.SCORE_BUCKETS[:-1]) + 0.025, [1.0]])
LAT_EDGES = np.array(telemetry.LATENCY_BUCKETS)


def latency_buckets(seconds: np.ndarray) -> np.ndarray:
    """Non-cumulative counts as a Prometheus histogram would hold them (le = upper bound)."""
    idx = np.searchsorted(LAT_EDGES, seconds, side="left")
    return np.bincount(idx, minlength=len(LAT_EDGES) + 1).astype(float)


def increments(rng, n: int, score_p=V1_SCORES, reject: float = 0.375,
               latency_s: float = 0.004, error: float = 0.0, invalid: float = 0.0) -> dict:
    """What ``n`` requests (one scored row each) add to the counters."""
    bad = rng.binomial(n, error)
    inv = rng.binomial(n - bad, invalid)
    ok = n - bad - inv
    sb = rng.multinomial(ok, score_p).astype(float)
    rej = float(rng.binomial(ok, reject))
    lat = latency_s * rng.lognormal(0.0, 0.35, ok + bad)
    return {"requests": float(n), "errors": float(bad), "invalid": float(inv),
            "approve": ok - rej, "reject": rej, "score_buckets": sb,
            "score_sum": float(sb @ SCORE_MIDS), "score_count": float(ok),
            "latency_buckets": latency_buckets(lat), "latency_sum": float(lat.sum()),
            "latency_count": float(ok + bad)}


def add(a: dict | None, b: dict) -> dict:
    return dict(b) if a is None else {k: a[k] + b[k] for k in b}


def window(version: str, totals: dict, model: str = "risk-score", end: float = 60.0
           ) -> WindowCounts:
    fields = {k: (tuple(float(x) for x in v) if isinstance(v, np.ndarray) else v)
              for k, v in totals.items()}
    return WindowCounts(model=model, version=version, start=0.0, end=end, **fields)


def counts(rng, version: str, n: int, **kw) -> WindowCounts:
    return window(version, increments(rng, n, **kw))
