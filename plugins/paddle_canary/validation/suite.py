"""Offline validation as a Great Expectations suite (GX Core 1.x).

Two batches are checked, both built from numbers the caller computed (see
:mod:`paddle_canary.validation.offline`, which loads the models and scores the rows):

``reference_input`` (the rows both versions score: the stable version's reference sample)
  - the columns, in order, are the candidate card's features
    (``ExpectTableColumnsToMatchOrderedList``)
  - per feature: the card's dtype (``ExpectColumnValuesToBeOfType``), no nulls
    (``ExpectColumnValuesToNotBeNull``), within the range the candidate card's own reference
    sample covers (``ExpectColumnValuesToBeBetween``)

``candidate_scores`` (one row per input row)
  - every row scored (``ExpectTableRowCountToEqual``); no nulls (a NaN score is null); every
    score in [0, 1] (an infinite one is not)
  - with a baseline: KL divergence of the candidate's scores from the stable card's reference
    histogram below ``max_kl`` (``ExpectColumnKLDivergenceToBeLessThan``; bins the stable
    version never used share ``holdout`` of the weight, so one stray score is not an infinite
    divergence), and decisions equal to stable's on at least ``min_agreement`` of the rows
    (``ExpectColumnPairValuesToBeEqual`` with ``mostly``)

Not GX: loading the model, timing it, and the score PSI against the baseline reported beside the
suite as a figure (GX has no PSI expectation; the live gates use PSI, so the figure lets a
person compare). Deciding "reject/approve" from a score is the card's threshold, applied before
the suite sees the decisions.

GX runs in an ephemeral context (no project directory), usage analytics off, progress bars off.
It is imported only inside :func:`run_suite` (it takes ~2.5 s to import; Airflow parses DAG
files often). The result is a plain JSON-ready dict (:func:`run_suite`'s docstring).
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np

SUITE_NAME = "paddle_canary.offline"
# KL(candidate || stable reference) limit. For small shifts KL is about half the PSI, so this
# is the offline PSI limit (0.25, "large shift") halved. Measured here on stable v1's reference
# rows: v1 itself 0.010, the good retrain v2 0.080 (PSI 0.23), bad-reject 0.30, bad-shift 1.04.
MAX_KL = 0.12
MIN_AGREEMENT = 0.90
# Share of the weight spread over histogram bins the stable version's reference never used.
HOLDOUT = 0.01
PARTIAL_UNEXPECTED = 5


class SuiteError(RuntimeError):
    """The suite could not be run at all (GX missing or failing); never a silent pass."""


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # GX logs every expectation's defaults at INFO; task logs get warnings and errors only.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import (DataContextConfig,
                                                                InMemoryStoreBackendDefaults,
                                                                ProgressBarsConfig)
    except ImportError as exc:  # pragma: no cover - the validate extra brings it
        raise SuiteError("offline validation needs Great Expectations: "
                         "pip install 'paddle-canary[validate]'") from exc
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    return gx, gxe, gx.get_context(mode="ephemeral", project_config=config)


def reference_ranges(card) -> dict[str, tuple[float, float]]:
    """Per feature, the [min, max] the card's own reference sample covers."""
    rows = card.reference_inputs().astype(np.float64)
    return {name: (float(rows[:, i].min()), float(rows[:, i].max()))
            for i, name in enumerate(card.feature_names)}


def _input_expectations(gxe, candidate_card) -> list:
    out = [gxe.ExpectTableColumnsToMatchOrderedList(column_list=list(candidate_card.feature_names))]
    for name, (low, high) in reference_ranges(candidate_card).items():
        out += [gxe.ExpectColumnValuesToBeOfType(column=name, type_=candidate_card.input_dtype),
                gxe.ExpectColumnValuesToNotBeNull(column=name),
                gxe.ExpectColumnValuesToBeBetween(column=name, min_value=low, max_value=high)]
    return out


def partition_of(baseline_card) -> dict:
    """The stable card's reference histogram as a GX partition object (weights sum to 1)."""
    hist = baseline_card.reference_histogram
    total = sum(hist["counts"])
    if not total:
        raise SuiteError(f"{baseline_card.version}: the card's reference histogram is empty")
    return {"bins": [float(e) for e in hist["edges"]],
            "weights": [c / total for c in hist["counts"]]}


