"""Will each step see enough rows to be judged? An estimate from current traffic, made when the
plan is resolved, so a plan whose short steps can only end inconclusive says so before it
starts (imports no Airflow).

Rows per step at weight ``w`` ≈ (scored rows/s of the model now) × w/100 × ``step_interval_s``;
below the gates' ``min_samples`` the step cannot pass and ends inconclusive (then extended, then
a person is asked). Current traffic is the model's scored rows over the last 2 minutes, from
Prometheus (2 s timeout); no answer means no estimate, never a refusal.
"""

from __future__ import annotations

from typing import Any

from paddle_canary.analysis import promql
from paddle_canary.analysis.provider import PrometheusProvider, QueryError
from paddle_canary.errors import UserError


def scored_rows_per_s(url: str, model: str, timeout: float = 2.0,
                      window_s: int = 120) -> float | None:
    """The model's scored rows per second over the last ``window_s`` (every version), or None
    without an answer. (A model whose traffic began inside the window reads low.)"""
    query = f"sum(rate({promql.SCORE_COUNT}{{model={promql.quote(model)}}}[{int(window_s)}s]))"
    try:
        result = PrometheusProvider(url, timeout=timeout, retries=0).query(query)
    except (QueryError, UserError):
        return None
    value = result[0][1] if result else None
    return value if value is not None and value == value else None  # NaN: no estimate


def short_steps(plan: dict[str, Any], rows_per_s: float | None) -> str | None:
    """One line naming the steps that cannot reach ``min_samples`` candidate rows at this
    traffic, or None (enough rows, or no estimate)."""
    min_samples = (plan.get("gates") or {}).get("min_samples")
    interval = float(plan.get("step_interval_s") or 0)
    if rows_per_s is None or not min_samples or interval <= 0:
        return None
    short = [(w, rows_per_s * w / 100 * interval) for w in plan.get("steps") or []
             if rows_per_s * w / 100 * interval < min_samples]
    if not short:
        return None
    steps = ", ".join(f"{w} % (~{rows:,.0f})" for w, rows in short)
    return (f"short steps: at ~{rows_per_s:,.0f} scored rows/s now, {steps} see fewer "
            f"candidate rows than min_samples {min_samples} in {interval:g} s: they will end "
            "inconclusive (then be extended, then a person is asked); longer steps or more "
            "traffic avoid it")
