"""Where a release's pages are on the Airflow API server (plain strings; imports no Airflow).

Airflow serves the live rollout report through the paddle-canary plugin
(:mod:`paddle_canary.airflow.ui_plugin`) at ``<base>/paddle-canary/reports/<dag_id>/<run_id>``;
the run itself is at ``<base>/dags/<dag_id>/runs/<run_id>`` in Airflow's UI. ``base`` is
Airflow's ``[api] base_url`` (empty: a path on the same server).
"""

from __future__ import annotations

from urllib.parse import quote

#: Where the plugin's FastAPI app is mounted on the API server.
URL_PREFIX = "/paddle-canary"
DAG_ID = "model_release"


def _part(value: str) -> str:
    return quote(str(value), safe="")


def report_path(dag_id: str, run_id: str) -> str:
    return f"{URL_PREFIX}/reports/{_part(dag_id)}/{_part(run_id)}"


def report_url(base_url: str | None, dag_id: str, run_id: str) -> str:
    return (base_url or "").rstrip("/") + report_path(dag_id, run_id)


def run_url(base_url: str | None, dag_id: str, run_id: str) -> str:
    return f"{(base_url or '').rstrip('/')}/dags/{_part(dag_id)}/runs/{_part(run_id)}"
