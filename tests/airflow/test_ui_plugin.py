"""The paddle-canary plugin in a real Airflow 3.3 (api-server, scheduler, dag-processor,
triggerer; SQLite): the live rollout report behind Airflow's own login, and the "Rollout report"
extra link on the tasks a person looks at. Real HTTP throughout; no serving stack is needed:
the report is rendered from a journal recorded by an earlier real release."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from paddle_canary import process
from paddle_canary.airflow_rest import AirflowClient, AirflowError
from paddle_canary.localstack.airflow_server import AirflowServer
from paddle_canary.release.journal import journal_path
from paddle_canary.settings import REPO, Settings

pytestmark = pytest.mark.slow
SAMPLES = REPO / "tests" / "release" / "journal_samples"
DAG = "model_release"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    registry = root / "registry"
    shutil.copytree(REPO / "model_registry", registry)
    settings = Settings(home=root / "stack", registry_root=registry,
                        prometheus_url=f"http://127.0.0.1:{process.free_port()}")
    server = AirflowServer(home=root / "stack" / "airflow", port=process.free_port(),
                           extra_env=settings.to_env())
    try:
        server.start(timeout=240)
        yield server, settings
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(airflow):
    server, _ = airflow
    c = AirflowClient(server.url, server.username, server.password())
    yield c
    c.close()


def token(server) -> str:
    r = httpx.post(f"{server.url}/auth/token", timeout=10,
                   json={"username": server.username, "password": server.password()})
    r.raise_for_status()
    return r.json()["access_token"]


def journal_of(settings: Settings, sample: str, run_id: str, drop_from: str | None = None) -> Path:
    """A real journal written again as run ``run_id``'s (cut before ``drop_from``: unfinished)."""
    records = [json.loads(line) for line in (SAMPLES / sample).read_text().splitlines()]
    if drop_from:
        records = records[:next(i for i, r in enumerate(records) if r["event"] == drop_from)]
    for r in records:
        if r["event"] == "plan":
            r["plan"]["run_id"] = run_id
    path = journal_path(settings.home, records[0]["plan"]["model"], run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def report_url(server, run_id: str, dag_id: str = DAG) -> str:
    return f"{server.url}/paddle-canary/reports/{dag_id}/{quote(run_id, safe='')}"


def test_the_report_needs_an_airflow_login(airflow):
    server, settings = airflow
    run_id = "manual__2026-12-01T03:00:00+00:00"
    journal_of(settings, "v0.1-promoted.jsonl", run_id)
    url = report_url(server, run_id)
    assert httpx.get(url, timeout=10).status_code == 401
    forged = httpx.get(url, timeout=10, headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code == 403
    assert httpx.get(url, timeout=10, cookies={"_token": "not-a-jwt"}).status_code == 403
    # the UI's session cookie is a login, like the bearer token the REST API takes
    assert httpx.get(url, timeout=10, cookies={"_token": token(server)}).status_code == 200


def test_a_run_s_report_is_rendered_from_its_journal_and_links_back_to_the_run(airflow):
    server, settings = airflow
    auth = {"Authorization": f"Bearer {token(server)}"}
    done, running = "manual__2026-12-01T03:10:00+00:00", "release__risk-score__v2__0000live"
    journal_of(settings, "v0.1-rolled-back.jsonl", done)
    r = httpx.get(report_url(server, done), headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "class='badge rolled_back'" in r.text and "http-equiv='refresh'" not in r.text
    assert f"href='{server.url}/dags/{DAG}/runs/{quote(done, safe='')}'" in r.text

    # a release still running: its page says so and reloads itself; what the journal gains
    # shows on the next request
    path = journal_of(settings, "v0.1-promoted.jsonl", running, drop_from="promoted")
    r = httpx.get(report_url(server, running), headers=auth, timeout=30)
    assert r.status_code == 200 and "class='badge unfinished'" in r.text
    assert "http-equiv='refresh'" in r.text
    promoted = next(json.loads(line) for line in (SAMPLES / "v0.1-promoted.jsonl").read_text()
                    .splitlines() if json.loads(line)["event"] == "promoted")
    with path.open("a") as f:
        f.write(json.dumps(promoted) + "\n")
    r = httpx.get(report_url(server, running), headers=auth, timeout=30)
    assert r.status_code == 200 and "class='badge promoted'" in r.text
    assert "http-equiv='refresh'" not in r.text


def test_no_report_is_a_404_that_says_why(airflow):
    server, settings = airflow
    auth = {"Authorization": f"Bearer {token(server)}"}
    r = httpx.get(report_url(server, "manual__1999-01-01T00:00:00+00:00"), headers=auth, timeout=10)
    assert r.status_code == 404 and "no release journal" in r.json()["detail"]
    run_id = "manual__2026-12-01T03:20:00+00:00"
    journal_of(settings, "v0.1-promoted.jsonl", run_id)
    r = httpx.get(report_url(server, run_id, dag_id="other_dag"), headers=auth, timeout=10)
    assert r.status_code == 404
    # a journal whose file name matches but whose plan names another run is not this run's
    other = "manual__2026-12-01T03:20:00_00:00"  # the same file name once made safe
    r = httpx.get(report_url(server, other), headers=auth, timeout=10)
    assert r.status_code == 404


def test_extra_link_and_last_log_line_of_a_refused_run(airflow, client):
    server, settings = airflow
    process.wait_until(client.dag_exists, 180, interval=1, what="model_release parsed")
    client.unpause()
    # the form's schema: the same weight twice is refused before a run exists
    with pytest.raises(AirflowError, match="400"):
        client.trigger({"model": "risk-score", "version": "v2", "steps": [5, 5, 100]})
    run_id = client.trigger({"model": "no-such-model", "version": "v2"})
    process.wait_until(lambda: client.task_instances(run_id).get("report") == "success", 240,
                       interval=1, what="the report task of a refused run")
    expected = report_url(server, run_id)
    for task in ("report", "rollback", "step_01.analyze", "step_01.approve", "step_01.confirm"):
        r = client._send("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}"
                                f"/taskInstances/{task}/links")
        assert r.json()["extra_links"] == {"Rollout report": expected}, task
    for task in ("resolve_plan", "deploy_candidate", "step_01.set_weight"):
        r = client._send("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}"
                                f"/taskInstances/{task}/links")
        assert "Rollout report" not in r.json()["extra_links"], task
    # the run's note says what happened (set by the tasks over the REST API)
    note = client.run(run_id)["note"]
    assert note and note.startswith("no-such-model v2: refused: unknown model"), \
        task_log_lines(server, run_id, "resolve_plan")
    assert any(line.startswith("outcome: refused") for line in
               task_log_lines(server, run_id, "report"))


def task_log_lines(server, run_id: str, task: str) -> list[str]:
    """The messages of a task's log files (every attempt, the trigger's too)."""
    out = []
    for path in sorted((server.home / "logs").glob(f"dag_id={DAG}/run_id={run_id}/task_id={task}/*")):
        out += [str(json.loads(line).get("event", "")) for line in path.read_text().splitlines()
                if line.startswith("{")]
    return out


def test_the_plugin_loads_once_and_the_ui_shows_no_plugin_error(client):
    """Airflow lists plugin import errors on its home page; a second copy of the package's
    metadata on sys.path (pip's editable egg-info in plugins/, removed by `make venv`) made it
    load the entry point twice and show "Plugin 'paddle_canary' already registered"."""
    errors = client._send("GET", "/api/v2/plugins/importErrors").json()
    assert errors["total_entries"] == 0, errors
    plugins = client._send("GET", "/api/v2/plugins").json()["plugins"]
    assert [p["name"] for p in plugins].count("paddle_canary") == 1, plugins
