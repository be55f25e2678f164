"""PromQL for one version's window, and turning the answers into :class:`WindowCounts`.

Pure functions (no HTTP), so the query text and the counter arithmetic are unit-tested.

A window ``[start, end]`` is read with the ``@`` modifier (on by default since Prometheus 2.33)
so the same window is judged whenever the question is asked. For every series of the version:

* ``last_over_time(x[W] @ end)`` - its last value in the window (still there if the process
  died before ``end``);
* ``x @ start`` - its value when the window opened (absent: the series was born inside the
  window, and a counter is born at 0);
* ``resets(x[W] @ end)`` - restarts of the serving process inside the window.

The increase is ``end - start`` when there was no reset. ``increase()`` is not used: it
extrapolates to the window's edges (fractional, inflated counts) and ignores what a series
counted before its first sample inside the window.

Functions drop the metric name (``resets``, ``last_over_time``), and ``or`` matches label sets
without it, so ``_sum`` and ``_count`` (same labels) would clash: each term is wrapped in
``label_replace(..., "paddle_canary_metric", "<name>", "", "")`` and the terms joined with
``or``, so one query answers for every metric; :func:`normalise` puts the name back.

Counter resets (a restarted serving process) are counted from the raw samples of the affected
metrics (``x[W] @ end``): each drop restarts from 0, so nothing is lost but the increments
between the dead process' last scrape and its death, and nothing is ever negative. Where the
raw samples are missing, a series that ended below where it started is taken as restarted
from 0 (its increase is its last value), the same rule; and ``restarts`` (the number of resets
of the request counter, per instance) tells the judge the process restarted.

Paired (shadow) series carry ``shadow_version``; only those scored by the baseline being
compared (``paired_with``) make up ``WindowCounts.paired``.
"""

from __future__ import annotations

import re

import math
from collections import defaultdict
from typing import Iterable, Mapping

from paddle_canary import telemetry
from paddle_canary.analysis.counts import (N_LATENCY_BUCKETS, N_SCORE_BUCKETS, PairedCounts,
                                           WindowCounts)

Sample = tuple[Mapping[str, str], float]

SCORE_BUCKET = telemetry.SCORE + "_bucket"
SCORE_SUM = telemetry.SCORE + "_sum"
SCORE_COUNT = telemetry.SCORE + "_count"
LATENCY_BUCKET = telemetry.REQUEST_LATENCY + "_bucket"
LATENCY_SUM = telemetry.REQUEST_LATENCY + "_sum"
LATENCY_COUNT = telemetry.REQUEST_LATENCY + "_count"
NAME_LABEL = "paddle_canary_metric"
PAIRED_METRICS = (telemetry.PAIRED_ROWS, telemetry.PAIRED_FLIPS, telemetry.PAIRED_SCORE_SUM,
                  telemetry.PAIRED_DIFF_SQ)
METRICS = (telemetry.REQUESTS, telemetry.DECISIONS, SCORE_BUCKET, SCORE_SUM, SCORE_COUNT,
           LATENCY_BUCKET, LATENCY_SUM, LATENCY_COUNT, *PAIRED_METRICS)


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(model: str, version: str) -> str:
    return f"{{model={quote(model)},version={quote(version)}}}"


def versions_selector(model: str, versions: list[str], **extra: str) -> str:
    """``{model="m",version=~"a|b"}``: the versions matched literally (regex-escaped)."""
    alternation = "|".join(re.escape(v) for v in versions)
    parts = [f"model={quote(model)}", f"version=~{quote(alternation)}"]
    parts += [f"{k}={quote(v)}" for k, v in extra.items()]
    return "{" + ",".join(parts) + "}"


def duration(seconds: float) -> str:
    """A PromQL range in whole milliseconds (at least 1 ms)."""
    return f"{max(1, int(round(seconds * 1000)))}ms"


def _per_metric(function: str, model: str, version: str, start: float, end: float) -> str:
    sel = selector(model, version)
    rng = duration(end - start)
    return " or ".join(
        f'label_replace({function}({name}{sel}[{rng}] @ {end:.3f}), '
        f'"{NAME_LABEL}", "{name}", "", "")'
        for name in METRICS)


def window_queries(model: str, version: str, start: float, end: float) -> dict[str, str]:
    """The queries ``end``, ``start``, ``resets`` and ``up`` for one version's window."""
    if not end > start:
        raise ValueError(f"window end {end} must be after its start {start}")
    names = "|".join(METRICS)
    return {
        "end": _per_metric("last_over_time", model, version, start, end),
        "start": (f'{{__name__=~{quote(names)},model={quote(model)},'
                  f'version={quote(version)}}} @ {start:.3f}'),
        "resets": _per_metric("resets", model, version, start, end),
        # the scrape target's health over the window (target labels carry model/version)
        "up": (f"max_over_time(up{selector(model, version)}[{duration(end - start)}] "
               f"@ {end:.3f})"),
    }


def samples_query(name: str, model: str, version: str, start: float, end: float) -> str:
    """The raw samples of one metric's series inside the window (a range vector)."""
    return f"{name}{selector(model, version)}[{duration(end - start)}] @ {end:.3f}"


