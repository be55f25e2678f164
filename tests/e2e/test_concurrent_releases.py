"""Two models released at the same time in a real Airflow 3.3 (api-server, scheduler,
dag-processor, triggerer; SQLite, LocalExecutor), through one real nginx gateway, real serving
processes and real Prometheus, with synthetic users of both models; steps compressed to seconds.

risk-score v2 is promoted while digit-seven's broken bad-shift is rolled back; each run holds
its own model's lock, a second release of risk-score is refused, and what each model's users get
is read from nginx's own answers (``X-Model-Version``) and its access log."""

from __future__ import annotations

import json
import threading
from collections import defaultdict

import httpx
import pytest

from paddle_canary import process
from paddle_canary.airflow_rest import AirflowClient
from paddle_canary.localstack import driver
from paddle_canary.localstack.stack import LocalStack, StackPorts
from paddle_canary.registry import Registry
from paddle_canary.release import events as ev
from paddle_canary.release import lock

pytestmark = pytest.mark.slow
A, B = "risk-score", "digit-seven"
FEATURES = {A: 30, B: 64}
FAST = {"step_interval_s": 6, "poll_interval_s": 1, "teardown_delay_s": 2, "max_extensions": 0,
        "approvals_before": [], "gates": {"min_samples": 40}}
PROBE_USERS = [f"probe-{i:03d}" for i in range(30)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, broken_registry_root):
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    s = LocalStack(tmp_path_factory.mktemp("e2e-many") / "stack", model=A, ports=ports,
                   load_rate=80, load_rates={B: 40})
    s.prepare_registry().register(B, "bad-shift", broken_registry_root / B / "bad-shift")
    mp = pytest.MonkeyPatch()
    try:
        s.up()
        for key, value in s.env().items():
            mp.setenv(key, value)
        yield s
    finally:
        mp.undo()
        s.down()


@pytest.fixture(scope="module")
def client(stack):
    c = AirflowClient.from_env(timeout=30)  # 2 shared cores: the api-server can be slow
    process.wait_until(c.dag_exists, 120, interval=1, what="model_release parsed")
    c.unpause()
    yield c
    c.close()


class Probe:
    """Asks the gateway every ~0.2 s, for fixed users of both models, which version answers
    (the answer's X-Model-Version), in a thread, until stopped."""

    def __init__(self, gateway_url: str) -> None:
        self.url = gateway_url
        self.seen: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="probe")
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self.stop.wait(0.2):
                for model in (A, B):
                    for user in PROBE_USERS[::3] if model == A else PROBE_USERS:
                        self._ask(http, model, user)

    def _ask(self, http: httpx.Client, model: str, user: str) -> None:
        def post():
            return http.post(f"{self.url}/models/{model}/predict", headers={"X-User-ID": user},
                             json={"user_id": user, "features": [1.0] * FEATURES[model]})
        try:
            try:
                r = post()
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # An idle keep-alive connection closed by a reload's old worker as the request
                # went out (the request never reached a model): ask again on a new connection,
                # as the loadgen and urllib3-style clients do. A second failure counts.
                r = post()
        except httpx.HTTPError as exc:
            self.failures.append(f"{model} {user}: {type(exc).__name__}: {exc}")
            return
        if r.status_code != 200:
            self.failures.append(f"{model} {user}: HTTP {r.status_code}")
            return
        self.seen[(model, user)].append(r.headers["X-Model-Version"])

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(30)


def drive_in_thread(stack, run_id: str, model: str, results: dict) -> threading.Thread:
    def follow() -> None:
        c = AirflowClient.from_env(timeout=30)  # one client per thread
        try:
            run = driver.drive(c, run_id, stack.home, model, timeout=600)
            results[model] = driver.summary(stack.home, model, run_id, run["state"])
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results[model] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            c.close()

    t = threading.Thread(target=follow, daemon=True, name=f"drive-{model}")
    t.start()
    return t


def held(events: list[ev.Event]) -> tuple[float, float]:
    """When a run held its model's lock: from its recorded plan to its recorded end."""
    return ev.first(events, ev.PlanRecorded).ts, ev.first(events, ev.Finished).ts


def test_two_models_released_at_once_each_untouched_by_the_other(stack, client):
    root = stack.paths.registry_root
    probe = Probe(stack.gateway_url)
    results: dict[str, dict] = {}
    try:
        run_a = client.trigger({"model": A, "version": "v2", "steps": [5, 100], **FAST})
        threads = [drive_in_thread(stack, run_a, A, results)]
        process.wait_until(lambda: client.task_instances(run_a).get("step_01.analyze")
                           == "deferred", 180, interval=1, what="risk-score's 5 % step")
        run_b = client.trigger({"model": B, "version": "bad-shift", **FAST})
        threads.append(drive_in_thread(stack, run_b, B, results))
        # a second release of risk-score while its first runs: refused by the model's lock
        run_again = client.trigger({"model": A, "version": "v2", **FAST})
        process.wait_until(lambda: client.task_instances(run_again).get("resolve_plan")
                           == "failed", 120, interval=1, what="the second release refused")
        assert lock.holder(root, A)["run_id"] == run_a
        assert driver.journal_events(stack.home, A, run_again) == []
        refused_log = process.wait_until(lambda: _task_log(stack, run_again, "resolve_plan"),
                                         30, what="resolve_plan's log")
        assert "a release of risk-score is still running" in refused_log
        for t in threads:
            t.join(660)
    finally:
        probe.finish()

    a, b = results[A], results[B]
    assert a.get("outcome") == "promoted", a
    assert a["steps_reached"] == [5, 100]
    assert b.get("outcome") == "rolled_back", b
    assert b["steps_reached"] == [] and "validation" in b["reason"]
    reg = Registry(root)
    assert reg.pointers(A).stable == "v2" and reg.pointers(B).stable == "v1"
    assert reg.status(B, "bad-shift") == "rejected"

    # each run held its own model's lock, at the same time; both are free now
    a_from, a_to = held(driver.journal_events(stack.home, A, run_a))
    b_from, b_to = held(driver.journal_events(stack.home, B, run_b))
    assert a_from < b_from < a_to and b_from < b_to
    assert lock.holder(root, A) is None and lock.holder(root, B) is None

    # digit-seven's users saw no change while risk-score's weight moved 0 -> 5 -> 100
    assert probe.failures == []
    assert {v for (m, _), seen in probe.seen.items() if m == B for v in seen} == {"v1"}
    # risk-score's users: sticky as the weight grew (never back to v1 once on v2), all on v2
    for (model, user), seen in probe.seen.items():
        if model == A:
            first_v2 = seen.index("v2")
            assert set(seen[first_v2:]) == {"v2"}, (user, seen)
    assert any(seen[0] == "v1" for (m, _), seen in probe.seen.items() if m == A)
    # nginx's own log: no digit-seven request was ever routed to a candidate
    counts = stack.gateway().route_counts(B)
    assert counts["stable"] > 0 and counts["candidate"] == counts["header"] == 0

    # the synthetic users of both models: every answer 2xx, digit-seven's all from v1
    stack.stop_load()
    load = json.loads((stack.home / "loadgen.json").read_text())
    assert load[B]["failures"] == 0 and load[B]["by_version"] == {"v1": load[B]["ok"]}, load[B]
    assert load[A]["failures"] == 0 and set(load[A]["by_version"]) == {"v1", "v2"}, load[A]


def _task_log(stack, run_id: str, task_id: str) -> str | None:
    logs = sorted((stack.home / "airflow" / "logs").glob(
        f"**/run_id={run_id}/task_id={task_id}/*.log"))
    return logs[-1].read_text() if logs else None
