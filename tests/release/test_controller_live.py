"""A release driven step by step through the plain-Python controller, no Airflow: real serving
processes, the real nginx gateway, real Prometheus and synthetic users. The Airflow tasks are
thin wrappers over exactly these calls (tests/airflow covers the DAG itself)."""

from __future__ import annotations

import threading

import httpx
import pytest

from paddle_canary import process
from paddle_canary.localstack.stack import LocalStack, StackPorts
from paddle_canary.release import controller, lock

pytestmark = pytest.mark.slow
MODEL = "risk-score"


@pytest.fixture
def stack(tmp_path, monkeypatch, broken_registry_root):
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    s = LocalStack(tmp_path / "stack", model=MODEL, ports=ports)
    s.prepare_registry().register(MODEL, "bad-slow", broken_registry_root / MODEL / "bad-slow")
    for key, value in s.paths.to_env().items():
        monkeypatch.setenv(key, value)
    try:
        s.up(airflow=False, load=False)
        yield s
    finally:
        s.down()


class Users:
    """Synthetic users through the gateway until ``finish()`` returns their summary."""

    def __init__(self, stack):
        from paddle_canary.loadgen import run_load
        self._stop = threading.Event()
        self._result = {}
        ref = stack.prepare_registry().card(MODEL, "v1").reference_inputs()
        self._thread = threading.Thread(target=lambda: self._result.update(summary=run_load(
            f"{stack.gateway_url}/predict", users=3000, duration_s=300, rate=120, concurrency=4,
            reference=ref, stop=self._stop)), daemon=True)
        self._thread.start()

    def finish(self):
        self._stop.set()
        self._thread.join(30)
        return self._result["summary"]


@pytest.fixture
def users(stack):
    u = Users(stack)
    yield u
    u.finish()


def live(stack) -> dict:
    return controller.router().live_status()


def test_good_candidate_is_promoted_and_old_version_torn_down(stack, users):
    plan = controller.prepare({"model": MODEL, "version": "v2", "step_interval_s": 5,
                               "gates": {"min_samples": 50}}, run_id="run-good")
    assert controller.validate_candidate(plan)["passed"]
    controller.deploy_candidate(plan)
    for weight in (5, 50, 100):
        step = controller.set_step_weight(plan, weight)
        assert live(stack)["weight"] == weight
        verdict = process.wait_until(
            lambda: (v := controller.judge(plan, step["at"]))["gates"] and v, 30,
            interval=1, what="a judged window")
        assert verdict["status"] != "fail", verdict["reason"]
    controller.promote(plan)
    reg = stack.prepare_registry()
    assert reg.pointers(MODEL).stable == "v2" and reg.pointers(MODEL).candidate is None
    v2 = next(e for e in stack.runtime().endpoints() if e.version == "v2")
    routes = controller.router().state
    assert (live(stack)["weight"], routes.candidate_url, routes.stable_url) == (0, None, v2.url)
    r = httpx.post(f"{stack.gateway_url}/predict", headers={"X-User-ID": "someone"},
                   json={"user_id": "someone", "features": [1.0] * 30})
    assert r.headers["X-Model-Version"] == "v2"
    controller.teardown(plan)
    assert [e.version for e in stack.runtime().endpoints()] == ["v2"]
    result = controller.finish(plan, run_id="run-good")
    assert result["outcome"] == "promoted"
    assert lock.holder(stack.paths.registry_root, MODEL) is None


def test_slow_candidate_fails_the_latency_gate_and_is_rolled_back(stack, users):
    plan = controller.prepare({"model": MODEL, "version": "bad-slow", "poll_interval_s": 1,
                               "gates": {"min_samples": 50}}, run_id="run-bad")
    assert controller.validate_candidate(plan)["passed"], "its fault only shows under live traffic"
    controller.deploy_candidate(plan)
    step = controller.set_step_weight(plan, 5)
    verdict = process.wait_until(
        lambda: (v := controller.judge(plan, step["at"]))["status"] == "fail" and v, 90,
        interval=1, what="the latency gate to fail")
    failed = [g["gate"] for g in verdict["gates"] if g["status"] == "fail"]
    assert "latency_p95" in failed
    controller.cut_traffic(plan, controller.verdict_reason(verdict))
    assert live(stack)["weight"] == 0
    controller.record_failure(plan, "step_01.analyze", controller.verdict_reason(verdict))
    controller.rollback(plan)
    reg = stack.prepare_registry()
    assert reg.status(MODEL, "bad-slow") == "rejected"
    rejected = [h for h in reg.history(MODEL) if h["event"] == "rejected"][-1]
    assert "latency_p95" in rejected["reason"]
    assert [e.version for e in stack.runtime().endpoints()] == ["v1"]
    assert live(stack)["candidate"] is None
    assert controller.finish(plan, run_id="run-bad")["outcome"] == "rolled_back"
    summary = users.finish()
    assert summary.failures == 0, summary.error_samples  # slow, never failing, for users
    assert summary.by_version.get("bad-slow", 0) > 0


def test_a_second_release_of_the_model_is_refused_while_one_runs(stack):
    controller.prepare({"model": MODEL, "version": "v2"}, run_id="run-a")
    with pytest.raises(lock.ReleaseInProgress, match="run-a"):
        controller.prepare({"model": MODEL, "version": "bad-slow"}, run_id="run-b")
    assert live(stack)["weight"] == 0
