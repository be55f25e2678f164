"""Faults injected into a running release, in real Airflow 3.3 driving the real stack (serving
processes, nginx, Prometheus) under synthetic users: each fault once, each with a deadline and
an assertion on the documented outcome; none may move traffic twice, lose a journal line or
leave a process behind.

Each test records what it measured (time to detect, time to a safe state, user-visible errors)
in ``FIGURES``; ``bench/faults.py`` runs this module and prints them as the table in
bench/RESULTS.md. (Registry writers killed at random moments: tests/registry.)
"""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from paddle_canary import process
from paddle_canary.airflow_rest import AirflowClient
from paddle_canary.localstack import driver
from paddle_canary.localstack.stack import LocalStack, StackPorts
from paddle_canary.registry import Registry, export_as
from paddle_canary.release import events as ev
from users_load import Users

pytestmark = pytest.mark.slow
MODEL = "risk-score"
FAST = {"poll_interval_s": 1, "teardown_delay_s": 1, "max_extensions": 0,
        "approvals_before": [], "gates": {"min_samples": 40}}
FIGURES: list[dict] = []


@pytest.fixture(scope="module")
def stack(tmp_path_factory, registry_root):
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    home = tmp_path_factory.mktemp("faults") / "stack"
    s = LocalStack(home, model=MODEL, ports=ports)
    reg = s.prepare_registry()
    for name in ("f-kill", "f-sched", "f-trig", "f-prom", "f-nginx"):
        reg.register(MODEL, name, export_as(registry_root / MODEL / "v2",
                                            home.parent / name, name))
    try:
        s.up(load=False)
        yield s
    finally:
        s.down()
        assert not process.marked(s.home), "a process of the stack outlived stack down"
        out = os.environ.get("PADDLE_CANARY_FAULT_FIGURES")
        if out:
            with open(out, "w") as fh:
                json.dump(FIGURES, fh, indent=2)


@pytest.fixture(scope="module")
def client(stack):
    env = stack.env()
    c = AirflowClient(env["PADDLE_CANARY_AIRFLOW_URL"], "admin",
                      env["PADDLE_CANARY_AIRFLOW_PASSWORD"])
    os.environ.update(stack.paths.to_env())
    process.wait_until(c.dag_exists, 120, interval=1, what="model_release parsed")
    c.unpause()
    yield c
    c.close()


@pytest.fixture
def users(stack):
    ref = stack.prepare_registry().card(MODEL, "v1").reference_inputs()
    u = Users(f"{stack.gateway_url}/predict", ref, rate=100)
    yield u
    u.finish()


def events(stack, run_id):
    return driver.journal_events(stack.home, MODEL, run_id)


def wait_for_step(stack, client, run_id, task, timeout=300):
    """Until ``task`` waits in the triggerer, answering any confirmation on the way (a step
    that ended inconclusive asks one) as a person would."""
    run = driver.drive(client, run_id, stack.home, MODEL, timeout,
                       until=lambda states: states.get(task) == "deferred")
    assert client.task_instances(run_id).get(task) == "deferred", (task, run["state"])


def finish(stack, client, run_id, timeout=300):
    run = driver.drive(client, run_id, stack.home, MODEL, timeout=timeout)
    return driver.summary(stack.home, MODEL, run_id, run["state"])


def moved_once(stack, run_id) -> bool:
    weights = [(e.step, e.weight) for e in ev.of_kind(events(stack, run_id), ev.WeightSet)]
    return len(weights) == len(set(weights))


def record(fault, detect_s, safe_s, errors, outcome, note="", *, step_s):
    """One row of bench/faults.py's table; ``step_s``, the step interval, is the baseline: a
    release that only judged at the end of each step would act that late."""
    FIGURES.append({"fault": fault, "detect_s": detect_s, "safe_s": safe_s,
                    "user_errors": errors, "outcome": outcome, "note": note,
                    "step_s": step_s})


def test_candidate_killed_at_25_percent_is_rolled_back_with_no_user_error(stack, client, users):
    run_id = client.trigger({"model": MODEL, "version": "f-kill", "steps": [25, 100],
                             "step_interval_s": 20, **FAST})
    wait_for_step(stack, client, run_id, "step_01.analyze")
    endpoint = stack.runtime().endpoint(MODEL, "f-kill")
    killed = time.time()
    process.stop_pid(endpoint.pid, signal.SIGKILL, 5)
    result = finish(stack, client, run_id)
    summary = users.finish()
    journal = events(stack, run_id)
    first_fail = next(e.ts for e in ev.of_kind(journal, ev.Look)
                      if e.ts >= killed and e.verdict["status"] == "fail")
    cut = next(e.ts for e in ev.of_kind(journal, ev.Cut) if e.ts >= killed)
    assert result["outcome"] == "rolled_back" and "gone" in result["reason"], result
    assert result["steps_reached"] == [25]  # never raised past the kill
    assert cut - killed < 15
    errors = users.failures_between(summary, killed, time.time())
    assert errors == 0, summary.error_samples
    assert Registry(stack.paths.registry_root).status(MODEL, "f-kill") == "rejected"
    assert moved_once(stack, run_id)
    record("candidate SIGKILL at 25 %", first_fail - killed, cut - killed, errors,
           result["outcome"], "users answered by stable (nginx falls back)", step_s=20)


