"""register: a good export goes in whole; a bad one is refused by name and writes nothing."""

import shutil

import pytest
from registry_helpers import FIXTURES_ROOT, MODEL, export_copy, snapshot

from paddle_canary.registry import RegistryError


@pytest.fixture
def export(root, tmp_path):
    """A good export of a new version 'v3' (v2's files, card renamed) outside the registry."""
    return export_copy(root / MODEL / "v2", tmp_path / "export-v3", "v3")


def test_register_copies_the_export_and_records_it(registry, root, export):
    card = registry.register(MODEL, "v3", export)
    assert card.path == root / MODEL / "v3"
    assert sorted(p.name for p in card.path.iterdir()) == [
        "card.yaml", "model.json", "model.pdiparams", "reference.csv"]
    assert registry.versions(MODEL) == ["v1", "v2", "v3"]
    assert registry.status(MODEL, "v3") == "registered"
    assert card.content_hash == registry.card(MODEL, "v2").content_hash  # same bytes
    event = registry.history(MODEL)[-1]
    assert event["event"] == "registered" and event["version"] == "v3"
    assert event["content_hash"] == card.content_hash
    assert event["check"]["input_shape"] == [None, 30]
    assert event["check"]["reference_rows"] == 200
    assert event["check"]["reference_non_finite"] == 0
    assert not [p for p in (root / MODEL).iterdir() if p.name.startswith(".register-")]


def test_register_keeps_nan_outputs_for_validation_to_judge(registry, root, tmp_path):
    src = export_copy(FIXTURES_ROOT / MODEL / "bad-nan", tmp_path / "nan", "v3")
    registry.register(MODEL, "v3", src)
    check = registry.history(MODEL)[-1]["check"]
    assert 0 < check["reference_non_finite"] < 200


def refused(registry, root, model, version, source, match):
    before = snapshot(root)
    with pytest.raises(RegistryError, match=match):
        registry.register(model, version, source)
    assert snapshot(root) == before  # not even a lock file or a temp directory


def test_refuses_an_existing_version(registry, root, tmp_path):
    src = export_copy(root / MODEL / "v2", tmp_path / "again", "v1")
    refused(registry, root, MODEL, "v1", src, r"version 'v1' of model 'risk-score' already "
                                               r"exists; versions are immutable")


@pytest.mark.parametrize("missing", ["model.json", "model.pdiparams", "card.yaml",
                                     "reference.csv"])
def test_refuses_an_export_with_a_missing_file(registry, root, export, missing):
    (export / missing).unlink()
    refused(registry, root, MODEL, "v3", export, rf"missing {missing} \(an export needs")


def test_refuses_a_source_that_is_not_a_directory(registry, root, tmp_path):
    refused(registry, root, MODEL, "v3", tmp_path / "nowhere", "not a directory")


@pytest.mark.parametrize("text, match", [
    ("model: [unclosed\n", "not valid YAML"),
    ("- a list\n", "must be a mapping"),
    (None, "card is for version 'v2', not 'v3'"),
    ("model: risk-score\nversion: v3\n", "missing field 'input'"),
])
def test_refuses_a_malformed_card(registry, root, export, text, match):
    if text is None:
        (export / "card.yaml").write_text((root / MODEL / "v2" / "card.yaml").read_text())
    else:
        (export / "card.yaml").write_text(text)
    refused(registry, root, MODEL, "v3", export, match)


@pytest.mark.parametrize("old, new, match", [
    ("decision_threshold: 0.5", "decision_threshold: 1.5", r"decision_threshold must be in"),
    ("dtype: float32", "dtype: int64", "input dtype 'int64' not supported"),
    ("features: [mean_radius, ", "features: [mean_texture, ", "duplicate feature names"),
    ("counts: [", "counts: [-1, ", "counts must be 20 non-negative integers"),
])
def test_refuses_card_fields_out_of_bounds(registry, root, export, old, new, match):
    text = (export / "card.yaml").read_text()
    assert old in text
    (export / "card.yaml").write_text(text.replace(old, new, 1))
    refused(registry, root, MODEL, "v3", export, match)


def test_refuses_a_reference_sample_that_does_not_match_the_card(registry, root, export):
    lines = (export / "reference.csv").read_text().splitlines()
    (export / "reference.csv").write_text("\n".join([lines[0].replace("mean_radius", "r")]
                                                    + lines[1:]) + "\n")
    refused(registry, root, MODEL, "v3", export, "header does not match the card's features")


def test_refuses_the_bad_signature_fixture(registry, root, tmp_path):
    src = export_copy(FIXTURES_ROOT / MODEL / "bad-signature", tmp_path / "sig", "v3")
    refused(registry, root, MODEL, "v3", src,
            r"export input 'x' has shape \[None, 29\], card needs \[None, 30\]")


def test_refuses_a_card_with_another_input_name(registry, root, export):
    text = (export / "card.yaml").read_text().replace("name: x\n", "name: features\n", 1)
    (export / "card.yaml").write_text(text)
    refused(registry, root, MODEL, "v3", export,
            r"export inputs are \['x'\], card says one input 'features'")


@pytest.mark.parametrize("damage, match", [
    (lambda e: (e / "model.json").write_text('{"garbage": 1}'), "does not load with Paddle"),
    (lambda e: (e / "model.pdiparams").write_bytes(b"\0" * 100), "does not load with Paddle"),
    (lambda e: (e / "model.json").write_bytes((e / "model.json").read_bytes()[:500]),
     "does not load with Paddle"),
])
def test_refuses_an_export_that_does_not_load(registry, root, export, damage, match):
    damage(export)
    refused(registry, root, MODEL, "v3", export, match)


@pytest.mark.parametrize("model, version, match", [
    ("risk-score", "../v3", "invalid version"),
    ("risk-score", "v3/..", "invalid version"),
    ("risk-score", "", "invalid version"),
    ("risk-score", "v 3", "invalid version"),
    ("../risk-score", "v3", "invalid model name"),
    ("other", "v3", r"unknown model 'other'; known: digit-seven, risk-score"),
])
def test_refuses_bad_names_and_unknown_models(registry, root, export, model, version, match):
    refused(registry, root, model, version, export, match)


def test_a_version_left_half_copied_is_never_listed(registry, root, export):
    partial = root / MODEL / ".register-v3.x1"
    shutil.copytree(export, partial)
    assert registry.versions(MODEL) == ["v1", "v2"]


def test_refuses_a_dangling_symlink_planted_as_the_version(registry, root, export, tmp_path):
    (root / MODEL / "v3").symlink_to(tmp_path / "nowhere")
    refused(registry, root, MODEL, "v3", export,
            r"risk-score/v3 already exists \(a symlink to .*nowhere\); versions are immutable")


def test_refuses_a_file_planted_as_the_version(registry, root, export):
    (root / MODEL / "v3").write_text("not a version")
    refused(registry, root, MODEL, "v3", export, "version 'v3' of model 'risk-score' already "
                                                 "exists")



def test_a_lock_that_cannot_be_taken_is_an_error_not_a_traceback(registry, root, export):
    (root / MODEL / ".lock").mkdir()  # planted: the lock file's name is a directory
    refused(registry, root, MODEL, "v3", export, r"\.lock: cannot take the lock")
