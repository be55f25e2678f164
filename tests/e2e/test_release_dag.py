"""The model_release DAG end to end in a real Airflow 3.3 (api-server, scheduler,
dag-processor, triggerer; SQLite, LocalExecutor) driving real serving processes, the real
nginx gateway and real Prometheus, with synthetic users; steps compressed to seconds.
Approvals are answered over the REST API."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paddle_canary import process
from paddle_canary.airflow_rest import AirflowClient, AirflowError
from paddle_canary.localstack import driver
from paddle_canary.localstack.stack import LocalStack, StackPorts
from paddle_canary.registry import Registry, export_as

pytestmark = pytest.mark.slow
MODEL = "risk-score"
FAST = {"step_interval_s": 6, "poll_interval_s": 1, "teardown_delay_s": 2, "max_extensions": 0,
        "gates": {"min_samples": 40}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, broken_registry_root):
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    s = LocalStack(tmp_path_factory.mktemp("e2e") / "stack", model=MODEL, ports=ports,
                   load_rate=100, load_rates={"digit-seven": 20})
    s.prepare_registry().register(MODEL, "bad-slow", broken_registry_root / MODEL / "bad-slow")
    try:
        s.up()
        yield s
    finally:
        s.down()


@pytest.fixture(scope="module")
def client(stack, monkeypatch_module):
    for key, value in stack.env().items():
        monkeypatch_module.setenv(key, value)
    c = AirflowClient.from_env()
    process.wait_until(c.dag_exists, 120, interval=1, what="model_release parsed")
    c.unpause()
    yield c
    c.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def run_release(stack, client, conf, answer="Approve", timeout=300):
    run_id = client.trigger(conf)
    run = driver.drive(client, run_id, stack.home, MODEL, timeout=timeout, answer=answer)
    return run_id, driver.summary(stack.home, MODEL, run_id, run["state"])


class Routes:
    def __init__(self, route):
        self.candidate_url = route.candidate.url if route.candidate else None
        self.stable_url = route.stable.url


def gateway(stack):
    live = stack.gateway().route(MODEL)
    return live.weight, Routes(live)


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.name != ".lock"}


def test_bad_requests_are_refused_before_any_weight_moves(stack, client):
    before = snapshot(stack.paths.registry_root)
    # a conf that breaks the form's JSON schema never becomes a run
    with pytest.raises(AirflowError, match="400"):
        client.trigger({"model": MODEL, "version": "v2", "steps": [5, 500]})
    for conf, why in (({"model": MODEL, "version": "v2", "steps": [50, 20, 100]}, "increasing"),
                      ({"model": MODEL, "version": "v1"}, "already the stable"),
                      ({"model": MODEL, "version": "v9"}, "unknown version")):
        run_id = client.trigger(conf)
        process.wait_until(lambda: client.task_instances(run_id).get("resolve_plan") == "failed",
                           90, interval=1, what="resolve_plan to refuse")
        states = client.task_instances(run_id)
        assert states.get("deploy_candidate") in (None, "upstream_failed")
        assert states.get("step_01.set_weight") in (None, "upstream_failed")
        weight, routes = gateway(stack)
        assert (weight, routes.candidate_url) == (0, None)
        assert driver.journal_events(stack.home, MODEL, run_id) == []
    assert snapshot(stack.paths.registry_root) == before


def test_broken_candidate_is_rolled_back_and_the_registry_says_why(stack, client):
    _, result = run_release(stack, client, {"model": MODEL, "version": "bad-slow",
                                            "steps": [5, 100], **FAST, "step_interval_s": 60})
    assert result["outcome"] == "rolled_back", result
    assert result["steps_reached"] == [5]
    assert "latency_p95" in result["reason"]
    assert result["traffic_to_weight0_s"] < 60  # the fail ended the 60 s step early
    reg = Registry(stack.paths.registry_root)
    assert reg.status(MODEL, "bad-slow") == "rejected"
    assert "latency_p95" in [h for h in reg.history(MODEL) if h["event"] == "rejected"][-1]["reason"]
    weight, routes = gateway(stack)
    assert (weight, routes.candidate_url) == (0, None)
    assert "bad-slow" not in [e.version for e in stack.runtime().endpoints(MODEL)]


def test_good_candidate_goes_to_100_with_approvals_and_old_version_is_torn_down(stack, client):
    asked = []

    def approve(item):
        asked.append(item["task_instance"]["task_id"])
        return "Approve"

    run_id, result = run_release(stack, client, {
        "model": MODEL, "version": "v2", "steps": [5, 50, 100], "approvals_before": [50, 100],
        **FAST}, answer=approve)
    assert result["outcome"] == "promoted", result
    assert result["dag_run"] == "success"
    assert result["steps_reached"] == [5, 50, 100]
    assert {"step_02.approve", "step_03.approve"} <= set(asked)
    reg = Registry(stack.paths.registry_root)
    assert reg.pointers(MODEL).stable == "v2"
    assert [e.version for e in stack.runtime().endpoints(MODEL)] == ["v2"]  # v1 torn down
    weight, routes = gateway(stack)
    assert (weight, routes.candidate_url) == (0, None)
    assert client.task_instances(run_id)["teardown_old_version"] == "success"
    assert result["report"]


def test_registering_with_release_schedules_it_and_a_failing_model_gets_no_traffic(
        stack, client, broken_registry_root):
    runs_before = {r["dag_run_id"] for r in client.runs()}
    out = subprocess.run(
        [sys.executable, "-m", "paddle_canary.cli", "registry", "register", MODEL, "bad-nan",
         str(broken_registry_root / MODEL / "bad-nan"), "--registry",
         str(stack.paths.registry_root), "--release"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    new = process.wait_until(lambda: [r for r in client.runs()
                                      if r["dag_run_id"] not in runs_before], 90, interval=1,
                             what="an asset-triggered model_release run")
    assert new[0]["run_type"] == "asset_triggered"
    run = driver.drive(client, new[0]["dag_run_id"], stack.home, MODEL, timeout=180)
    result = driver.summary(stack.home, MODEL, new[0]["dag_run_id"], run["state"])
    assert result["candidate"] == "bad-nan"
    assert result["outcome"] == "rolled_back" and result["steps_reached"] == []
    assert "not finite" in result["reason"]
    assert Registry(stack.paths.registry_root).status(MODEL, "bad-nan") == "rejected"


def test_rollback_by_hand_stops_the_release_at_once(stack, client, registry_root, tmp_path):
    src = export_as(registry_root / MODEL / "v1", tmp_path / "v3", "v3")
    Registry(stack.paths.registry_root).register(MODEL, "v3", src)
    run_id = client.trigger({"model": MODEL, "version": "v3", "steps": [5, 100], **FAST,
                             "step_interval_s": 300, "gates": {"min_samples": 100000}})
    process.wait_until(lambda: client.task_instances(run_id).get("step_01.analyze") == "deferred",
                       120, interval=1, what="the 5 % step waiting")
    assert gateway(stack)[0] == 5
    out = subprocess.run([sys.executable, "-m", "paddle_canary.cli", "rollback", MODEL],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    weight, routes = gateway(stack)
    assert (weight, routes.candidate_url) == (0, None)
    reg = Registry(stack.paths.registry_root)
    assert reg.status(MODEL, "v3") == "rejected"
    assert "by hand" in [h for h in reg.history(MODEL) if h["event"] == "rejected"][-1]["reason"]
    assert client.run(run_id)["state"] == "failed"
    assert "v3" not in [e.version for e in stack.runtime().endpoints(MODEL)]


def test_a_promoted_version_that_dies_while_it_bakes_is_undone(stack, client, registry_root,
                                                                 tmp_path):
    """The bake period in the real stack: v5 (the stable model under a new name) is promoted,
    then its process is killed while the old stable still runs; the bake guard in the
    triggerer points every user back at the old stable, rejects v5 and keeps the old one."""
    import json
    import os
    import signal

    from paddle_canary.release import events as ev
    from paddle_canary.release.journal import Journal

    old = Registry(stack.paths.registry_root).pointers(MODEL).stable
    src = export_as(registry_root / MODEL / old, tmp_path / "v5", "v5")
    Registry(stack.paths.registry_root).register(MODEL, "v5", src)
    run_id = client.trigger({"model": MODEL, "version": "v5", "steps": [50, 100],
                             "approvals_before": [], **FAST, "teardown_delay_s": 300})
    driver.drive(client, run_id, stack.home, MODEL, timeout=300,
                 until=lambda states: states.get("teardown_old_version") == "deferred")
    assert Registry(stack.paths.registry_root).pointers(MODEL).stable == "v5"

    runtime = stack.runtime()
    pid = json.loads(runtime.state_path.read_text())[f"{MODEL}/v5"]["pid"]
    os.kill(pid, signal.SIGKILL)
    journal = Journal.of_run(stack.home, MODEL, run_id)
    undone = process.wait_until(lambda: ev.first(journal.read(), ev.Undone), 60, interval=0.5,
                                what="the bake guard undoing the promotion")
    assert (undone.by, undone.restored, undone.version) == ("bake guard", old, "v5")
    assert "v5 is gone" in undone.reason
    reg = Registry(stack.paths.registry_root)
    assert (reg.pointers(MODEL).stable, reg.status(MODEL, "v5")) == (old, "rejected")
    weight, routes = gateway(stack)
    (stable,) = [e for e in runtime.endpoints(MODEL) if e.version == old]
    assert (weight, routes.candidate_url, routes.stable_url) == (0, None, stable.url)
    process.wait_until(lambda: client.run(run_id)["state"] in ("success", "failed"), 120,
                       interval=1, what="the run to end after the undo")
    assert client.task_instances(run_id)["teardown_old_version"] == "success"
    assert old in [e.version for e in runtime.endpoints(MODEL)]  # the teardown was cancelled
