"""What a data scientist sees in Airflow during and after a real release (the whole local
stack: Airflow 3.3, nginx, Prometheus, serving processes, synthetic users): the run's note,
one log line per look of the judge and per rollback action, the last line with the outcome and
the report's URL, and the report served by Airflow behind its login via the extra link.

The browser tests (Playwright driving Debian's Chromium, helpers in ``browser.py``) do what a
data scientist does in the Airflow UI on the same stack: sign in, trigger a release from the
DAG's trigger form, answer its approvals under "Required Actions", open the rollout report from
a task's "Rollout report" extra link, read the run's note, and look at the DAG's graph. On a
failure they leave a screenshot, the URL and the HTML under ``var/test-artifacts/browser/``;
the graph's screenshot is always kept there."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote, unquote

import httpx
import pytest

import browser
from test_release_dag import FAST, MODEL, monkeypatch_module, run_release, stack  # noqa: F401

from paddle_canary import process
from paddle_canary.airflow_rest import AirflowClient
from paddle_canary.localstack import driver
from paddle_canary.release import events as ev

pytestmark = pytest.mark.slow
DAG = "model_release"
# The API server runs one worker; the first task start of a run (PATCH /execution/.../run)
# holds it 15-30 s here under load (seen in every stack's api-server.log, with or without the
# plugin), so a 10 s client timeout fails the test on the machine, not on the code.
CLIENT_TIMEOUT_S = 60.0
# The DAG over REST: at most this many tasks, and at most this many edges into ``rollback``
# (each task that can fail has one; the graph draws them folded, one per collapsed group).
DAG_TASKS_MAX = 60
ROLLBACK_EDGES_MAX = 56
# The graph as it opens at 1600x1000 (groups collapsed; the outer groups "checks" and "steps"
# fold 4 and 48 tasks): at most this many nodes, fitted at no less than this zoom, so that the
# labels stay legible (measured 0.49 here; before the outer groups: 23 nodes, 5,177 px wide,
# fitted at 0.19).
GRAPH_NODES_MAX = 10
GRAPH_ZOOM_MIN = 0.4
# The release the browser triggers: what it types into the trigger form. A good candidate,
# an approval before 100 %, short steps and a short teardown delay (FAST, as the REST tests).
UI_RELEASE = {"model": MODEL, "version": "v2", "steps": [50, 100], "approvals_before": [100],
              **{k: FAST[k] for k in ("step_interval_s", "teardown_delay_s", "poll_interval_s",
                                      "max_extensions", "gates")}}
UI_RELEASE_TIMEOUT_S = 300


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


# ---- in the browser -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    pw = browser.sync_playwright().start()
    try:
        chrome = browser.launch(pw)
        yield chrome
        chrome.close()
    finally:
        pw.stop()


@pytest.fixture
def page(chromium):
    p = browser.new_page(chromium)
    yield p
    p.context.close()


def run_url(stack, run_id: str) -> str:  # noqa: F811
    return f"{stack.airflow.url}/dags/{DAG}/runs/{quote(run_id, safe='')}"


def sign_in(page, stack) -> None:  # noqa: F811
    browser.login(page, stack.airflow.url, stack.airflow.username, stack.airflow.password())


def trigger_from_the_form(page, stack, form: dict) -> str:  # noqa: F811
    """Fill the DAG's trigger form as a person does and trigger; the new run's id."""
    expect = browser.expect
    page.goto(f"{stack.airflow.url}/dags/{DAG}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog").filter(
        has=page.get_by_role("heading", name=re.compile(r"^Trigger Dag")))
    expect(dialog).to_be_visible(timeout=browser.TIMEOUT_MS)
    browser.field(dialog, "Model").get_by_role("combobox").fill(form["model"])
    browser.field(dialog, "Candidate version").get_by_role("textbox").fill(form["version"])
    browser.fill_json(page, dialog, "Steps (% of users)", json.dumps(form["steps"]))
    browser.fill_json(page, dialog, "Approve before (% of users)",
                      json.dumps(form["approvals_before"]))
    dialog.get_by_label("Step length (seconds)").fill(str(form["step_interval_s"]))
    dialog.get_by_label("Keep the old version after promotion (seconds)").fill(
        str(form["teardown_delay_s"]))
    dialog.get_by_role("button", name="Advanced", exact=True).click()  # collapsed at first
    dialog.get_by_label("Judge look interval (seconds)").fill(str(form["poll_interval_s"]))
    dialog.get_by_label("Extensions of an inconclusive step (count)").fill(
        str(form["max_extensions"]))
    browser.fill_json(page, dialog, "Gate threshold overrides (JSON)", json.dumps(form["gates"]))
    trigger = dialog.get_by_role("button", name="Trigger", exact=True)
    expect(trigger).to_be_enabled()  # disabled while a field does not parse
    trigger.click()
    # the UI goes to the new run's page
    page.wait_for_url(re.compile(rf"/dags/{DAG}/runs/[^/]+$"))
    expect(page.get_by_text("Dag run has been successfully triggered.").first).to_be_visible()
    return unquote(page.url.rsplit("/runs/", 1)[1])


def approve_in_the_ui(page, stack, run_id: str, item: dict) -> None:  # noqa: F811
    """On the run's page: "Required Actions", read the question, Approve."""
    expect = browser.expect
    task = item["task_instance"]["task_id"]
    page.goto(run_url(stack, run_id))
    page.get_by_role("button", name="Required Actions").click()
    dialog = page.get_by_role("dialog", name="Required Actions")
    expect(dialog.get_by_text(item["subject"], exact=True)).to_be_visible()
    dialog.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_text(f"{task} response successful").first).to_be_visible()


