"""The FastAPI app the paddle-canary plugin mounts on Airflow's API server at
``/paddle-canary`` (see :mod:`paddle_canary.airflow.ui_plugin`).

``GET /paddle-canary/reports/<dag_id>/<run_id>``: the run's rollout report, rendered from its
journal on each request, so a running release has a live report (the page reloads itself until
the release ends).

A plugin's FastAPI app is not behind Airflow's authentication by default: every route here
depends on Airflow's own ``requires_access_dag("GET", DagAccessEntity.RUN)``, which takes the
user from the JWT the API server issued (``Authorization: Bearer`` or the UI's ``_token``
cookie) and asks the configured auth manager whether that user may read the DAG's runs.
No token: 401; a bad or expired token: 403 / 401; a user without access: 403; no report for the
run: 404.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.configuration import conf

from paddle_canary.report import live
from paddle_canary.settings import Settings

app = FastAPI(title="paddle-canary rollout reports", docs_url=None, redoc_url=None,
              openapi_url=None)


@app.get("/reports/{dag_id}/{run_id}", response_class=HTMLResponse,
         dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))])
def rollout_report(dag_id: str, run_id: str) -> HTMLResponse:
    try:
        page = live.report_page(Settings.from_env(), dag_id, run_id,
                                base_url=conf.get("api", "base_url", fallback="") or "")
    except live.NoReport as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
