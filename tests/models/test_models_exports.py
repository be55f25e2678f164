"""The committed models: real Paddle exports that score like their cards say, and broken
candidates that are broken the way their cards say (what later gates must catch)."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from paddle_canary.registry import Registry, RegistryError, score_histogram
from paddle_canary.registry.export_check import (create_cpu_predictor, export_differences,
                                                 run_predictor)

REPO = Path(__file__).resolve().parents[2]
REAL = Registry(REPO / "model_registry")
BROKEN = Registry(REPO / "fixtures" / "broken_models")
MODEL = "risk-score"
CHEAP = ["v1", "v2", "bad-shift", "bad-reject", "bad-nan", "bad-signature"]


def card_of(version):
    return (REAL if version in ("v1", "v2") else BROKEN).card(MODEL, version)


def inputs_for(card):
    rows = card.reference_inputs()
    return rows[:, :29] if card.version == "bad-signature" else rows


def psi(expected, actual):
    e = np.maximum(np.asarray(score_histogram(expected)["counts"], float), 0.5)
    a = np.maximum(np.asarray(score_histogram(actual)["counts"], float), 0.5)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def reject_rate(scores):
    scores = scores[np.isfinite(scores)]
    return float(np.mean(scores >= 0.5))


@pytest.fixture(scope="module")
def scores():
    """Paddle Inference scores of every cheap version on its reference rows (loaded once)."""
    out = {}
    for version in CHEAP:
        card = card_of(version)
        predictor = create_cpu_predictor(card.program_path, card.params_path)
        out[version] = run_predictor(predictor, inputs_for(card)).reshape(-1).astype(np.float64)
    return out


@pytest.mark.parametrize("version", CHEAP)
def test_inference_output_equals_paddle_jit_load(scores, version):
    import paddle

    card = card_of(version)
    layer = paddle.jit.load(str(card.path / "model"))
    layer.eval()
    with paddle.no_grad():
        expected = layer(paddle.to_tensor(inputs_for(card))).numpy().reshape(-1)
    np.testing.assert_allclose(scores[version], expected, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("version", CHEAP)
def test_card_histogram_is_the_exports_own_scores(scores, version):
    card = card_of(version)
    hist = score_histogram(scores[version])
    assert card.reference_histogram["counts"] == hist["counts"]
    assert card.reference_histogram["non_finite"] == hist["non_finite"]
    finite = scores[version][np.isfinite(scores[version])]
    assert card.metrics["reference_reject_rate"] == pytest.approx(reject_rate(finite), abs=1e-6)


def test_real_versions_are_good_models(scores):
    for version in ("v1", "v2"):
        card = card_of(version)
        assert card.metrics["auc"] >= 0.97
        assert np.all((scores[version] >= 0) & (scores[version] <= 1))
        assert card.training["seed"] != card_of("v2" if version == "v1" else "v1").training["seed"]


def test_v2_is_a_retrain_that_scores_like_v1(scores):
    v1, v2 = scores["v1"], scores["v2"]
    assert not np.array_equal(v1, v2)
    assert psi(v1, v2) < 0.1
    assert abs(v2.mean() - v1.mean()) / v1.mean() < 0.05
    assert abs(reject_rate(v2) - reject_rate(v1)) * 100 <= 1.0
    assert np.mean((v1 >= 0.5) == (v2 >= 0.5)) >= 0.98


def test_bad_shift_moves_the_score_distribution(scores):
    assert psi(scores["v1"], scores["bad-shift"]) > 0.25
    assert abs(scores["bad-shift"].mean() - scores["v1"].mean()) / scores["v1"].mean() > 0.05
    assert np.isfinite(scores["bad-shift"]).all()


def test_bad_reject_rejects_many_more(scores):
    extra = (reject_rate(scores["bad-reject"]) - reject_rate(scores["v1"])) * 100
    assert 8 <= extra <= 25


def test_bad_nan_answers_nan_for_some_rows_and_v1_for_the_rest(scores):
    s, v1 = scores["bad-nan"], scores["v1"]
    nan = np.isnan(s)
    assert 0.15 <= nan.mean() <= 0.35
    assert np.isfinite(s[0])  # the first reference row (a health check's) stays finite
    np.testing.assert_allclose(s[~nan], v1[~nan], atol=1e-6)


def test_bad_signature_takes_29_features_and_register_refuses_it(tmp_path):
    import shutil

    card = card_of("bad-signature")
    assert card.n_features == 30
    root = tmp_path / "reg"
    shutil.copytree(REPO / "model_registry", root, ignore=shutil.ignore_patterns(".lock"))
    with pytest.raises(RegistryError, match=r"shape \[None, 29\], card needs \[None, 30\]"):
        Registry(root).register(MODEL, "bad-signature", card.path)


def median_call_ms(card, calls):
    predictor = create_cpu_predictor(card.program_path, card.params_path)
    row = card.reference_inputs()[:1]
    run_predictor(predictor, row)  # warm-up
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run_predictor(predictor, row)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


@pytest.mark.slow
def test_bad_slow_is_much_slower_per_call_and_scores_like_v1(scores):
    slow = card_of("bad-slow")
    assert slow.params_path.stat().st_size < 8 * 2**20
    predictor = create_cpu_predictor(slow.program_path, slow.params_path)
    np.testing.assert_allclose(
        run_predictor(predictor, slow.reference_inputs()[:8]).reshape(-1),
        scores["v1"][:8], atol=1e-6)
    fast_ms, slow_ms = median_call_ms(card_of("v1"), 50), median_call_ms(slow, 5)
    # measured here: ~0.04 ms vs ~25 ms; the bound leaves two orders of magnitude of slack
    assert slow_ms >= 5 * fast_ms, (fast_ms, slow_ms)


@pytest.mark.slow
def test_training_script_reproduces_the_committed_files(tmp_path):
    """Retraining gives the same models on any machine: float training is not bit-identical
    across CPUs, so equal programs and reference rows, scores within 1e-4 and card figures at
    their printed precision (``export_differences``) - never the bytes of the weights."""
    stage = tmp_path / "stage"
    subprocess.run([sys.executable, str(REPO / "scripts" / "train_models.py"), "--stage",
                    str(stage)], check=True, capture_output=True, text=True, timeout=600)
    for version in ("v1", "v2", "bad-shift", "bad-reject", "bad-slow", "bad-nan",
                    "bad-signature"):
        assert export_differences(card_of(version).path, stage / version) == [], version


def test_export_differences_sees_a_changed_model(tmp_path):
    """The equivalence check is not blind: other weights or another card figure are reported."""
    import shutil

    import yaml

    v1, v2 = card_of("v1").path, card_of("v2").path
    assert export_differences(v1, v1) == []
    other = tmp_path / "v1-other-weights"
    shutil.copytree(v1, other)
    shutil.copyfile(v2 / "model.pdiparams", other / "model.pdiparams")
    shutil.copyfile(v2 / "model.json", other / "model.json")
    assert any("scores differ" in p for p in export_differences(v1, other))
    figures = tmp_path / "v1-other-card"
    shutil.copytree(v1, figures)
    card = yaml.safe_load((figures / "card.yaml").read_text())
    card["metrics"]["auc"] -= 0.01
    (figures / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    assert any("card.metrics.auc" in p for p in export_differences(v1, figures))
