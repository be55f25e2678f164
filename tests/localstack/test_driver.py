"""The run follower of the demo and the end-to-end tests, against a scripted REST client."""

from __future__ import annotations

import httpx
import pytest

from paddle_canary.airflow_rest import AirflowError, AirflowUnreachable
from paddle_canary.localstack import driver


class ScriptedClient:
    """Answers task_instances with ``failures`` first (exceptions raised in turn), then a run
    that has succeeded."""

    def __init__(self, failures):
        self.failures = list(failures)
        self.looks = 0

    def task_instances(self, run_id):
        self.looks += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"promote": "success"}

    def pending_approvals(self, run_id):
        return []

    def run(self, run_id):
        return {"state": "success"}


def unreachable(exc_type=httpx.ReadTimeout):
    try:
        raise exc_type("timed out")
    except httpx.HTTPError as exc:
        try:
            raise AirflowUnreachable(f"Airflow at x is not reachable: {exc}") from exc
        except AirflowUnreachable as wrapped:
            return wrapped


def test_an_api_server_that_does_not_answer_in_time_is_asked_again(tmp_path):
    client = ScriptedClient([unreachable(), unreachable(httpx.ConnectError)])
    said = []
    run = driver.drive(client, "run-1", tmp_path, "risk-score", timeout=30, log=said.append)
    assert run["state"] == "success" and client.looks == 3
    assert sum("asking again" in line for line in said) == 2


def test_an_error_answer_from_the_api_is_not_retried(tmp_path):
    client = ScriptedClient([AirflowError("Airflow GET /x -> 404: no such run")])
    with pytest.raises(AirflowError, match="404"):
        driver.drive(client, "run-1", tmp_path, "risk-score", timeout=30)
    assert client.looks == 1


class ApprovalClient(ScriptedClient):
    """One approval asked, answered, then asked again by a retry of its task (Airflow 3.3's
    resume race); the run succeeds once both are answered."""

    def __init__(self):
        super().__init__([])
        self.asked = [self.item(1, "2026-01-01T00:00:00Z"), self.item(2, "2026-01-01T00:00:09Z")]
        self.answers = []

    @staticmethod
    def item(try_number, created_at):
        return {"task_instance": {"task_id": "step_01.confirm", "try_number": try_number},
                "created_at": created_at, "subject": "confirm"}

    def pending_approvals(self, run_id):
        return self.asked[:1]

    def required_actions_url(self, run_id, task):
        return "http://ui"

    def answer(self, run_id, task, choice):
        self.answers.append((task, choice))
        self.asked.pop(0)

    def run(self, run_id):
        return {"state": "running" if self.asked else "success"}


def test_an_approval_asked_again_by_a_retried_task_is_answered_again(tmp_path):
    client = ApprovalClient()
    driver.drive(client, "run-1", tmp_path, "risk-score", timeout=30)
    assert client.answers == [("step_01.confirm", "Approve")] * 2


def test_the_demo_table_shows_the_shadow_phase_confirmations_and_the_cut():
    from paddle_canary.localstack.driver import summary_table

    lines = summary_table([
        {"model": "risk-score", "candidate": "v2", "outcome": "promoted", "shadow_phase": True,
         "steps_reached": [5, 100], "confirmations": 0, "report": "/r/a.html"},
        {"model": "risk-score", "candidate": "bad-slow", "outcome": "rolled_back",
         "shadow_phase": True, "steps_reached": [], "confirmations": 0,
         "failing_look_to_weight0_s": 0.42, "reason": "latency_p95 fail: P95 47.7 ms"}])
    assert lines[0].split() == ["model", "candidate", "outcome", "steps", "reached",
                                "confirms", "fail->cut", "reason"]
    assert lines[1].split()[:5] == ["risk-score", "v2", "promoted", "shadow,5,100", "0"]
    assert lines[2].split()[3:7] == ["shadow", "0", "0.4", "s"]
    assert lines[2].endswith("latency_p95 fail: P95 47.7 ms")
    assert lines[3:] == ["report: /r/a.html", "report: None"]
