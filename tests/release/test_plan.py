"""Release requests are resolved into plans, and bad ones are refused before anything changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from paddle_canary.errors import UserError
from paddle_canary.registry import Registry
from paddle_canary.release import lock
from paddle_canary.release.plan import DEFAULT_STEPS, PlanError, resolve_plan

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def reg(tmp_path) -> Registry:
    root = tmp_path / "registry"
    shutil.copytree(REPO / "model_registry", root, ignore=shutil.ignore_patterns(".lock"))
    return Registry(root)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_defaults_come_from_the_model_card(reg):
    plan = resolve_plan(reg, {"model": "risk-score", "version": "v2"})
    assert plan.baseline == "v1" and plan.candidate == "v2"
    assert plan.steps == DEFAULT_STEPS
    assert plan.step_interval_s == 3600 and plan.teardown_delay_s == 86400
    assert plan.gates["latency_p95"]["max_ms"] == 80
    # approvals before 50 % and before 100 %: before the first step at or above each
    assert [s for s in plan.steps if plan.needs_approval_before(s)] == [55, 100]


def test_overrides_apply(reg):
    plan = resolve_plan(reg, {"model": "risk-score", "version": "v2", "steps": [10, 50, 100],
                              "step_interval_s": 5, "approvals_before": [100],
                              "teardown_delay_s": 0})
    assert plan.steps == (10, 50, 100) and plan.step_interval_s == 5
    assert [plan.step_at(i) for i in range(4)] == [10, 50, 100, None]
    assert [s for s in plan.steps if plan.needs_approval_before(s)] == [100]


def test_plan_round_trips_through_json_like_dicts(reg):
    plan = resolve_plan(reg, {"model": "risk-score", "version": "v2"}, run_id="r1")
    from paddle_canary.release.plan import ReleasePlan
    assert ReleasePlan.from_dict(plan.to_dict()) == plan


@pytest.mark.parametrize("request_, message", [
    ({"model": "nope", "version": "v2"}, "unknown model"),
    ({"model": "../etc", "version": "v2"}, "model"),
    ({"model": "risk-score", "version": "v9"}, "unknown version"),
    ({"model": "risk-score", "version": "v1"}, "already the stable"),
    ({"model": "risk-score"}, "version is required"),
    ({"model": "risk-score", "version": "v2", "steps": [5, 5, 100]}, "strictly increasing"),
    ({"model": "risk-score", "version": "v2", "steps": [50, 20, 100]}, "strictly increasing"),
    ({"model": "risk-score", "version": "v2", "steps": [0, 50, 100]}, "between 1 and 100"),
    ({"model": "risk-score", "version": "v2", "steps": [5, 150]}, "between 1 and 100"),
    ({"model": "risk-score", "version": "v2", "steps": [5, 50]}, "end at 100"),
    ({"model": "risk-score", "version": "v2", "steps": [5.5, 100]}, "integers"),
    ({"model": "risk-score", "version": "v2", "steps": []}, "non-empty"),
    ({"model": "risk-score", "version": "v2", "step_interval_s": 0}, "step_interval_s"),
    ({"model": "risk-score", "version": "v2", "runtime": "mainframe"}, "runtime"),
    ({"model": "risk-score", "version": "v2", "colour": "red"}, "unknown request field"),
])
def test_bad_requests_are_refused_and_change_nothing(reg, request_, message):
    before = _snapshot(reg.root)
    with pytest.raises(UserError) as info:  # the CLI prints it and exits 2
        resolve_plan(reg, request_)
    assert message in str(info.value)
    assert _snapshot(reg.root) == before


def test_a_rejected_version_is_not_released_again(reg):
    reg.mark_rejected("risk-score", "v2", "latency gate failed")
    with pytest.raises(PlanError, match="rejected"):
        resolve_plan(reg, {"model": "risk-score", "version": "v2"})


def test_one_release_per_model(reg):
    lock.acquire(reg.root, "risk-score", "run-1", "v2")
    lock.acquire(reg.root, "risk-score", "run-1", "v2")  # a retry of the same run passes
    with pytest.raises(lock.ReleaseInProgress, match="run-1"):
        lock.acquire(reg.root, "risk-score", "run-2", "v2")
    assert not lock.release(reg.root, "risk-score", "run-2")  # not the holder
    assert lock.release(reg.root, "risk-score", "run-1")
    lock.acquire(reg.root, "risk-score", "run-2", "v2")


def test_header_route_is_carried_in_the_plan(reg):
    plan = resolve_plan(reg, {"model": "risk-score", "version": "v2",
                              "header_route": {"name": "X-Canary", "value": "testers"}})
    assert plan.header_route == {"name": "X-Canary", "value": "testers"}
    assert type(plan).from_dict(plan.to_dict()) == plan
    assert resolve_plan(reg, {"model": "risk-score", "version": "v2"}).header_route is None


@pytest.mark.parametrize("route, why", [
    ("X-Canary", "object"),
    ({"name": "X-Canary"}, "object"),
    ({"name": "X-Canary", "value": "t", "extra": 1}, "object"),
    ({"name": "X Canary", "value": "testers"}, "name"),
    ({"name": "X-User-ID", "value": "u1"}, "cannot select"),
    ({"name": "X-Canary", "value": "a b"}, "value"),
])
def test_bad_header_route_is_refused_before_any_change(reg, route, why):
    before = _snapshot(reg.root)
    with pytest.raises(PlanError, match=why):
        resolve_plan(reg, {"model": "risk-score", "version": "v2", "header_route": route})
    assert _snapshot(reg.root) == before


def test_the_stacks_runtime_setting_is_the_default_and_a_request_still_chooses(
        monkeypatch, reg):
    """The compose stack sets PADDLE_CANARY_RUNTIME=docker for its Airflow services: releases
    there run on containers unless the request (or model.yaml) says otherwise."""
    monkeypatch.setenv("PADDLE_CANARY_RUNTIME", "docker")
    assert resolve_plan(reg, {"model": "risk-score", "version": "v2"}).runtime == "docker"
    assert resolve_plan(reg, {"model": "risk-score", "version": "v2",
                                   "runtime": "local"}).runtime == "local"
    monkeypatch.setenv("PADDLE_CANARY_RUNTIME", "nowhere")
    with pytest.raises(UserError, match="not available"):
        resolve_plan(reg, {"model": "risk-score", "version": "v2"})
