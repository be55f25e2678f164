"""The Great Expectations suite on numbers (no model loaded): what passes, what fails and how
a failure is named, and how GX is run (ephemeral, offline, quiet, imported late)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from paddle_canary.registry import Registry
from paddle_canary.validation import suite

MODEL = "risk-score"


@pytest.fixture(scope="module")
def cards(registry_root):
    reg = Registry(registry_root)
    return reg.card(MODEL, "v1"), reg.card(MODEL, "v2")


def baseline_like_scores(card, seed=0) -> np.ndarray:
    """Scores drawn from the card's own reference histogram (what stable gives)."""
    rng = np.random.default_rng(seed)
    hist = card.reference_histogram
    edges, counts = np.array(hist["edges"]), np.array(hist["counts"])
    bins = np.repeat(np.arange(len(counts)), counts)
    return edges[bins] + rng.uniform(0.001, 0.049, size=bins.size)


def run(cards, scores=None, base=None, inputs=None, **kw):
    v1, v2 = cards
    inputs = v1.reference_inputs() if inputs is None else inputs
    base = baseline_like_scores(v1) if base is None else base
    scores = base.copy() if scores is None else scores
    return suite.run_suite(v2, v1, inputs=inputs, scores=scores, baseline_scores=base, **kw)


def failed_types(result) -> list[str]:
    return [f"{e['batch']}:{e['expectation']}" for e in result["expectations"] if not e["success"]]


def test_a_candidate_like_stable_passes_and_the_result_is_json(cards):
    result = run(cards)
    assert result["success"] and result["failed"] == []
    assert result["engine"].startswith("great_expectations 1.")
    n_features = len(cards[0].feature_names)
    stats = result["statistics"]
    assert stats == {"evaluated": 1 + 3 * n_features + 5, "successful": stats["evaluated"],
                     "unsuccessful": 0}
    json.dumps(result, allow_nan=False)  # plain JSON: journal, XCom, report
    types = [(e["batch"], e["expectation"]) for e in result["expectations"]]
    assert types[0] == ("reference_input", "expect_table_columns_to_match_ordered_list")
    assert types[1:4] == [("reference_input", t) for t in (
        "expect_column_values_to_be_of_type", "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between")]
    assert types[-5:] == [("candidate_scores", t) for t in (
        "expect_table_row_count_to_equal", "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between", "expect_column_kl_divergence_to_be_less_than",
        "expect_column_pair_values_to_be_equal")]
    kl = suite.observed(result, "expect_column_kl_divergence_to_be_less_than")
    assert 0 <= kl["observed_value"] < 0.05


def test_non_finite_and_out_of_range_scores_fail_by_name(cards):
    base = baseline_like_scores(cards[0])
    scores = base.copy()
    scores[:5] = np.nan
    scores[5:8] = 1.5
    scores[8] = np.inf
    result = run(cards, scores=scores, base=base)
    assert not result["success"]
    assert {"candidate_scores:expect_column_values_to_not_be_null",
            "candidate_scores:expect_column_values_to_be_between"} <= set(failed_types(result))
    between = next(e for e in result["expectations"]
                   if e["expectation"] == "expect_column_values_to_be_between"
                   and e["batch"] == "candidate_scores")
    assert between["unexpected_count"] == 4  # 1.5 x3 and inf; NaN counts as null instead
    line = next(f for f in result["failed"] if "to_not_be_null" in f)
    assert line.startswith("candidate_scores: values not finite (NaN): "
                           "expect_column_values_to_not_be_null(score) "
                           "failed: observed 5 of 200 rows unexpected")
    json.dumps(result, allow_nan=False)


def test_shifted_scores_fail_the_kl_divergence(cards):
    base = baseline_like_scores(cards[0])
    shifted = np.clip(base + 0.3, 0, 1)
    result = run(cards, scores=shifted, base=base)
    assert "candidate_scores:expect_column_kl_divergence_to_be_less_than" in failed_types(result)
    kl = suite.observed(result, "expect_column_kl_divergence_to_be_less_than")
    assert kl["observed_value"] > suite.MAX_KL
    assert any(f"'threshold': {suite.MAX_KL}" in f for f in result["failed"])


def test_a_stray_score_in_an_unused_bin_is_not_an_infinite_divergence(cards):
    v1 = cards[0]
    empty = v1.reference_histogram["counts"].index(0)
    base = baseline_like_scores(v1)
    scores = base.copy()
    scores[0] = v1.reference_histogram["edges"][empty] + 0.01
    result = run(cards, scores=scores, base=base)
    kl = suite.observed(result, "expect_column_kl_divergence_to_be_less_than")
    assert kl["success"] and 0 < kl["observed_value"] < suite.MAX_KL