@pytest.mark.parametrize("component", ["scheduler", "triggerer"])
def test_airflow_component_killed_mid_step_and_restarted_the_release_goes_on(
        stack, client, users, component):
    version = "f-sched" if component == "scheduler" else "f-trig"
    run_id = client.trigger({"model": MODEL, "version": version, "steps": [5, 100],
                             "step_interval_s": 10, **FAST})
    wait_for_step(stack, client, run_id, "step_01.analyze")
    pid = process.read_pidfile(stack.airflow.pid_dir / f"{component}.pid")
    killed = time.time()
    process.stop_pid(pid, signal.SIGKILL, 5)
    weight_before = stack.gateway().weight(MODEL)
    stack.airflow.start()  # what an operator (or systemd) does: start what is not running
    restarted = time.time()
    result = finish(stack, client, run_id)
    summary = users.finish()
    assert weight_before == 5  # the data plane kept serving the step meanwhile
    assert result["outcome"] == "promoted", result
    assert result["steps_reached"] == [5, 100]
    assert moved_once(stack, run_id)
    errors = users.failures_between(summary, killed, time.time())
    assert errors == 0, summary.error_samples
    record(f"{component} SIGKILL mid-step (then started again)", None, restarted - killed,
           errors, result["outcome"], "release resumed; no step applied twice", step_s=10)


def test_prometheus_stopped_mid_step_is_inconclusive_then_the_release_resumes(
        stack, client, users):
    run_id = client.trigger({"model": MODEL, "version": "f-prom", "steps": [5, 100],
                             "step_interval_s": 20, **FAST, "max_extensions": 1})
    wait_for_step(stack, client, run_id, "step_01.analyze")
    prom = stack.prometheus()
    stopped = time.time()
    prom.stop()
    process.wait_until(lambda: any(e.ts > stopped + 1 for e in ev.of_kind(events(stack, run_id),
                                                                           ev.Look)),
                       30, interval=0.5, what="a look while Prometheus is down")
    prom.start()
    back = time.time()
    result = finish(stack, client, run_id)
    summary = users.finish()
    during = [e for e in ev.of_kind(events(stack, run_id), ev.Look) if stopped <= e.ts <= back]
    assert during and all(e.verdict["status"] == "inconclusive" for e in during)
    assert any("no data" in e.verdict["reason"] for e in during)
    assert result["outcome"] == "promoted", result
    errors = users.failures_between(summary, stopped, time.time())
    assert errors == 0
    record("Prometheus stopped mid-step", during[0].ts - stopped, None, errors,
           result["outcome"], "looks inconclusive (no data), never pass or fail; resumed",
           step_s=20)


def test_nginx_killed_mid_step_is_detected_and_the_rollback_completes(stack, client, users):
    run_id = client.trigger({"model": MODEL, "version": "f-nginx", "steps": [5, 100],
                             "step_interval_s": 30, **FAST})
    wait_for_step(stack, client, run_id, "step_01.analyze")
    killed = time.time()
    process.stop_pid(stack.gateway().pid(), signal.SIGKILL, 5)
    result = finish(stack, client, run_id)
    journal = events(stack, run_id)
    first_fail = next(e.ts for e in ev.of_kind(journal, ev.Look)
                      if e.ts >= killed and e.verdict["status"] == "fail")
    rolled = ev.first(journal, ev.RolledBack)
    assert result["outcome"] == "rolled_back" and "gateway down" in result["reason"], result
    assert [p.split(":")[0] for p in rolled.incomplete] == ["traffic"]
    assert stack.runtime().endpoint(MODEL, "f-nginx") is None  # candidate stopped anyway
    reg = Registry(stack.paths.registry_root)
    assert reg.pointers(MODEL).candidate is None and reg.status(MODEL, "f-nginx") != "rejected"
    # the journal says rolled back as soon as the rollback task is done; Airflow marks the
    # run failed once the report task after it has run
    state = process.wait_until(
        lambda: (s := client.run(run_id)["state"]) in ("success", "failed") and s, 120,
        interval=1.0, what=f"run {run_id} ended in Airflow")
    assert state == "failed"
    stack.up(airflow=False, load=False)  # the operator's repair: a fresh gateway, stable only
    repaired = time.time()
    assert stack.gateway().live(MODEL).candidate is None
    answer = httpx.post(f"{stack.gateway_url}/predict", headers={"X-User-ID": "someone"},
                        json={"user_id": "someone", "features": [1.0] * 30}, timeout=10)
    # the stable version: v1, or a candidate an earlier fault's release promoted on this stack
    stable = reg.pointers(MODEL).stable
    assert stable != "f-nginx"
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == stable
    summary = users.finish()
    errors = users.failures_between(summary, killed, repaired)
    assert users.failures_between(summary, repaired + 2, time.time()) == 0
    record("nginx SIGKILL mid-step", first_fail - killed, rolled.ts - killed, errors,
           result["outcome"], "users get errors until the gateway is restarted (the outage is "
                              "nginx's); release rolled back, lock freed, candidate released",
           step_s=30)
