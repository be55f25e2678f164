"""Offline checks of an exported model version before it gets any traffic.

``check_model`` loads the version with the serving :class:`Predictor`, scores the card's
reference rows and says whether every score is finite and in [0, 1]; it also times the
predictor. The image's ``validate`` entrypoint prints its summary. (Comparing with the stable
version — score PSI, decision agreement — comes with the release pipeline.)
"""

from __future__ import annotations

import time

import numpy as np

TIMING_CALLS = 200


def check_model(card, device: str = "auto", threads: int = 1) -> dict:
    """A JSON-ready summary; ``summary["passed"]`` is False with ``problems`` when it fails."""
    from paddle_canary.serving.predictor import ModelLoadError, Predictor

    summary: dict = {"model": card.model, "version": card.version,
                     "content_hash": card.content_hash, "passed": False, "problems": []}
    try:
        t0 = time.perf_counter()
        predictor = Predictor(card, device=device, threads=threads)
        summary["load_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    except ModelLoadError as exc:
        summary["problems"].append(str(exc))
        return summary
    summary["device"] = predictor.device
    rows = card.reference_inputs()
    try:
        scores = predictor.predict(rows).astype(np.float64)
    except Exception as exc:  # noqa: BLE001 - any failure to score is a failed validation
        summary["problems"].append(f"scoring the reference rows failed: {exc}")
        return summary
    finite = np.isfinite(scores)
    ok = scores[finite]
    out_of_range = int(((ok < 0) | (ok > 1)).sum())
    summary.update({
        "rows": int(len(scores)),
        "non_finite": int((~finite).sum()),
        "out_of_range": out_of_range,
        "score_min": float(ok.min()) if ok.size else None,
        "score_mean": float(ok.mean()) if ok.size else None,
        "score_max": float(ok.max()) if ok.size else None,
        "reject_rate": float(np.mean([card.decision(s) == "reject" for s in ok]))
        if ok.size else None,
        "predict_us_batch1": _time_one_row(predictor, rows[:1]),
    })
    if summary["non_finite"]:
        summary["problems"].append(f"{summary['non_finite']} of {len(scores)} reference "
                                   "scores are not finite")
    if out_of_range:
        summary["problems"].append(f"{out_of_range} reference scores are outside [0, 1]")
    summary["passed"] = not summary["problems"]
    return summary


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
