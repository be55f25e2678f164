"""What the report reads from Prometheus over a release window; never fails the report.

Prometheus may be stopped, empty, or have dropped a version that was torn down: every function
returns what it could get plus a note, and the report says "no data" where there is none.
Read through the analysis' :class:`PrometheusProvider` (one client for the project), with a
short timeout and no retry: the report must be quick even when Prometheus hangs.
"""

from __future__ import annotations

import math
from typing import Any

from paddle_canary import telemetry
from paddle_canary.analysis import promql
from paddle_canary.analysis.provider import PrometheusProvider, QueryError
from paddle_canary.errors import UserError

TIMEOUT_S = 2.0
MAX_POINTS = 240  # points per series in a range query


def release_metrics(url: str, model: str, versions: list[str], start: float, end: float,
                    timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """P95 latency and rejection rate per version over time, and score histograms.

    Returns ``{"p95_ms": {version: [(ts, ms)]}, "rejection": {version: [(ts, share)]},
    "scores": {"edges": [...], "counts": {version: [...]}}, "note": str | None}``.
    """
    out: dict[str, Any] = {"p95_ms": {}, "rejection": {}, "scores": {"edges": [], "counts": {}},
                           "note": None}
    if end <= start:
        end = start + 1.0
    span = end - start
    step = max(1.0, math.ceil(span / MAX_POINTS))
    rate_window = f"{int(max(15, 4 * step))}s"
    sel = promql.versions_selector(model, versions)
    try:
        prom = PrometheusProvider(url, timeout=timeout, retries=0)
        p95 = prom.query_range(f"histogram_quantile(0.95, sum by (le, version) "
                               f"(rate({promql.LATENCY_BUCKET}{sel}[{rate_window}])))",
                               start, end, step)
        out["p95_ms"] = {v: [(t, y * 1000) for t, y in pts]
                         for v, pts in _series_by(p95, "version").items()}
        decisions = prom.query_range(f"sum by (version, decision) "
                                     f"(increase({telemetry.DECISIONS}{sel}[{rate_window}]))",
                                     start, end, step)
        out["rejection"] = _rejection_share(decisions)
        scores = prom.query(f"sum by (le, version) (increase({promql.SCORE_BUCKET}{sel}"
                            f"[{int(math.ceil(span)) + 1}s]))", at=end)
        out["scores"] = _histograms(scores)
    except (QueryError, UserError) as exc:
        out["note"] = f"Prometheus unavailable: {exc}"
    return out


def _points(values) -> list[tuple[float, float]]:
    return [(t, v) for t, v in values or [] if math.isfinite(v)]


def _series_by(result: list[tuple[dict, list]], label: str
               ) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for labels, values in result:
        key = labels.get(label)
        pts = _points(values)
        if key is not None and pts:
            out.setdefault(key, []).extend(pts)
    return {k: sorted(v) for k, v in out.items()}


def _rejection_share(result: list[tuple[dict, list]]) -> dict[str, list[tuple[float, float]]]:
    per: dict[str, dict[float, dict[str, float]]] = {}
    for m, values in result:
        version, decision = m.get("version"), m.get("decision")
        if version is None or decision is None:
            continue
        for t, v in _points(values):
            per.setdefault(version, {}).setdefault(t, {})[decision] = v
    out = {}
    for version, by_t in per.items():
        pts = []
        for t in sorted(by_t):
            total = sum(by_t[t].values())
            if total > 0:
                pts.append((t, by_t[t].get("reject", 0.0) / total))
        if pts:
            out[version] = pts
    return out


def _histograms(result: list[tuple[dict, float]]) -> dict[str, Any]:
    """Cumulative ``le`` buckets per version -> edges [0, e1, ..., 1] and counts per bucket."""
    cumulative: dict[str, dict[float, float]] = {}
    for m, value in result:
        try:
            le = float(m.get("le"))
        except (TypeError, ValueError):
            continue
        if m.get("version") is None or not math.isfinite(value) or math.isinf(le):
            continue
        cumulative.setdefault(m["version"], {})[le] = value
    edges = [0.0] + [float(e) for e in telemetry.SCORE_BUCKETS]
    counts = {}
    for version, cum in cumulative.items():
        row, prev = [], 0.0
        for le in edges[1:]:
            c = cum.get(le, prev)
            row.append(max(c - prev, 0.0))
            prev = c
        if sum(row) > 0:
            counts[version] = row
    return {"edges": edges if counts else [], "counts": counts}
