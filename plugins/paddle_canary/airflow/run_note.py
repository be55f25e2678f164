"""Set the release run's note in Airflow (what the runs list and the run's page show).

Which mechanism: in Airflow 3.3 a task cannot write its run's note through the Task Execution
API (it offers a note only when a task *triggers another* run). The note is a field of the
public REST API: set at trigger time (``POST .../dagRuns`` with ``note``) or changed with
``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}?update_mask=note``. So the tasks PATCH it,
with credentials kept out of the DAG and its logs:

1. the Airflow connection ``paddle_canary_api`` when there is one (host: the API server's URL,
   login and password of a user allowed to edit runs; a connection's password is masked in
   task logs), else
2. on the local stack, the stack's own password file (0600, the same user's; what the CLI
   uses), with the URL from ``[api] base_url``.

A note is for people: failing to set one logs one warning line and never fails a task.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from paddle_canary.airflow import ui
from paddle_canary.airflow_rest import AirflowClient
from paddle_canary.report import note

CONN_ID = "paddle_canary_api"
# Short: set_weight notes the new weight before the step's analysis defers. In normal times a
# PATCH takes ~50 ms; when the API server stalls, the deferral (same server) stalls as well, and
# the note gives up after this long rather than holding the release.
TIMEOUT_S = 3.0
log = logging.getLogger(__name__)


def _client() -> AirflowClient:
    try:
        from airflow.sdk import BaseHook
        conn = BaseHook.get_connection(CONN_ID)
    except Exception:  # noqa: BLE001 - no such connection: the local stack's credentials
        conn = None
    if conn is not None and conn.host:
        url = conn.host if "://" in conn.host else f"http://{conn.host}"
        if conn.port:
            url = f"{url.rstrip('/')}:{conn.port}"
        return AirflowClient(url, conn.login or "", conn.password or "", timeout=TIMEOUT_S)
    return AirflowClient.from_env(url=ui.base_url() or None, timeout=TIMEOUT_S)


def _patch_note(path: str, text: str, logger) -> bool:
    try:
        client = _client()
        try:
            client._send("PATCH", path, params={"update_mask": "note"},
                         json={"note": note.cut(text)})
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - a note is never worth failing a release
        (logger or log).warning("note not set (%s: %s)", type(exc).__name__, exc)
        return False
    return True


def set_note(context, text: str, logger=None) -> bool:
    """PATCH the note of the task's run to ``text``; True when Airflow took it."""
    run = context["dag_run"]
    return _patch_note(f"/api/v2/dags/{run.dag_id}/dagRuns/{quote(run.run_id, safe='')}",
                       text, logger)


def set_task_note(context, text: str, logger=None) -> bool:
    """PATCH the note of the task instance itself (Airflow has no "inconclusive" state: an
    inconclusive ``analyze`` ends green, and its note says what it really ended with)."""
    run, ti = context["dag_run"], context["ti"]
    path = (f"/api/v2/dags/{run.dag_id}/dagRuns/{quote(run.run_id, safe='')}/taskInstances/"
            f"{quote(ti.task_id, safe='')}")
    if getattr(ti, "map_index", -1) not in (-1, None):
        path += f"/{ti.map_index}"
    return _patch_note(path, text, logger)


def note_release(context, release, logger=None) -> bool:
    """Set the note from the release's journal as it stands now (never raises)."""
    try:
        text = note.run_note(release.plan.to_dict(), release.journal.records())
    except Exception as exc:  # noqa: BLE001 - a note is never worth failing a release
        (logger or log).warning("note not written (%s: %s)", type(exc).__name__, exc)
        return False
    return set_note(context, text, logger)


def note_refused(context, request: dict[str, Any], reason: str, logger=None) -> bool:
    try:
        text = note.refused_note(request, reason)
    except Exception as exc:  # noqa: BLE001
        (logger or log).warning("note not written (%s: %s)", type(exc).__name__, exc)
        return False
    return set_note(context, text, logger)
