"""The compose stack brought up for real on the session's dockerd: every service healthy, the
API server answering, Airflow's metadata in PostgreSQL, the gateway serving /predict from the
stable container, Prometheus scraping it; ``down`` leaves nothing behind.

Images: the serving base and v1's serving image are the session's (shared with the containers
tests); the Airflow and service images are built once per engine (skipped when unchanged).
Skipped only when no dockerd can start here (no root, no docker.io), with the reason.
"""

from __future__ import annotations

import shutil
import time
import uuid

import httpx
import pytest

from paddle_canary.process import free_port, wait_until

pytestmark = pytest.mark.slow
MODEL = "risk-score"
UP_TIMEOUT_S = 540


@pytest.fixture(scope="module")
def engine(request):
    from paddle_canary.localstack.dockerd import DockerdError

    try:
        return request.getfixturevalue("dockerd")
    except DockerdError as exc:
        pytest.skip(f"no dockerd can start here: {exc}")


@pytest.fixture(scope="module")
def stack(engine, docker_client, serving_image, registry_root, tmp_path_factory):
    from paddle_canary.compose.env import write_env
    from paddle_canary.compose.images import ensure_images
    from paddle_canary.compose.stack import ComposeStack

    started = time.monotonic()
    built = ensure_images(docker_client, stable=None, log=print)
    stable = serving_image("v1", registry_root)
    build_s = time.monotonic() - started
    home = tmp_path_factory.mktemp("compose")
    registry = home / "model_registry"
    shutil.copytree(registry_root, registry)
    for path in [registry, *registry.rglob("*")]:  # the containers' uid 50000 writes pointers
        path.chmod(0o777 if path.is_dir() else 0o666)
    env_file = home / ".env"
    project = f"pct{uuid.uuid4().hex[:8]}"
    ports = {"AIRFLOW_PORT": free_port(), "GATEWAY_PORT": free_port(),
             "PROMETHEUS_PORT": free_port()}
    values = write_env(env_file, engine.url)
    compose = ComposeStack(project=project, env_file=env_file, docker_url=engine.url,
                           overrides={**{k: str(v) for k, v in ports.items()},
                                      "COMPOSE_NETWORK": f"{project}-net",
                                      "STABLE_IMAGE": stable.tag,
                                      "PADDLE_CANARY_REGISTRY_DIR": str(registry)})
    try:
        up_started = time.monotonic()
        ready = compose.up(timeout=UP_TIMEOUT_S, log=print)
        print(f"images {build_s:.0f}s ({ {k: b.build_s for k, b in built.items()} }), "
              f"up {time.monotonic() - up_started:.0f}s: {ready}")
        yield compose, ports, values
    finally:
        compose.down()


def test_api_server_answers_with_postgres_behind_it(stack, docker_client):
    compose, ports, values = stack
    base = f"http://127.0.0.1:{ports['AIRFLOW_PORT']}"
    health = httpx.get(f"{base}/api/v2/monitor/health", timeout=10).json()
    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[part]["status"] == "healthy", health
    # The admin from .env logs in; the DAG the dag-processor parsed is listed.
    token = httpx.post(f"{base}/auth/token", timeout=10,
                       json={"username": "admin", "password": values["AIRFLOW_ADMIN_PASSWORD"]})
    assert token.status_code in (200, 201), token.text
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    wrong = httpx.post(f"{base}/auth/token", timeout=10,
                       json={"username": "admin", "password": "not-the-password"})
    assert wrong.status_code in (401, 403)

    def listed():
        r = httpx.get(f"{base}/api/v2/dags/model_release", headers=auth, timeout=10)
        return r.status_code == 200 and r.json()["dag_id"] == "model_release"
    wait_until(listed, 120, interval=2, what="model_release parsed into the metadata database")
    # ... and that database is PostgreSQL: Airflow's tables and the DAG are in it.
    postgres = compose.containers(docker_client)["postgres"]
    code, out = postgres.exec_run(
        ["/usr/lib/postgresql/15/bin/psql", "-h", "/run/postgresql", "-U", "airflow", "-d",
         "airflow", "-tAc", "select dag_id from dag where dag_id = 'model_release'"],
        user="postgres")
    assert code == 0 and out.decode().strip() == "model_release", out
    # Airflow's own view of its connection string.
    scheduler = compose.containers(docker_client)["airflow-scheduler"]
    env = dict(e.split("=", 1) for e in scheduler.attrs["Config"]["Env"])
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")


