"""A release driven step by step through the plain-Python controller, no Airflow: real serving
processes, the real nginx gateway, real Prometheus and synthetic users. The Airflow tasks are
thin wrappers over exactly these calls (tests/airflow covers the DAG itself)."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from paddle_canary import process
from paddle_canary.analysis import spending
from paddle_canary.localstack.stack import LocalStack, StackPorts
from paddle_canary.release import controller, lock, messages
from paddle_canary.traffic.base import Backend, ModelRoute
from users_load import Users

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


@pytest.fixture
def users(stack):
    ref = stack.prepare_registry().card(MODEL, "v1").reference_inputs()
    u = Users(f"{stack.gateway_url}/predict", ref, rate=120)
    yield u
    u.finish()


def live(release):
    return release.router.live(MODEL)


def test_good_candidate_is_promoted_and_old_version_torn_down(stack, users):
    plan = controller.prepare({"model": MODEL, "version": "v2", "step_interval_s": 5,
                               "gates": {"min_samples": 50}}, run_id="run-good")
    release = controller.open_release(plan)
    assert release.validate()["passed"]
    release.deploy()
    for step, weight in enumerate((5, 50, 100), 1):
        at = release.set_step_weight(step, weight)["at"]
        assert live(release).weight == weight
        verdict = process.wait_until(
            lambda: (v := release.judge(at, step, weight))["gates"][1:] and v, 30,
            interval=1, what="a judged window")
        assert verdict["status"] != "fail", verdict["reason"]
    release.promote()
    reg = stack.prepare_registry()
    assert reg.pointers(MODEL).stable == "v2" and reg.pointers(MODEL).candidate is None
    v2 = next(e for e in stack.runtime().endpoints(MODEL) if e.version == "v2")
    assert live(release) == ModelRoute(MODEL, stable=Backend("v2", v2.url))
    r = httpx.post(f"{stack.gateway_url}/predict", headers={"X-User-ID": "someone"},
                   json={"user_id": "someone", "features": [1.0] * 30})
    assert r.headers["X-Model-Version"] == "v2"
    release.teardown()
    assert [e.version for e in stack.runtime().endpoints(MODEL)] == ["v2"]
    assert release.finish("run-good")["outcome"] == "promoted"
    assert lock.holder(stack.paths.registry_root, MODEL) is None


def test_slow_candidate_fails_the_latency_gate_and_is_rolled_back(stack, users):
    plan = controller.prepare({"model": MODEL, "version": "bad-slow", "poll_interval_s": 1,
                               "gates": {"min_samples": 50}}, run_id="run-bad")
    release = controller.open_release(plan)
    assert release.validate()["passed"], "its fault only shows under live traffic"
    release.deploy()
    at = release.set_step_weight(1, 5)["at"]
    verdict = process.wait_until(
        lambda: (v := release.judge(at, 1, 5))["status"] == "fail" and v, 90,
        interval=1, what="the latency gate to fail")
    failed = [g["gate"] for g in verdict["gates"] if g["status"] == "fail"]
    assert "latency_p95" in failed
    release.cut(messages.verdict_reason(verdict))
    assert live(release).weight == 0
    release.record_failure("step_01.analyze", messages.verdict_reason(verdict))
    assert release.rollback()["incomplete"] == []
    reg = stack.prepare_registry()
    assert reg.status(MODEL, "bad-slow") == "rejected"
    rejected = [h for h in reg.history(MODEL) if h["event"] == "rejected"][-1]
    assert "latency_p95" in rejected["reason"]
    assert [e.version for e in stack.runtime().endpoints(MODEL)] == ["v1"]
    assert live(release).candidate is None
    assert release.finish("run-bad")["outcome"] == "rolled_back"
    summary = users.finish()
    assert summary.failures == 0, summary.error_samples  # slow, never failing, for users
    assert summary.by_version.get("bad-slow", 0) > 0


def test_a_killed_candidate_fails_the_next_look_and_is_never_raised(stack, users):
    """Faults issue #1: the candidate SIGKILLed at 25 %: users are answered by stable, the next
    look fails on health (not 'inconclusive: no data'), no weight goes up, rollback completes."""
    plan = controller.prepare({"model": MODEL, "version": "v2", "poll_interval_s": 1},
                              run_id="run-dead")
    release = controller.open_release(plan)
    release.deploy()
    at = release.set_step_weight(1, 25)["at"]
    endpoint = stack.runtime().endpoint(MODEL, "v2")
    killed = time.time()
    process.stop_pid(endpoint.pid, signal.SIGKILL, 5)
    verdict = release.judge(at, 1, 25)
    assert verdict["status"] == "fail" and "gone" in verdict["reason"]
    assert time.time() - killed < 10
    with pytest.raises(controller.ReleaseFailed, match="refused"):
        release.set_step_weight(2, 50)
    release.cut(messages.verdict_reason(verdict))
    release.record_failure("step_01.analyze", messages.verdict_reason(verdict))
    assert release.rollback()["incomplete"] == []
    assert live(release).candidate is None
    summary = users.finish()
    assert summary.failures == 0, summary.error_samples


def test_a_killed_gateway_fails_the_look_and_the_rollback_still_frees_the_model(stack):
    """Faults issue #2: nginx SIGKILLed (its workers orphaned): the look fails on the gateway's
    health; the rollback stops the candidate, releases it and frees the lock although it cannot
    route; `stack up` then replaces the orphaned workers and routes stable only."""
    plan = controller.prepare({"model": MODEL, "version": "v2"}, run_id="run-nginx")
    release = controller.open_release(plan)
    release.deploy()
    at = release.set_step_weight(1, 25)["at"]
    process.stop_pid(release.router.pid(), signal.SIGKILL, 5)
    verdict = release.judge(at, 1, 25)
    assert verdict["status"] == "fail" and "gateway down" in verdict["reason"]
    assert verdict["health"]["blame"] == "gateway"
    release.record_failure("step_01.analyze", verdict["reason"], blame="gateway")
    result = release.rollback()
    assert [p.split(":")[0] for p in result["incomplete"]] == ["traffic"]
    assert [e.version for e in stack.runtime().endpoints(MODEL)] == ["v1"]
    reg = stack.prepare_registry()
    assert reg.pointers(MODEL).candidate is None and reg.status(MODEL, "v2") != "rejected"
    assert release.finish("run-nginx")["outcome"] == "rolled_back"
    assert lock.holder(stack.paths.registry_root, MODEL) is None
    stack.up(airflow=False, load=False)
    gateway = stack.gateway()
    assert gateway.health().ok and not gateway.nginx.orphans()
    assert gateway.live(MODEL).candidate is None
    r = httpx.post(f"{stack.gateway_url}/predict", headers={"X-User-ID": "someone"},
                   json={"user_id": "someone", "features": [1.0] * 30})
    assert r.status_code == 200 and r.headers["X-Model-Version"] == "v1"


def test_a_restarted_stable_is_routed_again_by_stack_up(stack):
    """Faults issue #1: `stack up` restarted a dead version on a new port while nginx still
    pointed at the old one. Now it re-points the gateway."""
    old = stack.runtime().endpoint(MODEL, "v1")
    process.stop_pid(old.pid, signal.SIGKILL, 5)
    stack.up(airflow=False, load=False)
    new = stack.runtime().endpoint(MODEL, "v1")
    assert new.instance != old.instance
    assert stack.gateway().live(MODEL).stable == Backend("v1", new.url)
    r = httpx.post(f"{stack.gateway_url}/predict", headers={"X-User-ID": "someone"},
                   json={"user_id": "someone", "features": [1.0] * 30})
    assert r.status_code == 200 and r.headers["X-Model-Version"] == "v1"


def test_a_second_release_of_the_model_is_refused_while_one_runs(stack):
    controller.prepare({"model": MODEL, "version": "v2"}, run_id="run-a")
    with pytest.raises(lock.ReleaseInProgress, match="run-a"):
        controller.prepare({"model": MODEL, "version": "bad-slow"}, run_id="run-b")
    assert stack.gateway().weight(MODEL) == 0


def test_prometheus_scrapes_the_gateway_weight_the_release_set(stack):
    """The series the alert rules read (ReleaseStuck, the dashboard's weight panel)."""
    plan = controller.prepare({"model": MODEL, "version": "v2"}, run_id="run-scrape")
    release = controller.open_release(plan)
    release.deploy()
    release.set_step_weight(1, 15)

    def weight():
        r = httpx.get(f"{stack.paths.prometheus_url}/api/v1/query",
                      params={"query": f'paddle_canary_gateway_weight{{model="{MODEL}"}}'})
        result = r.json()["data"]["result"]
        return result and float(result[0]["value"][1])

    assert process.wait_until(lambda: weight() == 15, 30, interval=0.5,
                              what="Prometheus to scrape the gateway's weight")


def test_the_shadow_phase_judges_mirrored_requests_on_paired_series(stack, users):
    """Real nginx mirrors stable's requests to a candidate started with --shadow v1: no user
    gets v2's answer, yet the look at step 0 reads v2's own and paired series from Prometheus;
    step 1's weight ends the mirror."""
    plan = controller.prepare({"model": MODEL, "version": "v2", "shadow_s": 30,
                               "steps": [5, 100], "gates": {"min_samples": 50}},
                              run_id="run-shadow")
    release = controller.open_release(plan)
    release.deploy()
    at = release.start_shadow()["at"]
    assert (live(release).weight, live(release).mirror) == (0, 100)

    def paired_look():
        v = release.judge(at, 0, 0)
        rr = next((g for g in v["gates"] if g["gate"] == "rejection_rate"), None)
        return v if rr and rr["details"].get("paired") == 1.0 and \
            (rr["samples"]["candidate"] or 0) >= 50 else None
    verdict = process.wait_until(paired_look, 60, interval=1, what="a paired look at step 0")
    assert verdict["status"] != "fail", verdict["reason"]
    # the shadow phase and two steps share the release's alpha; the phase is index 0
    assert verdict["alpha"] == pytest.approx(spending.step_alpha(plan.gates["alpha"] / 2, 0, 3))
    r = httpx.post(f"{stack.gateway_url}/predict", headers={"X-User-ID": "someone"},
                   json={"user_id": "someone", "features": [1.0] * 30})
    assert r.headers["X-Model-Version"] == "v1"     # mirrored answers never reach a user
    release.set_step_weight(1, 5)
    assert (live(release).weight, live(release).mirror) == (5, 0)
    release.rollback()
    release.finish("run-shadow")