def answer_approvals_in_the_ui(page, stack, client, run_id: str, timeout: float):  # noqa: F811
    """Approve in the UI each approval the run asks for, until the run ends. Returns the
    approvals answered (as the REST API showed them) and the run.

    The REST API only says when to look: Airflow 3.3 can fail an approval answered within
    about a second of being asked (see driver.ANSWER_AFTER_S), so it is answered once it has
    waited that long, as a person would; a retried one is a new question."""
    deadline = time.monotonic() + timeout
    answered: list[dict] = []
    done: set[tuple] = set()
    first_seen: dict[tuple, float] = {}

    def look():
        run = client.run(run_id)
        if run["state"] in ("success", "failed"):
            return "ended", run
        for item in client.pending_approvals(run_id):
            key = (item["task_instance"]["task_id"], item["task_instance"]["try_number"])
            waited = time.monotonic() - first_seen.setdefault(key, time.monotonic())
            if (key not in done and driver.asked_a_while_ago(item)
                    and waited >= driver.ANSWER_AFTER_S):
                return "asked", item
        return None

    while True:
        kind, value = process.wait_until(look, max(1.0, deadline - time.monotonic()),
                                         interval=1, what=f"run {run_id} to ask or end")
        if kind == "ended":
            return answered, value
        approve_in_the_ui(page, stack, run_id, value)
        done.add((value["task_instance"]["task_id"], value["task_instance"]["try_number"]))
        answered.append(value)


def test_a_data_scientist_releases_from_the_airflow_ui(stack, client, page):  # noqa: F811
    expect = browser.expect
    with browser.artefacts_on_failure(page, "release-from-the-ui"):
        sign_in(page, stack)
        run_id = trigger_from_the_form(page, stack, UI_RELEASE)
        conf = client.run(run_id)["conf"]
        assert {k: conf.get(k) for k in UI_RELEASE} == UI_RELEASE, conf

        answered, run = answer_approvals_in_the_ui(page, stack, client, run_id,
                                                   UI_RELEASE_TIMEOUT_S)
        asked = {a["task_instance"]["task_id"]: a["subject"] for a in answered}
        assert asked.get("step_02.approve") == \
            f"Move 100 % of traffic to {MODEL} v2 (stable v1)?", asked
        assert set(asked) <= {"step_01.confirm", "step_02.approve", "step_02.confirm"}, asked
        assert run["state"] == "success", (run["state"], client.task_instances(run_id))
        events = driver.journal_events(stack.home, MODEL, run_id)
        assert [(e.task, e.answer, e.by) for e in ev.of_kind(events, ev.ApprovalAnswered)] == \
            [(a["task_instance"]["task_id"], "Approve", stack.airflow.username)
             for a in answered]
        result = driver.summary(stack.home, MODEL, run_id, run["state"])
        assert (result["outcome"], result["steps_reached"]) == ("promoted", [50, 100]), result

        # the rollout report, from the extra link of the approval just answered
        report_url = f"{stack.airflow.url}/paddle-canary/reports/{DAG}/{quote(run_id, safe='')}"
        page.goto(f"{run_url(stack, run_id)}/tasks/step_02.approve")
        page.get_by_role("link", name="Details", exact=True).click()
        link = page.get_by_role("link", name="Rollout report")
        expect(link).to_have_attribute("href", report_url)
        link.click()
        page.wait_for_url(report_url)
        expect(page.get_by_role("heading", level=1)).to_have_text(
            re.compile(rf"^{MODEL}: v2 vs stable v1\s*promoted$"))
        expect(page.get_by_text("2 of 2", exact=True)).to_be_visible()  # steps reached
        expect(page.get_by_text(re.compile(r"Approve by admin")).first).to_be_visible()
        expect(page.get_by_role("link", name=run_id)).to_have_attribute(
            "href", run_url(stack, run_id))

        # the run's note, in the run's view
        note = client.run(run_id)["note"]
        assert note.startswith(f"{MODEL} v2 vs v1: 50/100 %, 6 s steps · promoted at "), note
        page.goto(run_url(stack, run_id))
        expect(page.get_by_text(note, exact=True)).to_be_visible()