def test_gateway_serves_predict_from_the_stable_container(stack):
    compose, ports, _ = stack
    url = f"http://127.0.0.1:{ports['GATEWAY_PORT']}/predict"
    for user in ("u1", "u2", ""):  # "": no X-User-ID header (the gateway sends it to stable)
        answer = httpx.post(url, json={"user_id": user or "anonymous", "features": [0.0] * 30},
                            headers={"X-User-ID": user} if user else {}, timeout=15)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Model-Version"] == "v1"
        assert answer.json()["model_version"] == "v1"
        assert 0.0 <= answer.json()["score"] <= 1.0
    # A caller's mistake is a 4xx through the gateway too.
    bad = httpx.post(url, json={"user_id": "u1", "features": [0.0] * 3}, timeout=15)
    assert 400 <= bad.status_code < 500


def test_prometheus_scrapes_stable_by_name(stack):
    compose, ports, _ = stack
    query = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}/api/v1/query"

    def up() -> bool:
        result = httpx.get(query, params={"query": f'up{{model="{MODEL}",version="v1"}}'},
                           timeout=5).json()["data"]["result"]
        return bool(result) and result[0]["value"][1] == "1"
    wait_until(up, 60, interval=2, what="Prometheus to scrape stable (up == 1)")


GATEWAY_SCRIPT = """
import json, docker
from paddle_canary.compose.gateway import ComposeGateway
from paddle_canary.traffic.base import Backend, RouterError
gw = ComposeGateway('/srv/paddle-canary/gateway', docker.from_env())
before = gw.live_status()
route = gw.route('risk-score')
gw.apply(route.replace(weight=0, mirror=0))
gw._install(gw.state().replace(generation=gw.state().generation + 1))  # a forced reload
after = gw.live_status()
try:
    gw.apply(route.replace(candidate=Backend('v9', 'http://no-such-host:8080'), weight=10))
    refused = None
except RouterError as exc:
    refused = str(exc)
print(json.dumps({"before": before, "after": after, "refused": refused,
                  "last": gw.live_status(), "state": gw.state().generation}))
"""


def test_gateway_change_is_checked_then_reloaded_in_its_container(stack, docker_client):
    """What a release task does from the scheduler: render on the shared volume, `nginx -t` and
    `nginx -s reload` in the gateway container through the Docker API (the mounted socket)."""
    import json

    compose, ports, _ = stack
    scheduler = compose.containers(docker_client)["airflow-scheduler"]
    code, out = scheduler.exec_run(["python", "-c", GATEWAY_SCRIPT])
    assert code == 0, out.decode()
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert seen["after"]["generation"] == seen["before"]["generation"] + 1
    live = seen["after"]["routes"]["risk-score"]
    assert live["weight"] == 0 and live["stable"]["url"] == "http://stable:8080"
    # A config nginx refuses (a backend name that does not resolve) is never loaded.
    assert seen["refused"] and "nginx refused" in seen["refused"]
    assert seen["last"] == seen["after"] and seen["state"] == seen["after"]["generation"]
    answer = httpx.post(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/predict",
                        json={"user_id": "u1", "features": [0.0] * 30},
                        headers={"X-User-ID": "u1"}, timeout=15)
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "v1"


