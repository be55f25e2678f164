"""The run follower of the demo and the end-to-end tests, against a scripted REST client."""

from __future__ import annotations

import httpx
import pytest

from paddle_canary.airflow_rest import AirflowError
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
            raise AirflowError(f"Airflow at x is not reachable: {exc}") from exc
        except AirflowError as wrapped:
            return wrapped


def test_an_api_server_that_does_not_answer_in_time_is_asked_again(tmp_path):
    client = ScriptedClient([unreachable(), unreachable(httpx.ConnectError)])
    said = []
    run = driver.drive(client, "run-1", tmp_path, "risk-score", timeout=30, log=said.append)
    assert run["state"] == "success" and client.looks == 3
    assert sum("did not answer" in line for line in said) == 2


def test_an_error_answer_from_the_api_is_not_retried(tmp_path):
    client = ScriptedClient([AirflowError("Airflow GET /x -> 404: no such run")])
    with pytest.raises(AirflowError, match="404"):
        driver.drive(client, "run-1", tmp_path, "risk-score", timeout=30)
    assert client.looks == 1
