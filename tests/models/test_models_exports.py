"""The committed models: real Paddle exports that score like their cards say, and broken
candidates that are broken the way their cards say (what later gates must catch).

Two models of different shapes, so that nothing is tied to one: risk-score (30 features,
threshold 0.5, one hidden layer) and digit-seven (64 features, threshold 0.3, two hidden
layers). Every figure here is judged at the card's own threshold."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from paddle_canary.registry import Registry, RegistryError, score_histogram
from paddle_canary.registry.export_check import (create_cpu_predictor, export_differences,
                                                 run_predictor)

REPO = Path(__file__).resolve().parents[2]
REAL = Registry(REPO / "model_registry")
BROKEN = Registry(REPO / "fixtures" / "broken_models")
MODEL = "risk-score"
REAL_VERSIONS = ("v1", "v2")
# model -> its broken fixtures (what scripts/train_models.py's spec table builds)
FIXTURES = {
    "risk-score": ("bad-shift", "bad-reject", "bad-slow", "bad-nan", "bad-signature"),
    "digit-seven": ("bad-shift", "bad-reject"),
}
ALL = [(m, v) for m, fixtures in FIXTURES.items() for v in (*REAL_VERSIONS, *fixtures)]
CHEAP = [(m, v) for m, v in ALL if v != "bad-slow"]


def card_of(model, version):
    return (REAL if version in REAL_VERSIONS else BROKEN).card(model, version)


def inputs_for(card):
    rows = card.reference_inputs()
    return rows[:, :-1] if card.version == "bad-signature" else rows


def psi(expected, actual):
    e = np.maximum(np.asarray(score_histogram(expected)["counts"], float), 0.5)
    a = np.maximum(np.asarray(score_histogram(actual)["counts"], float), 0.5)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def reject_rate(scores, threshold):
    scores = scores[np.isfinite(scores)]
    return float(np.mean(scores >= threshold))


def threshold_of(model):
    return card_of(model, "v1").decision_threshold


@pytest.fixture(scope="module")
def scores():
    """Paddle Inference scores of every cheap version on its reference rows (loaded once)."""
    out = {}
    for model, version in CHEAP:
        card = card_of(model, version)
        predictor = create_cpu_predictor(card.program_path, card.params_path)
        out[model, version] = (run_predictor(predictor, inputs_for(card))
                               .reshape(-1).astype(np.float64))
    return out


def test_the_registries_hold_exactly_these_models_and_versions():
    assert REAL.models() == sorted(FIXTURES)
    assert BROKEN.models() == sorted(FIXTURES)
    for model, fixtures in FIXTURES.items():
        assert REAL.versions(model) == list(REAL_VERSIONS)
        assert REAL.pointers(model).stable == "v1"
        assert sorted(BROKEN.versions(model)) == sorted(fixtures)


def test_the_two_models_differ_in_shape():
    risk, digit = card_of("risk-score", "v1"), card_of("digit-seven", "v1")
    assert (risk.n_features, digit.n_features) == (30, 64)
    assert (risk.decision_threshold, digit.decision_threshold) == (0.5, 0.3)
    assert len(risk.training["architecture"]["hidden"]) == 1
    assert len(digit.training["architecture"]["hidden"]) == 2
    assert risk.training["data_source"] != digit.training["data_source"]
    assert len(risk.reference_inputs()) == 200 and len(digit.reference_inputs()) == 400


def test_digit_seven_decides_at_its_own_threshold(scores):
    """Some reference rows score between 0.3 and 0.5: rejected by digit-seven's card, so a
    threshold of 0.5 hard-wired anywhere shows (v1: row 265, 0.301)."""
    card = card_of("digit-seven", "v1")
    s = scores["digit-seven", "v1"]
    between = np.flatnonzero((s >= 0.3) & (s < 0.5))
    assert len(between) >= 1
    assert {card.decision(float(s[i])) for i in between} == {"reject"}


@pytest.mark.parametrize("model", sorted(FIXTURES))
def test_model_yaml_has_the_same_keys_as_risk_scores_and_is_usable(model):
    """Plan and gates of every model: the keys risk-score's has, values a release accepts."""
    from paddle_canary.release.plan import resolve_plan

    text = (REPO / "model_registry" / model / "model.yaml").read_text()
    assert (REPO / "fixtures" / "broken_models" / model / "model.yaml").read_text() == text
    mine = yaml.safe_load(text)
    reference = yaml.safe_load((REPO / "model_registry" / MODEL / "model.yaml").read_text())
    assert mine["model"] == model
    assert set(mine) == set(reference)
    assert set(mine["plan"]) == set(reference["plan"])
    assert set(mine["gates"]) == set(reference["gates"])
    for gate, keys in reference["gates"].items():
        if isinstance(keys, dict):
            assert set(mine["gates"][gate]) == set(keys), gate
    plan = resolve_plan(REAL, {"model": model, "version": "v2"})
    assert list(plan.steps) == mine["plan"]["steps"]


