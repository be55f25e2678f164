"""The live rollout report: a run's page rendered from its journal on request (imports no
Airflow; the API server's plugin, :mod:`paddle_canary.airflow.report_app`, serves it).

A run's journal is ``<home>/releases/<model>/<run>.jsonl``; a request names the run, not the
model, so :func:`find_journal` looks in each model's folder and keeps the journal whose plan
names exactly that run (two run ids may share a file name once made safe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paddle_canary.release import events as ev
from paddle_canary.release.journal import Journal, journal_path
from paddle_canary.report import links
from paddle_canary.report.html import page_from_journal
from paddle_canary.settings import Settings

#: How often the page of an unfinished release reloads itself.
REFRESH_S = 15


class NoReport(LookupError):
    """No release journal for the run: unknown run, another DAG, or a request refused before
    the release started. The message says which it may be."""


def find_journal(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    """The journal records of ``run_id``, whatever its model. Raises NoReport."""
    stem = journal_path(Path("."), "m", run_id).name
    for folder in sorted(settings.releases_dir.glob("*")) if settings.releases_dir.is_dir() else []:
        path = folder / stem
        if not path.is_file():
            continue
        records = Journal(path).records()
        plan = next((r.get("plan") for r in records if r.get("event") == ev.PLAN), None)
        if isinstance(plan, dict) and plan.get("run_id") == run_id:
            return records
    raise NoReport(f"no release journal for run {run_id!r}: not a release run, or its request "
                   f"was refused before the release started (resolve_plan's log says why)")


def report_page(settings: Settings, dag_id: str, run_id: str, *, base_url: str = "") -> str:
    """The report page of ``run_id`` of ``dag_id`` as it stands now. Raises NoReport."""
    if dag_id != links.DAG_ID:
        raise NoReport(f"{dag_id!r} is not the release DAG ({links.DAG_ID})")
    records = find_journal(settings, run_id)
    return page_from_journal(records, settings, run_url=links.run_url(base_url, dag_id, run_id),
                             refresh_s=REFRESH_S)
