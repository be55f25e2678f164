"""What the report reads from Prometheus over a release window; never fails the report.

Prometheus may be stopped, empty, or have dropped a version that was torn down: every function
returns what it could get plus a note, and the report says "no data" where there is none.
Plain HTTP with short timeouts (the report must be quick even when Prometheus hangs).
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from paddle_canary import telemetry

TIMEOUT_S = 2.0
MAX_POINTS = 240  # points per series in a range query


class PrometheusUnavailable(RuntimeError):
    """Prometheus could not be asked (down, timed out, or answered with an error)."""


def _get(base_url: str, path: str, params: dict[str, Any], timeout: float) -> list[dict]:
    url = base_url.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:  # Prometheus explains a bad query in the body
        try:
            detail = json.loads(exc.read().decode()).get("error") or exc.reason
        except (OSError, ValueError, AttributeError):
            detail = exc.reason
        raise PrometheusUnavailable(f"{base_url}: HTTP {exc.code}: {detail}") from exc
    except urllib.error.URLError as exc:
        raise PrometheusUnavailable(f"{base_url}: {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise PrometheusUnavailable(f"{base_url}: {exc}") from exc
    if body.get("status") != "success":
        raise PrometheusUnavailable(f"{base_url}: {body.get('error') or body}")
    return body.get("data", {}).get("result") or []


def _label_value(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def selector(model: str, versions: list[str], **extra: str) -> str:
    """``{model="m",version=~"a|b"}`` with values escaped (versions are regex-quoted)."""
    alternation = "|".join(re.sub(r"([.\\+*?\[^\]$(){}=!<>|:-])", r"\\\1", v) for v in versions)
    parts = [f'model="{_label_value(model)}"', f'version=~"{_label_value(alternation)}"']
    parts += [f'{k}="{_label_value(v)}"' for k, v in extra.items()]
    return "{" + ",".join(parts) + "}"


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
    sel = selector(model, versions)
    try:
        p95 = _get(url, "/api/v1/query_range", {
            "query": f"histogram_quantile(0.95, sum by (le, version) "
                     f"(rate({telemetry.REQUEST_LATENCY}_bucket{sel}[{rate_window}])))",
            "start": start, "end": end, "step": step}, timeout)
        out["p95_ms"] = {v: [(t, y * 1000) for t, y in pts]
                         for v, pts in _series_by(p95, "version").items()}
        decisions = _get(url, "/api/v1/query_range", {
            "query": f"sum by (version, decision) "
                     f"(increase({telemetry.DECISIONS}{sel}[{rate_window}]))",
            "start": start, "end": end, "step": step}, timeout)
        out["rejection"] = _rejection_share(decisions)
        scores = _get(url, "/api/v1/query", {
            "query": f"sum by (le, version) "
                     f"(increase({telemetry.SCORE}_bucket{sel}[{int(math.ceil(span)) + 1}s]))",
            "time": end}, timeout)
        out["scores"] = _histograms(scores)
    except PrometheusUnavailable as exc:
        out["note"] = f"Prometheus unavailable: {exc}"
    return out


def _points(values) -> list[tuple[float, float]]:
    pts = []
    for t, v in values or []:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            pts.append((float(t), f))
    return pts


def _series_by(result: list[dict], label: str) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for r in result:
        key = r.get("metric", {}).get(label)
        pts = _points(r.get("values"))
        if key is not None and pts:
            out.setdefault(key, []).extend(pts)
    return {k: sorted(v) for k, v in out.items()}


def _rejection_share(result: list[dict]) -> dict[str, list[tuple[float, float]]]:
    per: dict[str, dict[float, dict[str, float]]] = {}
    for r in result:
        m = r.get("metric", {})
        version, decision = m.get("version"), m.get("decision")
        if version is None or decision is None:
            continue
        for t, v in _points(r.get("values")):
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


def _histograms(result: list[dict]) -> dict[str, Any]:
    """Cumulative ``le`` buckets per version -> edges [0, e1, ..., 1] and counts per bucket."""
    cumulative: dict[str, dict[float, float]] = {}
    for r in result:
        m = r.get("metric", {})
        try:
            le = float(m.get("le"))
            value = float(r.get("value", [0, "nan"])[1])
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