@pytest.mark.parametrize("model, version", CHEAP)
def test_inference_output_equals_paddle_jit_load(scores, model, version):
    import paddle

    card = card_of(model, version)
    layer = paddle.jit.load(str(card.path / "model"))
    layer.eval()
    with paddle.no_grad():
        expected = layer(paddle.to_tensor(inputs_for(card))).numpy().reshape(-1)
    np.testing.assert_allclose(scores[model, version], expected, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("model, version", CHEAP)
def test_card_histogram_is_the_exports_own_scores(scores, model, version):
    card = card_of(model, version)
    hist = score_histogram(scores[model, version])
    assert card.reference_histogram["counts"] == hist["counts"]
    assert card.reference_histogram["non_finite"] == hist["non_finite"]
    finite = scores[model, version][np.isfinite(scores[model, version])]
    assert card.metrics["reference_reject_rate"] == pytest.approx(
        reject_rate(finite, card.decision_threshold), abs=1e-6)
    assert card.metrics["reference_mean_score"] == pytest.approx(finite.mean(), abs=1e-6)


@pytest.mark.parametrize("model", sorted(FIXTURES))
def test_real_versions_are_good_models(scores, model):
    for version in REAL_VERSIONS:
        card = card_of(model, version)
        assert card.metrics["auc"] >= 0.97
        s = scores[model, version]
        assert np.all((s >= 0) & (s <= 1))
        assert card.training["seed"] != card_of(model, "v2" if version == "v1" else "v1") \
            .training["seed"]


@pytest.mark.parametrize("model", sorted(FIXTURES))
def test_v2_is_a_retrain_that_scores_like_v1(scores, model):
    """v2 passes the gates of model.yaml against v1 on the reference rows."""
    v1, v2, t = scores[model, "v1"], scores[model, "v2"], threshold_of(model)
    assert not np.array_equal(v1, v2)
    assert psi(v1, v2) < 0.1
    assert abs(v2.mean() - v1.mean()) / v1.mean() < 0.05
    assert abs(reject_rate(v2, t) - reject_rate(v1, t)) * 100 <= 1.0
    assert np.mean((v1 >= t) == (v2 >= t)) >= 0.98


@pytest.mark.parametrize("model", sorted(FIXTURES))
def test_bad_shift_moves_the_score_distribution(scores, model):
    v1, shifted = scores[model, "v1"], scores[model, "bad-shift"]
    assert psi(v1, shifted) > 0.25
    assert abs(shifted.mean() - v1.mean()) / v1.mean() > 0.05
    assert np.isfinite(shifted).all()


@pytest.mark.parametrize("model", sorted(FIXTURES))
def test_bad_reject_rejects_many_more(scores, model):
    t = threshold_of(model)
    extra = (reject_rate(scores[model, "bad-reject"], t) - reject_rate(scores[model, "v1"], t))
    assert 8 <= extra * 100 <= 25
    # the same model otherwise: the ranking of the rows is v1's
    assert card_of(model, "bad-reject").metrics["auc"] == card_of(model, "v1").metrics["auc"]


def test_bad_nan_answers_nan_for_some_rows_and_v1_for_the_rest(scores):
    s, v1 = scores[MODEL, "bad-nan"], scores[MODEL, "v1"]
    nan = np.isnan(s)
    assert 0.15 <= nan.mean() <= 0.35
    assert np.isfinite(s[0])  # the first reference row (a health check's) stays finite
    np.testing.assert_allclose(s[~nan], v1[~nan], atol=1e-6)


def test_bad_signature_takes_29_features_and_register_refuses_it(tmp_path):
    card = card_of(MODEL, "bad-signature")
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
    slow = card_of(MODEL, "bad-slow")
    assert slow.params_path.stat().st_size < 8 * 2**20
    predictor = create_cpu_predictor(slow.program_path, slow.params_path)
    np.testing.assert_allclose(
        run_predictor(predictor, slow.reference_inputs()[:8]).reshape(-1),
        scores[MODEL, "v1"][:8], atol=1e-6)
    fast_ms, slow_ms = median_call_ms(card_of(MODEL, "v1"), 50), median_call_ms(slow, 5)
    # measured here: ~0.04 ms vs ~25 ms; the bound leaves two orders of magnitude of slack
    assert slow_ms >= 5 * fast_ms, (fast_ms, slow_ms)


def train_into(stage: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "train_models.py"), "--stage",
                    str(stage), *args], check=True, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_training_script_reproduces_the_committed_files(tmp_path):
    """Retraining gives the same models on any machine: float training is not bit-identical
    across CPUs, so equal programs and reference rows, scores within 1e-4 and card figures at
    their printed precision (``export_differences``) - never the bytes of the weights."""
    stage = tmp_path / "stage"
    train_into(stage)
    assert sorted(p.name for p in stage.iterdir()) == sorted(FIXTURES)
    for model, version in ALL:
        assert export_differences(card_of(model, version).path,
                                  stage / model / version) == [], (model, version)


@pytest.mark.slow
def test_one_model_alone_trains_to_the_same_files(tmp_path):
    """``--model`` builds one model with the same exports as a full run: Paddle's name counters
    (written into model.json) do not carry over from the models built before it."""
    stage = tmp_path / "stage"
    train_into(stage, "--model", "digit-seven")
    assert [p.name for p in stage.iterdir()] == ["digit-seven"]
    for version in (*REAL_VERSIONS, *FIXTURES["digit-seven"]):
        assert export_differences(card_of("digit-seven", version).path,
                                  stage / "digit-seven" / version) == [], version


def test_export_differences_sees_a_changed_model(tmp_path):
    """The equivalence check is not blind: other weights or another card figure are reported."""
    v1, v2 = card_of(MODEL, "v1").path, card_of(MODEL, "v2").path
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
