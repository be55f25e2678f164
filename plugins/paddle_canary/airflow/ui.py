"""What the release tasks show a person in Airflow's UI: the links of their run and the one
line a task ends with (imported by the operators; the plugin itself is
:mod:`paddle_canary.airflow.ui_plugin`)."""

from __future__ import annotations

from datetime import datetime, timezone
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


def teardown_wait_line(plan: dict[str, Any], promoted_at: float, moment: datetime) -> str:
    """What the teardown task waits for, in its log (it is the DAG's last task, so a promoted
    release's run stays Running until then)."""
    promoted = datetime.fromtimestamp(promoted_at, timezone.utc)
    left = max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())
    return (f"{plan.get('candidate')} was promoted at {promoted:%Y-%m-%d %H:%M:%S} UTC; "
            f"{plan.get('baseline')} keeps running as a fallback until "
            f"{moment:%Y-%m-%d %H:%M:%S} UTC (in {left / 3600:.1f} h, teardown_delay_s "
            f"{plan.get('teardown_delay_s'):g}), then this task stops it. The release itself is "
            "done: the run stays Running until then, waiting in the triggerer (no worker slot).")


def short_step_warning(plan: dict[str, Any]) -> str | None:
    """The estimate's warning for steps too short for ``min_samples`` at current traffic
    (None: enough rows, or no estimate); never raises."""
    try:
        from paddle_canary.report import estimate
        from paddle_canary.settings import Settings
        rate = estimate.scored_rows_per_s(Settings.from_env().prometheus_url, plan["model"])
        return estimate.short_steps(plan, rate)
    except Exception:  # noqa: BLE001 - an estimate is advice, never a reason to stop
        return None
