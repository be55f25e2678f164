"""What the release tasks show a person in Airflow's UI: the links of their run and the one
line a task ends with (imported by the operators; the plugin itself is
:mod:`paddle_canary.airflow.ui_plugin`)."""

from __future__ import annotations

from typing import Any

from paddle_canary.report import links


def base_url() -> str:
    """Airflow's ``[api] base_url`` ('' when unset: links are paths on the same server)."""
    from airflow.configuration import conf
    return conf.get("api", "base_url", fallback="") or ""


def report_url(context) -> str:
    run = context["dag_run"]
    return links.report_url(base_url(), run.dag_id, run.run_id)


def run_url(context) -> str:
    run = context["dag_run"]
    return links.run_url(base_url(), run.dag_id, run.run_id)


def outcome_line(result: dict[str, Any], url: str) -> str:
    """``outcome: rolled_back; reason: ...; report: URL`` (the last line of report/rollback)."""
    reason = result.get("reason")
    return (f"outcome: {result.get('outcome')}" + (f"; reason: {reason}" if reason else "")
            + f"; report: {url}")
