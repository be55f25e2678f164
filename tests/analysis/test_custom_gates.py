"""Custom PromQL gates: checked in model.yaml before a release starts, evaluated by a real
Prometheus (queries that need no scraped series, e.g. ``vector(0.7)``, so the value is known),
failing only after ``failure_limit`` consecutive breaches, and part of the release judge's
verdict (real registry and journal, in-memory router and runtime doubles)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from doubles import MemoryRouter, MemoryRuntime
from paddle_canary.analysis import custom_gates
from paddle_canary.analysis.custom_gates import CustomGate, CustomGateError
from paddle_canary.analysis.provider import PrometheusProvider
from paddle_canary.release import controller
from paddle_canary.release.controller import Release
from paddle_canary.settings import Settings
from paddle_canary.traffic.base import Backend, ModelRoute

MODEL = "risk-score"


def value_query(value: str) -> str:
    """A query that names {version} and returns ``value`` labelled with it."""
    return f'label_replace(vector({value}), "version", "{{version}}", "", "")'


@pytest.mark.parametrize("item, message", [
    ({"name": "x", "query": "up", "max": 1}, "naming {version}"),
    ({"name": "x", "query": "up{version='{version}'}"}, "exactly one of max or min"),
    ({"name": "x", "query": "up{version='{version}'}", "max": 1, "min": 0}, "exactly one"),
    ({"name": "Bad Name", "query": "up{version='{version}'}", "max": 1}, "lower_snake_case"),
    ({"name": "x", "query": "up{version='{version}'}", "max": "high"}, "must be a number"),
    ({"name": "x", "query": "up{version='{version}'}", "max": 1, "failure_limit": 0}, ">= 1"),
    ({"name": "x", "query": "up{version='{version}'}", "max": 1, "every": 3}, "unknown field"),
])
def test_a_bad_custom_gate_is_refused_with_its_reason(item, message):
    with pytest.raises(CustomGateError, match=message):
        custom_gates.from_model_card({"custom_gates": [item]})


def test_threshold_checks_on_real_prometheus_with_a_consecutive_failure_limit(prometheus):
    provider = PrometheusProvider(prometheus.url)
    gates = [CustomGate("low_enough", value_query("0.7"), 1.0, "max"),
             CustomGate("too_high", value_query("5"), 1.0, "max", failure_limit=2),
             CustomGate("floor", value_query("0.7"), 0.9, "min", failure_limit=1),
             CustomGate("empty", 'up{version="{version}"}', 1.0, "max")]  # no such series
    first = custom_gates.evaluate(provider, gates, MODEL, "v2", window_s=30)
    by = {g["gate"]: g for g in first}
    assert by["custom:low_enough"]["status"] == "pass"
    assert by["custom:low_enough"]["effect"] == pytest.approx(0.7)
    assert by["custom:too_high"]["status"] == "inconclusive"
    assert "breach 1 of 2" in by["custom:too_high"]["reason"]
    assert by["custom:floor"]["status"] == "fail"  # limit 1: the first breach fails
    assert by["custom:empty"]["status"] == "inconclusive"
    assert "no value" in by["custom:empty"]["reason"]
    second = custom_gates.evaluate(provider, gates, MODEL, "v2", window_s=30,
                                   previous={"gates": first})
    assert {g["gate"]: g["status"] for g in second}["custom:too_high"] == "fail"


def test_a_release_look_fails_on_a_custom_gate(prometheus, tmp_path, registry_root):
    root = tmp_path / "registry"
    shutil.copytree(registry_root, root, ignore=shutil.ignore_patterns("release.lock", ".lock"))
    card_path = root / MODEL / "model.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["custom_gates"] = [{"name": "queue_depth", "query": value_query("42"), "max": 10,
                             "failure_limit": 2}]
    card_path.write_text(yaml.safe_dump(card))
    settings = Settings(home=tmp_path / "home", registry_root=root, prometheus_url=prometheus.url)
    plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 100],
                               "approvals_before": []}, run_id="run-1", settings=settings)
    router, runtime = MemoryRouter(), MemoryRuntime()
    stable = runtime.deploy(MODEL, "v1")
    router.apply(ModelRoute(MODEL, stable=Backend("v1", stable.url)))
    release = Release(plan, runtime=runtime, router=router,
                      registry=controller.registry_at(settings),
                      journal=controller.journal_of(plan, settings),
                      provider=PrometheusProvider(prometheus.url))
    release.deploy()
    release.set_step_weight(1, 5)
    first = release.judge(since=0.0, step=1, weight=5)
    assert first["status"] == "inconclusive"  # no serving data yet, one breach of two
    second = release.judge(since=0.0, step=1, weight=5, previous=first)
    assert second["status"] == "fail"
    assert second["reason"].startswith("queue_depth 42, not <= 10 (breach 2 of 2)")


def test_a_bad_custom_gate_refuses_the_release_before_any_change(tmp_path, registry_root):
    root = tmp_path / "registry"
    shutil.copytree(registry_root, root, ignore=shutil.ignore_patterns("release.lock", ".lock"))
    card_path = root / MODEL / "model.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["custom_gates"] = [{"name": "x", "query": "up", "max": 1}]
    card_path.write_text(yaml.safe_dump(card))
    settings = Settings(home=tmp_path / "home", registry_root=root,
                        prometheus_url="http://127.0.0.1:9")
    with pytest.raises(CustomGateError):
        controller.prepare({"model": MODEL, "version": "v2"}, run_id="run-1", settings=settings)
    from paddle_canary.release import lock
    assert lock.holder(root, MODEL) is None
    assert controller.registry_at(settings).pointers(MODEL).candidate is None