GRAPH_LAYOUT_JS = r"""() => {
  const nodes = [...document.querySelectorAll('.react-flow__node')];
  const box = (n) => { const m = /translate\(([-\d.]+)px, ([-\d.]+)px\)/.exec(n.style.transform);
                       return m ? [+m[1], +m[2], n.offsetWidth, n.offsetHeight] : null; };
  const boxes = nodes.map(box).filter(Boolean);
  const pane = document.querySelector('.react-flow').getBoundingClientRect();
  const zoom = /scale\(([\d.]+)\)/.exec(
    document.querySelector('.react-flow__viewport').style.transform);
  return {nodes: nodes.length, edges: document.querySelectorAll('.react-flow__edge').length,
          width: Math.max(...boxes.map(b => b[0] + b[2])) - Math.min(...boxes.map(b => b[0])),
          height: Math.max(...boxes.map(b => b[1] + b[3])) - Math.min(...boxes.map(b => b[1])),
          pane_width: pane.width, pane_height: pane.height, zoom: zoom ? +zoom[1] : null};
}"""
# True once React Flow's viewport (its fit to the pane) is the same on two looks in a row.
GRAPH_SETTLED_JS = r"""() => {
  const vp = document.querySelector('.react-flow__viewport');
  const t = vp && document.querySelector('.react-flow__node') ? vp.style.transform : null;
  const same = t !== null && t === window.__lastViewport;
  window.__lastViewport = t;
  return same;
}"""


def test_the_dag_graph_at_a_laptop_viewport(stack, client, page, record_property):  # noqa: F811
    expect = browser.expect
    body = client._send("GET", f"/api/v2/dags/{DAG}/tasks").json()
    tasks = body["tasks"]
    assert len(tasks) == body["total_entries"]
    into_rollback = sorted(t["task_id"] for t in tasks if "rollback" in t["downstream_task_ids"])
    assert len(tasks) <= DAG_TASKS_MAX, f"{len(tasks)} tasks"
    assert len(into_rollback) <= ROLLBACK_EDGES_MAX, f"{len(into_rollback)} edges into rollback"

    with browser.artefacts_on_failure(page, "dag-graph"):
        assert page.viewport_size == {"width": 1600, "height": 1000}
        sign_in(page, stack)
        page.goto(f"{stack.airflow.url}/dags/{DAG}")
        page.get_by_role("button", name="Show Graph (Press g)").click()
        for task in ("resolve_plan", "deploy_candidate", "promote", "rollback", "report"):
            expect(page.get_by_test_id(f"rf__node-{task}")).to_be_in_viewport(
                timeout=browser.TIMEOUT_MS)
        page.wait_for_function(GRAPH_SETTLED_JS, polling=500, timeout=browser.TIMEOUT_MS)
        layout = page.evaluate(GRAPH_LAYOUT_JS)
        browser.ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(browser.ARTIFACTS / "model_release-graph.png"))
        (browser.ARTIFACTS / "model_release-graph.json").write_text(json.dumps(
            {**layout, "tasks": len(tasks), "edges_into_rollback": len(into_rollback)},
            indent=1) + "\n")
        record_property("graph_layout", layout)
        assert 5 <= layout["nodes"] <= GRAPH_NODES_MAX and layout["edges"] >= 4, layout
        assert layout["zoom"] >= GRAPH_ZOOM_MIN, layout
