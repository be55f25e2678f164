"""Thresholds: card defaults, per-release overrides, and refusals that name the key."""

from __future__ import annotations

import math

import pytest

from paddle_canary.analysis import GateConfig, ThresholdError, thresholds_for
from paddle_canary.errors import UserError

CARD = {
    "score_distribution": {"max_mean_rel_diff": 0.05, "max_psi": 0.1},
    "rejection_rate": {"max_abs_diff_pp": 1.0},
    "latency_p95": {"max_ms": 80, "max_ratio": 1.2},
    "errors": {"max_abs_diff_pp": 0.5},
    "min_samples": 200,
}


def test_card_defaults_and_overrides_merge_key_by_key():
    cfg = GateConfig.from_dict(CARD, {"latency_p95": {"max_ms": 50}, "min_samples": 500})
    assert cfg.latency_p95.max_ms == 50 and cfg.latency_p95.max_ratio == 1.2
    assert cfg.min_samples == 500
    assert cfg.errors.burst_min_errors == 5          # built-in default, not in the card
    assert GateConfig.from_dict(cfg.to_dict()) == cfg


def test_thresholds_come_from_the_model_card():
    cfg = thresholds_for("risk-score", overrides={"rejection_rate": {"max_abs_diff_pp": 2}})
    assert cfg.rejection_rate.max_abs_diff_pp == 2.0
    assert cfg.score_distribution.max_psi == 0.1 and cfg.min_samples == 200


@pytest.mark.parametrize("override, key", [
    ({"latency_p99": {"max_ms": 10}}, "gates.latency_p99"),
    ({"latency_p95": {"max_seconds": 1}}, "gates.latency_p95.max_seconds"),
    ({"latency_p95": {"max_ms": -5}}, "gates.latency_p95.max_ms"),
    ({"latency_p95": {"max_ms": math.nan}}, "gates.latency_p95.max_ms"),
    ({"latency_p95": {"max_ms": "80"}}, "gates.latency_p95.max_ms"),
    ({"latency_p95": {"max_ms": True}}, "gates.latency_p95.max_ms"),
    ({"latency_p95": {"max_ratio": 0.9}}, "gates.latency_p95.max_ratio"),
    ({"latency_p95": {"min_delta_ms": -1}}, "gates.latency_p95.min_delta_ms"),
    ({"score_distribution": {"max_psi": 0}}, "gates.score_distribution.max_psi"),
    ({"score_distribution": {"max_mean_rel_diff": 5}},
     "gates.score_distribution.max_mean_rel_diff"),
    ({"rejection_rate": {"max_abs_diff_pp": math.inf}}, "gates.rejection_rate.max_abs_diff_pp"),
    ({"errors": {"burst_min_errors": 2.5}}, "gates.errors.burst_min_errors"),
    ({"min_samples": 0}, "gates.min_samples"),
    ({"alpha": 1.5}, "gates.alpha"),
    ({"errors": 0.5}, "gates.errors"),
])
def test_nonsense_is_refused_naming_the_key(override, key):
    with pytest.raises(ThresholdError) as err:
        GateConfig.from_dict(CARD, override)
    assert str(err.value).startswith(key + ":")
    assert isinstance(err.value, UserError)


def test_overrides_must_be_a_mapping():
    with pytest.raises(ThresholdError, match="mapping"):
        GateConfig.from_dict(CARD, ["latency_p95"])