def _score_expectations(gxe, rows: int, baseline_card, max_kl: float, min_agreement: float,
                        holdout: float) -> list:
    out = [gxe.ExpectTableRowCountToEqual(value=rows),
           gxe.ExpectColumnValuesToNotBeNull(column="score"),
           gxe.ExpectColumnValuesToBeBetween(column="score", min_value=0.0, max_value=1.0)]
    if baseline_card is not None:
        out += [gxe.ExpectColumnKLDivergenceToBeLessThan(
                    column="score", partition_object=partition_of(baseline_card),
                    threshold=max_kl, internal_weight_holdout=holdout),
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A="decision", column_B="baseline_decision", mostly=min_agreement)]
    return out


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars, NaN/inf as strings, tuples as lists)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# What a failed expectation means, in the words a release reason uses (before GX's own line).
MEANING = {
    "expect_table_columns_to_match_ordered_list": "inputs do not match the card's features",
    "expect_column_values_to_be_of_type": "inputs of the wrong type",
    "expect_table_row_count_to_equal": "not one score per input row",
    "expect_column_values_to_not_be_null": "values not finite (NaN)",
    "expect_column_values_to_be_between": "values outside their range",
    "expect_column_kl_divergence_to_be_less_than": "score distribution far from stable's",
    "expect_column_pair_values_to_be_equal": "decisions disagree with stable's",
}


def _describe(batch: str, entry: dict) -> str:
    """One line naming a failed expectation, what it means and what was seen."""
    kw = entry["kwargs"]
    target = kw.get("column") or (f"{kw.get('column_A')} = {kw.get('column_B')}"
                                  if "column_A" in kw else "table")
    meaning = MEANING.get(entry["expectation"])
    head = (f"{batch}: {meaning}: " if meaning else f"{batch}: ") + \
        f"{entry['expectation']}({target})"
    if entry.get("error"):
        return f"{head} could not be evaluated: {entry['error']}"
    seen = entry.get("observed_value")
    if entry.get("unexpected_count"):
        examples = entry.get("partial_unexpected") or []
        seen = (f"{entry['unexpected_count']} of {entry.get('element_count')} rows unexpected "
                f"({entry.get('unexpected_percent', 0):.1f} %)"
                + (f", e.g. {examples[:3]}" if examples else ""))
    limits = {k: kw[k] for k in ("value", "min_value", "max_value", "threshold", "mostly",
                                 "type_") if k in kw}
    return f"{head} failed: observed {seen}" + (f"; expected {limits}" if limits else "")


def _entry(batch: str, result) -> dict:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
    if "partition_object" in kwargs:  # the bins are the card's; keep the entry short
        kwargs["partition_object"] = "stable reference histogram"
    res = dict(result.result or {})
    entry = {"batch": batch, "expectation": config.type, "kwargs": _jsonable(kwargs),
             "success": bool(result.success),
             "observed_value": _jsonable(res.get("observed_value"))}
    for key in ("element_count", "unexpected_count", "unexpected_percent", "missing_count"):
        if key in res:
            entry[key] = _jsonable(res[key])
    if res.get("partial_unexpected_list"):
        entry["partial_unexpected"] = _jsonable(res["partial_unexpected_list"][:PARTIAL_UNEXPECTED])
    info = result.exception_info or {}
    if info.get("raised_exception"):
        entry["error"] = str(info.get("exception_message") or "exception")[:300]
    return entry


