"""A small client for the Airflow 3.3 REST API (plain HTTP; imports no Airflow).

Used by the CLI (release, approve, status), the demo and the end-to-end tests. Settings from
the environment: ``PADDLE_CANARY_AIRFLOW_URL`` (default http://127.0.0.1:8080),
``PADDLE_CANARY_AIRFLOW_USER`` (default admin) and ``PADDLE_CANARY_AIRFLOW_PASSWORD`` or the
password file the local stack writes (``$PADDLE_CANARY_HOME/airflow/passwords.json``).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from paddle_canary.errors import UserError
from paddle_canary.settings import Settings

DAG_ID = "model_release"
# The asset whose events schedule model_release; each event's extra names {model, version}.
REGISTERED_VERSIONS_URI = "paddle-canary://registry/versions"


class AirflowError(UserError):
    """The Airflow API refused a request or could not be reached."""


class AirflowUnreachable(AirflowError):
    """No answer in time (down, restarting, or too busy): asking again later may work."""


class AirflowClient:
    def __init__(self, url: str, username: str, password: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._username, self._password = username, password
        self._token: str | None = None

    @classmethod
    def from_env(cls) -> "AirflowClient":
        url = os.environ.get("PADDLE_CANARY_AIRFLOW_URL", "http://127.0.0.1:8080")
        user = os.environ.get("PADDLE_CANARY_AIRFLOW_USER", "admin")
        password = os.environ.get("PADDLE_CANARY_AIRFLOW_PASSWORD")
        if password is None:
            pw_file = Settings.from_env().home / "airflow" / "passwords.json"
            try:
                password = json.loads(Path(pw_file).read_text())[user]
            except (FileNotFoundError, KeyError, ValueError):
                raise AirflowError(
                    f"no Airflow password: set PADDLE_CANARY_AIRFLOW_PASSWORD or start the local "
                    f"stack (make up), which writes {pw_file}") from None
        return cls(url, user, password)

    def close(self) -> None:
        self._http.close()

    # ---- plumbing ------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            r = self._send("POST", "/auth/token",
                           json={"username": self._username, "password": self._password}, auth=False)
            self._token = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def _send(self, method: str, path: str, auth: bool = True, **kw) -> httpx.Response:
        headers = self._auth() if auth else {}
        try:
            r = self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise AirflowUnreachable(f"Airflow at {self.url} is not reachable: {exc}") from exc
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise AirflowError(f"Airflow {method} {path} -> {r.status_code}: {detail}")
        return r

    # ---- DAGs and runs -------------------------------------------------------------------

    def unpause(self, dag_id: str = DAG_ID) -> None:
        self._send("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def dag_exists(self, dag_id: str = DAG_ID) -> bool:
        try:
            self._send("GET", f"/api/v2/dags/{dag_id}")
            return True
        except AirflowError:
            return False

    def trigger(self, conf: dict[str, Any], dag_id: str = DAG_ID, run_id: str | None = None) -> str:
        run_id = run_id or f"release__{conf.get('model')}__{conf.get('version')}__{uuid.uuid4().hex[:8]}"
        self._send("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                   json={"logical_date": None, "dag_run_id": run_id, "conf": conf})
        return run_id

    def run(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, Any]:
        return self._send("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}").json()

    def runs(self, dag_id: str = DAG_ID, state: str | None = None) -> list[dict[str, Any]]:
        params = {"order_by": "-start_date", "limit": 50}
        if state:
            params["state"] = state
        return self._send("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params).json()["dag_runs"]

    def set_run_state(self, run_id: str, state: str, dag_id: str = DAG_ID) -> dict[str, Any]:
        """Mark a run ``failed`` or ``success``: its unfinished tasks never run."""
        return self._send("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}",
                          json={"state": state}).json()

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str]:
        body = self._send("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
                                 "/taskInstances", params={"limit": 200}).json()
        return {ti["task_id"]: ti["state"] for ti in body["task_instances"]}

    # ---- human in the loop ---------------------------------------------------------------

    def pending_approvals(self, run_id: str | None = None, dag_id: str = DAG_ID) -> list[dict]:
        run = quote(run_id, safe="") if run_id else "~"
        dag = dag_id if run_id else "~"
        body = self._send("GET", f"/api/v2/dags/{dag}/dagRuns/{run}/hitlDetails",
                          params={"response_received": "false"}).json()
        return body.get("hitl_details", [])

    def answer(self, run_id: str, task_id: str, option: str, map_index: int = -1,
               dag_id: str = DAG_ID) -> dict[str, Any]:
        path = (f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
                f"{task_id}/{map_index}/hitlDetails")
        return self._send("PATCH", path, json={"chosen_options": [option], "params_input": {}}).json()

    def required_actions_url(self, run_id: str, task_id: str, dag_id: str = DAG_ID) -> str:
        return (f"{self.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}"
                "/required_actions")

    # ---- assets ----------------------------------------------------------------------------

    def emit_asset_event(self, uri: str, extra: dict[str, Any]) -> dict[str, Any]:
        assets = self._send("GET", "/api/v2/assets", params={"uri_pattern": uri}).json()["assets"]
        match = [a for a in assets if a["uri"] == uri]
        if not match:
            raise AirflowError(f"Airflow knows no asset {uri!r}; is the model_release DAG loaded?")
        return self._send("POST", "/api/v2/assets/events",
                          json={"asset_id": match[0]["id"], "extra": extra}).json()
