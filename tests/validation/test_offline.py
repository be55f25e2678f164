"""Offline validation of real exported models (Paddle Inference on CPU) with the GX suite:
the good retrain passes, each broken fixture model fails with the expectation that caught it
named, and ``paddle-canary validate``'s body writes what the validation pod hands to Airflow."""

from __future__ import annotations

import io
import json

import pytest

from paddle_canary.registry import Registry
from paddle_canary.validation.compare import compare_with_baseline
from paddle_canary.validation.entry import validate_command

pytestmark = pytest.mark.slow  # loads Paddle models and Great Expectations
MODEL = "risk-score"


@pytest.fixture(scope="module")
def stable(registry_root):
    return Registry(registry_root).card(MODEL, "v1")


def test_good_retrain_passes_with_the_suite_in_the_summary(registry_root, stable):
    summary = compare_with_baseline(Registry(registry_root).card(MODEL, "v2"), stable)
    assert summary["passed"] and summary["problems"] == []
    assert summary["baseline"] == "v1" and summary["rows"] == 200
    suite = summary["suite"]
    assert suite["success"] and suite["statistics"]["unsuccessful"] == 0
    assert 0 < summary["kl_vs_baseline"] < 0.12
    assert summary["decision_agreement"] >= 0.9
    assert 0 <= summary["psi_vs_baseline"] < 0.25  # a figure beside the suite, not a check
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize("version,caught", [
    ("bad-nan", ["expect_column_values_to_not_be_null(score)"]),
    ("bad-reject", ["expect_column_kl_divergence_to_be_less_than(score)",
                    "expect_column_pair_values_to_be_equal(decision = baseline_decision)"]),
    ("bad-shift", ["expect_column_kl_divergence_to_be_less_than(score)"]),
])
def test_broken_models_fail_naming_the_expectation(broken_registry_root, stable, version, caught):
    summary = compare_with_baseline(Registry(broken_registry_root).card(MODEL, version), stable)
    assert not summary["passed"]
    for name in caught:
        assert any(p.startswith("candidate_scores: ") and name in p
                   for p in summary["problems"]), \
            summary["problems"]
    json.dumps(summary, allow_nan=False)


def test_a_model_that_does_not_load_fails_before_the_suite(broken_registry_root, stable):
    summary = compare_with_baseline(Registry(broken_registry_root).card(MODEL, "bad-signature"),
                                    stable)
    assert not summary["passed"] and "suite" not in summary
    assert summary["problems"][0].startswith("candidate bad-signature does not load")


def test_validate_command_writes_xcom_and_the_termination_message(tmp_path, registry_root,
                                                                  broken_registry_root):
    # The pod's layout: the candidate's image registry, the baseline in a registry of its own.
    xcom, log, out = tmp_path / "airflow/xcom/return.json", tmp_path / "termination-log", \
        io.StringIO()
    code = validate_command(broken_registry_root, MODEL, "bad-shift", baseline="v1",
                            baseline_registry=registry_root, device="cpu", xcom_path=xcom,
                            termination_log=log, out=out)
    assert code == 1
    summary = json.loads(xcom.read_text())
    assert summary == json.loads(out.getvalue())
    assert not summary["passed"] and summary["baseline"] == "v1"
    assert log.read_text().startswith("offline validation failed: candidate_scores: "
                                      "score distribution far from stable's: "
                                      "expect_column_kl_divergence_to_be_less_than(score)")
    assert len(log.read_bytes()) <= 4096

    log.unlink()
    code = validate_command(registry_root, MODEL, "v2", baseline="v1", device="cpu",
                            xcom_path=xcom, termination_log=log, out=io.StringIO())
    assert code == 0 and json.loads(xcom.read_text())["passed"] and not log.exists()

    code = validate_command(registry_root, MODEL, "v9", baseline="v1", xcom_path=xcom,
                            termination_log=log, out=io.StringIO())
    assert code == 2 and "unknown version 'v9'" in log.read_text()
    assert json.loads(xcom.read_text())["passed"] is False
