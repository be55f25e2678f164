"""End a release and publish its report: used by the DAG's rollback and report tasks and by
``paddle-canary rollback``. The release package never writes HTML; the report is rendered here
from the release's journal (plus Prometheus when it answers)."""

from __future__ import annotations

from typing import Any

from paddle_canary.release import controller
from paddle_canary.release.plan import ReleasePlan
from paddle_canary.report.data import outcome
from paddle_canary.report.html import report_from_journal
from paddle_canary.settings import Settings


def finish_and_report(plan: ReleasePlan, run_id: str,
                      settings: Settings | None = None, *,
                      run_url: str | None = None) -> dict[str, Any]:
    """Record the outcome once, free the model (if ``run_id`` holds it), write the report.
    ``run_url``: the run in Airflow's UI, linked from the report."""
    settings = settings or Settings.from_env()
    release = controller.open_release(plan, settings)
    result = release.finish(run_id)
    records = release.journal.records()
    report = report_from_journal(records, settings, run_url=run_url)
    return {**result, "reason": outcome(records)["reason"], "report": str(report)}


def refresh_report(plan: ReleasePlan, settings: Settings | None = None) -> str:
    """The report written again from the journal (after the release changed once its report
    was written: an undo in the bake period)."""
    settings = settings or Settings.from_env()
    release = controller.open_release(plan, settings)
    return str(report_from_journal(release.journal.records(), settings))
