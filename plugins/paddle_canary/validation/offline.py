"""Offline validation of an exported model version before it gets any traffic.

:func:`validate_version` loads the candidate with the serving :class:`Predictor`, scores the
rows (the stable version's reference sample when a baseline is given, else the candidate's own),
scores them with the baseline too, runs the Great Expectations suite of
:mod:`paddle_canary.validation.suite` on the inputs and the scores, and times the predictor.
The summary is JSON-ready: ``passed``, ``problems`` (one line per failed expectation, or why the
model did not load or score), the suite's results under ``suite``, and figures for people
(score range, reject rates, decision agreement, KL and PSI against the baseline, predictor
time). The same function runs wherever validation runs: in the Airflow worker (process), in the
serving image (``paddle-canary validate``: container or GPU pod).
"""

from __future__ import annotations

import time

import numpy as np

TIMING_CALLS = 200


def validate_version(candidate, baseline=None, *, device: str = "auto", threads: int = 1,
                     **suite_options) -> dict:
    """Validate ``candidate`` (a ModelCard), against ``baseline`` (a ModelCard) when given.
    ``suite_options``: ``max_kl``, ``min_agreement``, ``holdout`` of :func:`suite.run_suite`."""
    from paddle_canary.serving.predictor import ModelLoadError, Predictor
    from paddle_canary.validation.suite import SuiteError, run_suite

    summary: dict = {"model": candidate.model, "version": candidate.version,
                     "content_hash": candidate.content_hash,
                     "baseline": baseline.version if baseline is not None else None,
                     "passed": False, "problems": []}
    predictors = {}
    for role, card in (("candidate", candidate), ("baseline", baseline)):
        if card is None:
            continue
        try:
            t0 = time.perf_counter()
            predictors[role] = Predictor(card, device=device, threads=threads)
            summary[f"{role}_load_ms" if role == "baseline" else "load_ms"] = \
                round((time.perf_counter() - t0) * 1000, 1)
        except ModelLoadError as exc:
            summary["problems"].append(f"{role} {card.version} does not load: {exc}")
            return summary
    summary["device"] = predictors["candidate"].device
    rows = (baseline or candidate).reference_inputs()
    try:
        scores = predictors["candidate"].predict(rows).astype(np.float64).ravel()
        base = (predictors["baseline"].predict(rows).astype(np.float64).ravel()
                if baseline is not None else None)
    except Exception as exc:  # noqa: BLE001 - any failure to score is a failed validation
        summary["problems"].append(f"scoring the reference rows failed: {exc}")
        return summary
    try:
        results = run_suite(candidate, baseline, inputs=rows, scores=scores,
                            baseline_scores=base, **suite_options)
    except SuiteError as exc:
        summary["problems"].append(str(exc))
        return summary
    summary["suite"] = results
    summary.update(_figures(candidate, baseline, scores, base, results))
    summary["predict_us_batch1"] = _time_one_row(predictors["candidate"], rows[:1])
    summary["problems"] += results["failed"]
    summary["passed"] = not summary["problems"]
    return summary


def check_model(card, device: str = "auto", threads: int = 1) -> dict:
    """The candidate alone (no baseline): loads, its own reference rows pass the suite."""
    return validate_version(card, None, device=device, threads=threads)


def _figures(candidate, baseline, scores: np.ndarray, base: np.ndarray | None,
             results: dict) -> dict:
    from paddle_canary.validation.suite import observed

    finite = scores[np.isfinite(scores)]
    out = {
        "rows": int(scores.size),
        "non_finite": int(scores.size - finite.size),
        "score_min": float(finite.min()) if finite.size else None,
        "score_mean": float(finite.mean()) if finite.size else None,
        "score_max": float(finite.max()) if finite.size else None,
        "reject_rate": (float(np.mean([candidate.decision(s) == "reject" for s in finite]))
                        if finite.size else None),
    }
    if baseline is None:
        return out
    from paddle_canary.analysis.stats import psi
    from paddle_canary.registry import score_histogram

    out["reject_rate_baseline"] = float(np.mean([baseline.decision(b) == "reject" for b in base]))
    kl = observed(results, "expect_column_kl_divergence_to_be_less_than")
    out["kl_vs_baseline"] = kl["observed_value"] if kl else None
    pair = observed(results, "expect_column_pair_values_to_be_equal")
    if pair and pair.get("element_count"):
        out["decision_agreement"] = round(1 - pair.get("unexpected_count", 0)
                                          / pair["element_count"], 4)
    # Not a check (GX has no PSI expectation): the figure the live score gate uses.
    if finite.size:
        out["psi_vs_baseline"] = round(psi(score_histogram(scores)["counts"],
                                           score_histogram(base)["counts"]), 4)
    return out


def _time_one_row(predictor, row: np.ndarray) -> float:
    """Median µs of one predictor call on one row (after a warm-up)."""
    for _ in range(20):
        predictor.predict(row)
    times = []
    for _ in range(TIMING_CALLS):
        t0 = time.perf_counter()
        predictor.predict(row)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e6, 1)