def _restart_database(compose, docker_client, ports, while_down=lambda: None) -> None:
    """PostgreSQL stopped until the API server says so (``while_down()`` then), then started
    until Airflow is healthy."""
    health_url = f"http://127.0.0.1:{ports['AIRFLOW_PORT']}/api/v2/monitor/health"
    postgres = compose.containers(docker_client)["postgres"]
    postgres.stop(timeout=20)

    def db_down() -> bool:
        # With the database's address gone, the health endpoint may hang on its connect
        # instead of answering "unhealthy": no answer in 10 s counts as down too.
        try:
            r = httpx.get(health_url, timeout=10)
        except httpx.TimeoutException:
            return True
        return r.status_code != 200 or r.json()["metadatabase"]["status"] != "healthy"
    wait_until(db_down, 60, interval=1, what="the API server to report the database down")
    while_down()
    postgres.start()

    def all_healthy() -> bool:
        try:
            body = httpx.get(health_url, timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(body[p]["status"] == "healthy"
                   for p in ("metadatabase", "scheduler", "triggerer", "dag_processor"))
    wait_until(all_healthy, 300, interval=3, what="Airflow healthy again after the restart")


def test_stack_comes_back_after_the_database_restarts(stack, docker_client):
    """PostgreSQL stopped and started again: predictions never depend on it, and Airflow is
    healthy again (components that lost their database restart: restart unless-stopped)."""
    compose, ports, _ = stack
    predict = f"http://127.0.0.1:{ports['GATEWAY_PORT']}/predict"

    def still_predicting() -> None:
        answer = httpx.post(predict, json={"user_id": "u9", "features": [0.0] * 30},
                            headers={"X-User-ID": "u9"}, timeout=15)
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "v1"
    _restart_database(compose, docker_client, ports, while_down=still_predicting)
    compose.wait_healthy(240, log=print)


JOURNAL_SCRIPT = """
import sys
from paddle_canary.release import events as ev
from paddle_canary.release.journal import Journal
from paddle_canary.settings import Settings
for e in Journal.of_run(Settings.from_env().home, sys.argv[1], sys.argv[2]).read():
    print(e.kind, getattr(e, "reason", "") or getattr(e, "task", ""))
"""


def test_a_release_runs_end_to_end_on_the_stack(stack, docker_client, serving_image,
                                                registry_root, tmp_path):
    """model_release triggered over the REST API runs on the stack's own parts: build_image
    finds v2's image (built on the host: the Airflow image has no checkout to build from),
    validation runs in v2's image, v2 starts as a container on the compose network scoring with
    v1 too, the nginx container moves the weight, Prometheus is asked; approvals are answered
    over REST. PostgreSQL is stopped and started again while the first step's analysis waits
    in the triggerer; the release goes on, v2 is promoted and v1 (the stack's `stable`
    container) removed after the teardown delay. No synthetic users: every look is
    inconclusive (no data) and confirmed, so a container's cold latency cannot decide it."""
    from paddle_canary.airflow_rest import AirflowClient
    from paddle_canary.localstack import driver
    from paddle_canary.registry import Registry

    compose, ports, values = stack
    serving_image("v2", registry_root)
    client = AirflowClient(f"http://127.0.0.1:{ports['AIRFLOW_PORT']}", "admin",
                           values["AIRFLOW_ADMIN_PASSWORD"], timeout=30)
    try:
        wait_until(client.dag_exists, 120, interval=2, what="model_release parsed")
        client.unpause()
        run_id = client.trigger({"model": MODEL, "version": "v2", "steps": [50, 100],
                                 "step_interval_s": 20, "poll_interval_s": 2,
                                 "approvals_before": [], "teardown_delay_s": 5,
                                 "max_extensions": 0})
        driver.drive(client, run_id, tmp_path, MODEL, timeout=600, log=print,
                     until=lambda s: s.get("step_01.analyze") == "deferred")
        _restart_database(compose, docker_client, ports)
        run = driver.drive(client, run_id, tmp_path, MODEL, timeout=600, log=print)
        states = client.task_instances(run_id)
    finally:
        client.close()
    if run["state"] != "success":   # the journal's failure, from the scheduler's volume
        scheduler = compose.containers(docker_client)["airflow-scheduler"]
        code, out = scheduler.exec_run(["python", "-c", JOURNAL_SCRIPT, MODEL, run_id])
        pytest.fail(f"run {run['state']}: {states}\n{out.decode()}")
    assert states["build_image"] == "success" and states["promote"] == "success"
    assert Registry(compose.overrides["PADDLE_CANARY_REGISTRY_DIR"]).pointers(MODEL).stable \
        == "v2"
    answer = httpx.post(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/predict",
                        json={"user_id": "u1", "features": [0.0] * 30},
                        headers={"X-User-ID": "u1"}, timeout=15)
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "v2"
    network = compose.overrides["COMPOSE_NETWORK"]

    def serving(version: str) -> list:
        return docker_client.containers.list(all=True, filters={
            "network": network, "label": ["io.paddle-canary.role=serving",
                                          f"io.paddle-canary.model={MODEL}",
                                          f"io.paddle-canary.version={version}"]})
    assert serving("v1") == [] and [c.status for c in serving("v2")] == ["running"]


def test_down_leaves_no_container_network_or_volume(engine, docker_client, registry_root,
                                                    tmp_path, stack):
    """Last in the module: takes the stack down itself (the fixture's down is then a no-op)."""
    compose, _, _ = stack
    label = f"com.docker.compose.project={compose.project}"
    # A container a release started on the stack's network (what DockerRuntime does).
    network = compose.overrides["COMPOSE_NETWORK"]
    stable_image = compose.overrides["STABLE_IMAGE"]
    docker_client.containers.run(stable_image, detach=True, network=network,
                                 name=f"pc-{compose.project}-extra",
                                 labels={"io.paddle-canary.namespace": compose.project})
    compose.down()
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert docker_client.containers.list(
        all=True, filters={"label": f"io.paddle-canary.namespace={compose.project}"}) == []
    assert docker_client.networks.list(names=[network]) == []
    assert docker_client.volumes.list(filters={"label": label}) == []