def run_suite(candidate_card, baseline_card=None, *, inputs: np.ndarray, scores: np.ndarray,
              baseline_scores: np.ndarray | None = None, max_kl: float = MAX_KL,
              min_agreement: float = MIN_AGREEMENT, holdout: float = HOLDOUT) -> dict:
    """Run the suite; returns a JSON-ready dict.

    ``inputs``: the rows scored, columns in ``baseline_card``'s feature order (the candidate's
    when there is no baseline); ``scores``: the candidate's score per row;
    ``baseline_scores``: stable's (required with a baseline). Returns::

        {"suite": ..., "engine": "great_expectations <version>", "success": bool,
         "statistics": {"evaluated": n, "successful": n, "unsuccessful": n},
         "expectations": [{"batch", "expectation", "kwargs", "success", "observed_value",
                           ["unexpected_count", "unexpected_percent", "partial_unexpected",
                            "error"]}, ...],
         "failed": ["<batch>: <expectation>(<column>) failed: observed ...; expected ...", ...]}

    :class:`SuiteError` when the suite cannot run at all.
    """
    import pandas as pd

    columns = list((baseline_card or candidate_card).feature_names)
    inputs = np.asarray(inputs)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if inputs.ndim != 2 or inputs.shape[1] != len(columns):
        raise SuiteError(f"inputs have shape {inputs.shape}, expected (rows, {len(columns)})")
    frames = {"reference_input": pd.DataFrame(inputs, columns=columns)}
    score_frame = {"score": scores}
    if baseline_card is not None:
        if baseline_scores is None:
            raise SuiteError("a baseline needs its scores")
        base = np.asarray(baseline_scores, dtype=np.float64).ravel()
        if base.shape != scores.shape:
            raise SuiteError(f"{len(base)} baseline scores for {len(scores)} candidate scores")
        score_frame["decision"] = [_decision(candidate_card, s) for s in scores]
        score_frame["baseline_decision"] = [_decision(baseline_card, s) for s in base]
        score_frame["baseline_score"] = base
    frames["candidate_scores"] = pd.DataFrame(score_frame)

    gx, gxe, context = _gx()
    expectations = {
        "reference_input": _input_expectations(gxe, candidate_card),
        "candidate_scores": _score_expectations(gxe, len(inputs), baseline_card, max_kl,
                                                min_agreement, holdout),
    }
    source = context.data_sources.add_pandas("paddle_canary")
    entries = []
    for batch, suite_expectations in expectations.items():
        for order, expectation in enumerate(suite_expectations):
            expectation.meta = {"order": order}
        suite = context.suites.add(gx.ExpectationSuite(name=f"{SUITE_NAME}.{batch}",
                                                       expectations=suite_expectations))
        definition = source.add_dataframe_asset(batch).add_batch_definition_whole_dataframe(
            "all_rows")
        validation = context.validation_definitions.add(gx.ValidationDefinition(
            name=f"{SUITE_NAME}.{batch}", data=definition, suite=suite))
        try:
            outcome = validation.run(batch_parameters={"dataframe": frames[batch]})
        except Exception as exc:  # noqa: BLE001 - the suite not running is a failure, named
            raise SuiteError(f"Great Expectations could not run the {batch} suite: {exc}") from exc
        results = sorted(outcome.results, key=lambda r: (r.expectation_config.meta or {})
                         .get("order", 0))
        entries += [_entry(batch, r) for r in results]
    failed = [_describe(e["batch"], e) for e in entries if not e["success"]]
    return {
        "suite": SUITE_NAME,
        "engine": f"great_expectations {gx.__version__}",
        "success": not failed,
        "statistics": {"evaluated": len(entries),
                       "successful": sum(e["success"] for e in entries),
                       "unsuccessful": len(failed)},
        "expectations": entries,
        "failed": failed,
    }


def _decision(card, score: float) -> str | None:
    """The card's decision for a score; None for a non-finite one (never equal to stable's)."""
    return card.decision(score) if math.isfinite(score) else None


def report_rows(results: dict) -> list[dict]:
    """The suite folded for a report table: one row per (batch, expectation type), in suite
    order: ``{"batch", "expectation", "evaluated", "failed", "success", "observed", "failing"}``
    where ``observed`` is the observed value when the type was evaluated once (the score checks)
    and ``failing`` lists the failed expectations' lines (the per-feature input checks fold 30
    columns into one row)."""
    rows: dict[tuple[str, str], dict] = {}
    for entry in results.get("expectations", []):
        key = (entry["batch"], entry["expectation"])
        row = rows.setdefault(key, {"batch": key[0], "expectation": key[1], "evaluated": 0,
                                    "failed": 0, "observed": None, "failing": []})
        row["evaluated"] += 1
        row["observed"] = entry.get("observed_value") if row["evaluated"] == 1 else None
        if entry.get("unexpected_count") and row["evaluated"] == 1:
            row["observed"] = (f"{entry['unexpected_count']} of {entry.get('element_count')} "
                               "rows unexpected")
        if not entry["success"]:
            row["failed"] += 1
            row["failing"].append(_describe(entry["batch"], entry))
    for row in rows.values():
        row["success"] = row["failed"] == 0
    return list(rows.values())


def observed(results: dict, expectation: str, batch: str = "candidate_scores"):
    """The observed value of the first expectation of that type (None when absent)."""
    for entry in results.get("expectations", []):
        if entry["batch"] == batch and entry["expectation"] == expectation:
            return entry
    return None
