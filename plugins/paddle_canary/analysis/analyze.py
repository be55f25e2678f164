"""One call for callers (CLI, Airflow trigger, bench): read both versions, judge them."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Mapping

from paddle_canary.analysis.config import GateConfig
from paddle_canary.analysis.judge import judge, previous_mismatch
from paddle_canary.analysis.provider import MetricsProvider
from paddle_canary.analysis.verdict import Verdict


def thresholds_for(model: str, registry_root: Path | str | None = None,
                   overrides: Mapping[str, Any] | None = None) -> GateConfig:
    """The model card's gate defaults with a release's ``overrides`` applied, checked."""
    from paddle_canary.registry import Registry

    return GateConfig.from_dict(Registry(registry_root).model_defaults(model)["gates"], overrides)


def analyze(provider: MetricsProvider, model: str, baseline: str, candidate: str,
            config: GateConfig, *, start: float | None = None, end: float | None = None,
            window_s: float | None = None, previous: Mapping[str, Any] | Verdict | None = None,
            alpha: float | None = None) -> Verdict:
    """Judge ``candidate`` against ``baseline`` over ``[start, end]`` (or the last ``window_s``).

    ``previous``: the verdict of this step's previous look (``Verdict.to_dict()``); its
    intervals are intersected with this look's, so they never widen and a decided gate stays
    decided. A ``previous`` that is not an earlier look at this window (the window restarted,
    e.g. after stable restarted; other versions; not a verdict) is not built on: this look
    starts fresh, and its ``note`` says why (``judge`` itself refuses such a ``previous``).
    ``alpha``: this step's error budget (``analysis.spending.step_alpha`` of the
    release's), instead of ``config.alpha``. The candidate's paired (shadow) series are used
    when its process scored its requests with ``baseline`` too.
    """
    if alpha is not None:
        config = config.with_alpha(alpha)
    end = time.time() if end is None else float(end)
    base = provider.window_counts(model, baseline, start=start, end=end, window_s=window_s)
    cand = provider.window_counts(model, candidate, start=start, end=end, window_s=window_s,
                                  paired_with=baseline)
    why = previous_mismatch(previous, base, cand)
    if why:
        verdict = judge(base, cand, config)
        return dataclasses.replace(verdict, note=f"previous look not built on: {why}")
    return judge(base, cand, config, previous=previous)
