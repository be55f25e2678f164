"""Reading the committed registry: models, versions, cards, defaults, pointers, history."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from paddle_canary import telemetry
from paddle_canary.registry import ModelCard, Registry, RegistryError, default_root
from paddle_canary.registry.card import content_hash

from registry_helpers import FIXTURES_ROOT, MODEL, REAL_ROOT, REPO


def test_default_root_is_the_repo_registry(monkeypatch):
    monkeypatch.delenv("PADDLE_CANARY_REGISTRY", raising=False)
    assert default_root() == REPO / "model_registry"
    assert Registry().root == REAL_ROOT


def test_env_overrides_the_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("PADDLE_CANARY_REGISTRY", str(tmp_path))
    assert Registry().root == tmp_path
    assert Registry().models() == []


def test_committed_registry_lists_only_real_versions():
    reg = Registry(REAL_ROOT)
    assert reg.models() == ["digit-seven", MODEL]
    for model in reg.models():
        assert reg.versions(model) == ["v1", "v2"]
        assert reg.pointers(model).stable == "v1"
        assert reg.pointers(model).candidate is None
        assert reg.status(model, "v1") == "stable"
        assert reg.status(model, "v2") == "registered"


def test_history_records_registration_then_promotion():
    events = Registry(REAL_ROOT).history(MODEL)
    assert [(e["event"], e["version"]) for e in events] == [
        ("registered", "v1"), ("registered", "v2"), ("promoted", "v1")]
    assert all(e["ts"].endswith("+00:00") for e in events)
    cards = {v: Registry(REAL_ROOT).card(MODEL, v) for v in ("v1", "v2")}
    for e in events[:2]:
        assert e["content_hash"] == cards[e["version"]].content_hash


def test_card_fields():
    card = Registry(REAL_ROOT).card(MODEL, "v1")
    assert isinstance(card, ModelCard)
    assert (card.model, card.version) == (MODEL, "v1")
    assert card.path == REAL_ROOT / MODEL / "v1"
    assert card.program_path.name == "model.json" and card.program_path.is_file()
    assert card.params_path.name == "model.pdiparams" and card.params_path.is_file()
    assert card.input_name == "x" and card.input_dtype == "float32"
    assert card.n_features == 30 and card.feature_names[0] == "mean_radius"
    assert card.feature_names[-1] == "worst_fractal_dimension"
    assert card.decision_threshold == 0.5
    assert card.training["data_source"] == "sklearn.datasets.load_breast_cancer"
    assert card.training["seed"] == 1 and card.training["epochs"] > 0
    assert card.metrics["auc"] > 0.95
    assert card.content_hash == content_hash(card.program_path, card.params_path)
    assert card.content_hash.startswith("sha256:") and len(card.content_hash) == 71


def test_decision_threshold_is_inclusive():
    card = Registry(REAL_ROOT).card(MODEL, "v1")
    assert card.decision(0.5) == "reject"
    assert card.decision(0.4999) == "approve"
    assert card.decision(1.0) == "reject"


def test_reference_inputs_and_histogram():
    card = Registry(REAL_ROOT).card(MODEL, "v2")
    rows = card.reference_inputs()
    assert rows.dtype == np.float32 and rows.shape == (200, 30)
    assert np.isfinite(rows).all()
    hist = card.reference_histogram
    assert hist["edges"] == [0.0, *telemetry.SCORE_BUCKETS]
    assert len(hist["counts"]) == len(telemetry.SCORE_BUCKETS)
    assert sum(hist["counts"]) == 200


def test_model_defaults_hold_plan_and_gates():
    defaults = Registry(REAL_ROOT).model_defaults(MODEL)
    assert defaults["plan"]["steps"] == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 100]
    assert defaults["plan"]["step_interval_s"] == 3600
    assert defaults["plan"]["approvals_before"] == [50, 100]
    assert defaults["plan"]["teardown_delay_s"] == 86400
    gates = defaults["gates"]
    assert gates["score_distribution"] == {"max_mean_rel_diff": 0.05, "max_psi": 0.1}
    assert gates["rejection_rate"] == {"max_abs_diff_pp": 1.0}
    assert gates["latency_p95"] == {"max_ms": 80, "max_ratio": 1.2}
    assert gates["errors"] == {"max_abs_diff_pp": 0.5}
    assert gates["min_samples"] == 200


def test_fixtures_registry_holds_the_broken_versions():
    reg = Registry(FIXTURES_ROOT)
    assert reg.versions(MODEL) == ["bad-nan", "bad-reject", "bad-shift", "bad-signature",
                                   "bad-slow"]
    assert reg.model_defaults(MODEL) == Registry(REAL_ROOT).model_defaults(MODEL)
    assert reg.pointers(MODEL).stable is None
    for version in reg.versions(MODEL):
        card = reg.card(MODEL, version)
        assert card.description.startswith("BROKEN")
        assert card.training["broken"]["kind"] == version


def test_unknown_model_names_the_known_ones():
    with pytest.raises(RegistryError,
                       match=r"unknown model 'nope'; known: digit-seven, risk-score"):
        Registry(REAL_ROOT).card("nope", "v1")


def test_unknown_version_names_the_known_ones():
    with pytest.raises(RegistryError, match=r"unknown version 'v9' of model 'risk-score'; "
                                            r"known: v1, v2"):
        Registry(REAL_ROOT).card(MODEL, "v9")


@pytest.mark.parametrize("version", ["../v1", "v1/..", "", "v 1", "..", "/etc"])
def test_traversal_and_odd_versions_are_refused_before_any_path_is_used(version):
    with pytest.raises(RegistryError, match="invalid version"):
        Registry(REAL_ROOT).card(MODEL, version)


@pytest.mark.parametrize("model", ["../model_registry", "", "Risk-Score", "risk score"])
def test_bad_model_names_are_refused(model):
    with pytest.raises(RegistryError, match="invalid model name"):
        Registry(REAL_ROOT).versions(model)


def test_versions_sort_naturally_and_skip_dirs_without_a_card(registry, root):
    for name in ("v10", "v9"):
        (root / MODEL / name).mkdir()
        (root / MODEL / name / "card.yaml").write_text("x")
    (root / MODEL / "notes").mkdir()
    (root / MODEL / ".register-v3.abc").mkdir()
    assert registry.versions(MODEL) == ["v1", "v2", "v9", "v10"]


def test_malformed_card_in_registry_is_reported(registry, root):
    (root / MODEL / "v2" / "card.yaml").write_text("model: risk-score\nversion: v2\n")
    with pytest.raises(RegistryError, match=r"card.yaml: missing field 'input'"):
        registry.card(MODEL, "v2")


def test_card_from_dir_checks_the_model_and_version(root):
    with pytest.raises(RegistryError, match="card is for version 'v1', not 'v2'"):
        ModelCard.from_dir(root / MODEL / "v1", MODEL, "v2")
    with pytest.raises(RegistryError, match="card is for model 'risk-score', not 'other'"):
        ModelCard.from_dir(root / MODEL / "v1", "other")


def test_reading_the_registry_does_not_import_paddle():
    code = ("import sys; from paddle_canary.registry import Registry; r = Registry(); "
            "c = r.card('risk-score', 'v1'); c.reference_inputs(); r.history('risk-score'); "
            "from paddle_canary.registry import commands; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'paddle')))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "PADDLE_CANARY_REGISTRY": str(REAL_ROOT)})
    assert json.loads(out.stdout) == []