def normalise(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels with the metric name under ``__name__`` (whichever way the query carried it)."""
    out = dict(labels)
    name = out.pop(NAME_LABEL, None)
    if name is not None:
        out["__name__"] = name
    return out


def _key(labels: Mapping[str, str]) -> tuple:
    return tuple(sorted(normalise(labels).items()))


def reset_aware_increase(first: float, values: Iterable[float]) -> float:
    """Increase of a counter from ``first`` through ``values``; a drop is a restart from 0."""
    total, prev = 0.0, first
    for v in values:
        total += v - prev if v >= prev else v
        prev = v
    return total


def series_increases(end: Iterable[Sample], start: Iterable[Sample],
                     resets: Iterable[Sample] = (),
                     samples: Iterable[tuple[Mapping[str, str], list[float]]] = ()
                     ) -> list[Sample]:
    """Per-series increase over the window, never negative (see the module docstring).

    ``samples`` (the window's raw values) are needed only for series with resets.
    """
    at_start = {_key(lab): v for lab, v in start}
    n_resets = {_key(lab): v for lab, v in resets}
    raw = {_key(lab): vals for lab, vals in samples}
    out = []
    for labels, last in end:
        key = _key(labels)
        base = at_start.get(key, 0.0)  # absent at start: born inside the window, at 0
        if n_resets.get(key, 0) > 0 and key in raw:
            inc = reset_aware_increase(base, raw[key])
        else:  # no raw samples: a drop is still a restart from 0
            inc = reset_aware_increase(base, [last])
        labels = normalise(labels)
        if math.isnan(inc):
            out.append((labels, inc))  # a NaN _sum stays NaN: the judge falls back to buckets
        else:
            out.append((labels, max(inc, 0.0)))
    return out


def restarts_from_resets(resets: Iterable[Sample]) -> float:
    """Restarts of the serving process(es) in the window: resets of the request counter, the
    most of any of its series per instance, summed over instances."""
    per_instance: dict[str, float] = defaultdict(float)
    for labels, value in resets:
        labels = normalise(labels)
        if labels.get("__name__") == telemetry.REQUESTS and math.isfinite(value):
            inst = labels.get("instance", "")
            per_instance[inst] = max(per_instance[inst], value)
    return float(sum(per_instance.values()))


def counts_from_increases(model: str, version: str, start: float, end: float,
                          increases: Iterable[Sample], paired_with: str | None = None,
                          restarts: float = 0.0) -> WindowCounts:
    """Sum per-series increases (over instances) into one version's :class:`WindowCounts`.

    Paired series count only when their ``shadow_version`` is ``paired_with``.
    """
    totals: dict[tuple[str, str], float] = defaultdict(float)
    paired_seen = False
    for labels, value in increases:
        name = normalise(labels).get("__name__", "")
        if name in PAIRED_METRICS:
            if paired_with is None or labels.get(telemetry.SHADOW_LABEL) != paired_with:
                continue
            paired_seen = paired_seen or name == telemetry.PAIRED_ROWS
            sub = labels.get("direction", labels.get("scorer", ""))
        elif name in (telemetry.REQUESTS,):
            sub = labels.get("outcome", "")
        elif name == telemetry.DECISIONS:
            sub = labels.get("decision", "")
        elif name in (SCORE_BUCKET, LATENCY_BUCKET):
            sub = labels.get("le", "")
        else:
            sub = ""
        totals[(name, sub)] += value

    def buckets(name: str, edges: tuple[float, ...], n: int) -> tuple[float, ...]:
        cumulative = {float(le): v for (nm, le), v in totals.items() if nm == name and le}
        cum: list[float] = []
        for e in (*edges, math.inf):  # a missing edge repeats the one below it
            cum.append(cumulative.get(float(e), cum[-1] if cum else 0.0))
        # cumulative -> per bucket; clamp the odd negative from interpolation or resets
        per = [max(cum[0], 0.0)] + [max(cum[i] - cum[i - 1], 0.0) for i in range(1, len(cum))]
        assert len(per) == n
        return tuple(per)

    requests = sum(v for (nm, _), v in totals.items() if nm == telemetry.REQUESTS)
    return WindowCounts(
        model=model, version=version, start=start, end=end,
        requests=requests,
        errors=totals.get((telemetry.REQUESTS, "error"), 0.0),
        invalid=totals.get((telemetry.REQUESTS, "invalid_input"), 0.0),
        approve=totals.get((telemetry.DECISIONS, "approve"), 0.0),
        reject=totals.get((telemetry.DECISIONS, "reject"), 0.0),
        score_buckets=buckets(SCORE_BUCKET, telemetry.SCORE_BUCKETS, N_SCORE_BUCKETS),
        score_sum=totals.get((SCORE_SUM, ""), 0.0),
        score_count=totals.get((SCORE_COUNT, ""), 0.0),
        latency_buckets=buckets(LATENCY_BUCKET, telemetry.LATENCY_BUCKETS, N_LATENCY_BUCKETS),
        latency_sum=totals.get((LATENCY_SUM, ""), 0.0),
        latency_count=totals.get((LATENCY_COUNT, ""), 0.0),
        restarts=restarts,
        paired=PairedCounts(
            shadow_version=paired_with,
            rows=totals.get((telemetry.PAIRED_ROWS, ""), 0.0),
            approve_to_reject=totals.get((telemetry.PAIRED_FLIPS, "approve_to_reject"), 0.0),
            reject_to_approve=totals.get((telemetry.PAIRED_FLIPS, "reject_to_approve"), 0.0),
            candidate_score_sum=totals.get((telemetry.PAIRED_SCORE_SUM, "candidate"), 0.0),
            stable_score_sum=totals.get((telemetry.PAIRED_SCORE_SUM, "stable"), 0.0),
            diff_sq_sum=totals.get((telemetry.PAIRED_DIFF_SQ, ""), 0.0),
        ) if paired_seen and paired_with is not None else None,
    )