def test_decisions_must_agree_on_most_rows(cards):
    v1 = cards[0]
    base = baseline_like_scores(v1)
    flipped = base.copy()
    low = np.flatnonzero(base < v1.decision_threshold)[:25]  # 12.5 % approve -> reject
    flipped[low] = 0.99
    result = run(cards, scores=flipped, base=base, max_kl=10.0)
    assert failed_types(result) == ["candidate_scores:expect_column_pair_values_to_be_equal"]
    pair = suite.observed(result, "expect_column_pair_values_to_be_equal")
    assert pair["unexpected_count"] == 25
    assert run(cards, scores=flipped, base=base, max_kl=10.0, min_agreement=0.85)["success"]


def test_inputs_must_match_the_candidate_card(cards):
    v1 = cards[0]
    rows = v1.reference_inputs().copy()
    rows[3, 0] = rows[:, 0].max() * 10  # far outside what the card's sample covers
    result = run(cards, inputs=rows)
    assert failed_types(result) == ["reference_input:expect_column_values_to_be_between"]
    assert ("reference_input: values outside their range: "
            f"expect_column_values_to_be_between({v1.feature_names[0]})") in \
        result["failed"][0]
    swapped = list(v1.feature_names)
    swapped[0], swapped[1] = swapped[1], swapped[0]

    class Reordered:  # a candidate whose card lists two features the other way round
        def __getattr__(self, name):
            return getattr(cards[1], name)
        feature_names = tuple(swapped)

        def reference_inputs(self):
            return cards[1].reference_inputs()[:, [1, 0] + list(range(2, len(swapped)))]

    result = suite.run_suite(Reordered(), v1, inputs=v1.reference_inputs(),
                             scores=baseline_like_scores(v1),
                             baseline_scores=baseline_like_scores(v1))
    assert "reference_input:expect_table_columns_to_match_ordered_list" in failed_types(result)


def test_null_inputs_and_wrong_dtype_fail(cards):
    v1 = cards[0]
    rows = v1.reference_inputs().astype(np.float64)
    rows[0, 2] = np.nan
    result = run(cards, inputs=rows)
    failed = failed_types(result)
    assert "reference_input:expect_column_values_to_not_be_null" in failed
    assert "reference_input:expect_column_values_to_be_of_type" in failed  # float64, card float32


def test_without_a_baseline_the_candidate_alone_is_checked(cards):
    v2 = cards[1]
    result = suite.run_suite(v2, None, inputs=v2.reference_inputs(),
                             scores=baseline_like_scores(v2))
    assert result["success"]
    assert not any("kl_divergence" in e["expectation"] or "pair" in e["expectation"]
                   for e in result["expectations"])


def test_bad_arguments_are_suite_errors(cards):
    v1, v2 = cards
    with pytest.raises(suite.SuiteError, match="needs its scores"):
        suite.run_suite(v2, v1, inputs=v1.reference_inputs(), scores=np.zeros(200))
    with pytest.raises(suite.SuiteError, match="expected"):
        suite.run_suite(v2, v1, inputs=np.zeros((3, 2)), scores=np.zeros(3),
                        baseline_scores=np.zeros(3))


def test_runs_offline_and_quietly(cards, monkeypatch, capfd):
    """No network (no analytics, no version check) and nothing on stdout/stderr (no progress
    bars in task logs)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    capfd.readouterr()
    result = run(cards)
    assert result["success"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.slow
def test_gx_is_imported_only_when_the_suite_runs():
    code = ("import sys; import paddle_canary.validation.suite, paddle_canary.validation.compare,"
            " paddle_canary.validation.offline; print('great_expectations' in sys.modules, "
            "'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["False", "False"]


def test_report_rows_fold_the_per_feature_checks(cards):
    base = baseline_like_scores(cards[0])
    rows_in = cards[0].reference_inputs().copy()
    rows_in[0, 0] = rows_in[:, 0].max() * 10
    result = run(cards, scores=np.clip(base + 0.3, 0, 1), base=base, inputs=rows_in)
    rows = suite.report_rows(result)
    n = len(cards[0].feature_names)
    assert [(r["batch"], r["expectation"], r["evaluated"]) for r in rows][:4] == [
        ("reference_input", "expect_table_columns_to_match_ordered_list", 1),
        ("reference_input", "expect_column_values_to_be_of_type", n),
        ("reference_input", "expect_column_values_to_not_be_null", n),
        ("reference_input", "expect_column_values_to_be_between", n)]
    between = rows[3]
    assert (between["failed"], between["success"]) == (1, False)
    assert between["failing"] == [f for f in result["failed"] if f.startswith("reference_input")]
    kl = next(r for r in rows if r["expectation"].startswith("expect_column_kl"))
    assert not kl["success"] and kl["observed"] > suite.MAX_KL
    assert sum(r["evaluated"] for r in rows) == result["statistics"]["evaluated"]
    json.dumps(rows, allow_nan=False)
