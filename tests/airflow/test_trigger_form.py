"""The trigger form a data scientist fills in (the DAG's Params, JSON schema)."""

from __future__ import annotations

import pytest

from paddle_canary.airflow.form import ADVANCED, release_params
from paddle_canary.settings import REPO

REGISTRY = REPO / "model_registry"


@pytest.fixture(scope="module")
def params(airflow_home):
    return release_params(REGISTRY)


def test_every_field_has_a_title_with_its_unit_and_says_its_default(params):
    for name, p in params.items():
        assert p.schema.get("title"), name
        assert p.description, name
    for name in ("steps", "step_interval_s", "approvals_before", "teardown_delay_s",
                 "poll_interval_s", "max_extensions"):
        title, text = params[name].schema["title"], params[name].description
        assert "(" in title and title.endswith(")"), (name, title)
        assert "Empty: the model's default from model.yaml (" in text and "risk-score: " in text, name
    assert "risk-score: 5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 100 %" in params["steps"].description


def test_model_is_offered_from_the_registry(params, tmp_path):
    assert params["model"].schema["examples"] == sorted(
        p.parent.name for p in REGISTRY.glob("*/model.yaml"))
    assert "risk-score" in params["model"].schema["examples"]
    assert "examples" not in release_params(tmp_path / "missing")["model"].schema


def test_weights_must_be_unique(params):
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError
    for name in ("steps", "approvals_before"):
        assert params[name].schema["uniqueItems"] is True
    form = ParamsDict(params)
    form.validate()
    with pytest.raises(ParamValidationError):
        ParamsDict({**params, "steps": params["steps"].__class__(
            [5, 5, 100], **params["steps"].schema)}).validate()


def test_advanced_fields_are_in_their_own_section(params):
    advanced = {n for n, p in params.items() if p.schema.get("section") == ADVANCED}
    assert advanced == {"poll_interval_s", "max_extensions", "gates", "runtime", "shadow_s",
                        "shadow_mirror", "paired", "header_route"}


def test_the_empty_runtime_choice_is_labelled_not_null(params):
    schema = params["runtime"].schema
    assert None in schema["enum"]
    assert set(schema["values_display"]) == set(schema["enum"])
    assert "null" not in schema["values_display"][None].lower()
