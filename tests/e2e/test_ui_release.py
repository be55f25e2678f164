"""What a data scientist sees in Airflow during and after a real release (the whole local
stack: Airflow 3.3, nginx, Prometheus, serving processes, synthetic users): the run's note,
one log line per look of the judge and per rollback action, the last line with the outcome and
the report's URL, and the report served by Airflow behind its login via the extra link."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from test_release_dag import FAST, MODEL, monkeypatch_module, run_release, stack  # noqa: F401

from paddle_canary import process
from paddle_canary.airflow_rest import AirflowClient

pytestmark = pytest.mark.slow
DAG = "model_release"
# The API server runs one worker; the first task start of a run (PATCH /execution/.../run)
# holds it 15-30 s here under load (seen in every stack's api-server.log, with or without the
# plugin), so a 10 s client timeout fails the test on the machine, not on the code.
CLIENT_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def client(stack, monkeypatch_module):  # noqa: F811
    for key, value in stack.env().items():
        monkeypatch_module.setenv(key, value)
    c = AirflowClient.from_env(timeout=CLIENT_TIMEOUT_S)
    process.wait_until(c.dag_exists, 120, interval=1, what="model_release parsed")
    c.unpause()
    yield c
    c.close()


def task_log_lines(stack, run_id: str, task: str) -> list[str]:
    out = []
    root = stack.airflow.home / "logs" / f"dag_id={DAG}" / f"run_id={run_id}" / f"task_id={task}"
    for path in sorted(root.glob("*")):
        out += [str(json.loads(line).get("event", "")) for line in path.read_text().splitlines()
                if line.startswith("{")]
    return out


def test_a_rolled_back_release_as_the_ui_shows_it(stack, client):  # noqa: F811
    run_id, result = run_release(stack, client, {"model": MODEL, "version": "bad-slow",
                                                 "steps": [5, 100], **FAST, "step_interval_s": 60})
    assert result["outcome"] == "rolled_back", result
    url = (f"{stack.airflow.url}/paddle-canary/reports/{DAG}/{quote(run_id, safe='')}")

    # the driver returns once the journal says rolled back; the rollback task then writes the
    # report, its last log line and the note
    process.wait_until(lambda: client.task_instances(run_id).get("rollback") == "success", 120,
                       interval=1, what="the rollback task to finish")
    note = client.run(run_id)["note"]
    assert note.startswith(f"{MODEL} bad-slow vs v1: 5/100 %, 1 min steps · rolled back at 5 %: "
                           "latency_p95 fail"), note

    looks = [line for line in task_log_lines(stack, run_id, "step_01.analyze")
             if line.startswith("look ")]
    assert looks and " · step 1 at 5 % · rows stable " in looks[0]
    assert looks[-1].endswith("→ fail") or "→ fail: latency_p95" in looks[-1]
    assert all(len(line) < 1000 for line in task_log_lines(stack, run_id, "step_01.analyze"))

    # Airflow has no "inconclusive" or "gate failed" colour of its own: the task's note says
    ti = client._send("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}"
                             "/taskInstances/step_01.analyze").json()
    assert (ti["note"] or "").startswith("analysis ended fail: latency_p95 fail"), ti["note"]

    lines = task_log_lines(stack, run_id, "rollback")
    assert f"rollback traffic: every user of {MODEL} on stable v1, candidate weight 0" in lines
    assert "rollback candidate: bad-slow stopped" in lines
    last = [line for line in lines if line.startswith("outcome: ")]
    assert last and last[-1].startswith("outcome: rolled_back; reason: latency_p95 fail")
    assert last[-1].endswith(f"; report: {url}")

    links = client._send("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}"
                                "/taskInstances/rollback/links").json()["extra_links"]
    assert links == {"Rollout report": url}
    assert httpx.get(url, timeout=10).status_code == 401
    token = client._auth()["Authorization"]
    page = httpx.get(url, headers={"Authorization": token}, timeout=60)
    assert page.status_code == 200
    assert "class='badge rolled_back'" in page.text
    assert f"href='{stack.airflow.url}/dags/{DAG}/runs/{quote(run_id, safe='')}'" in page.text
