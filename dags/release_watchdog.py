"""release_watchdog: every hour, reconcile what a crashed release can leave behind (a lock whose
run is gone, candidate traffic with no release, an orphan version, an overdue teardown, an
unhealthy stable) and repair what is safe. Logic: ``paddle_canary.ops.watchdog``."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from paddle_canary.airflow.watchdog_task import ReleaseWatchdogOperator

with DAG(
    dag_id="release_watchdog",
    description="Reconcile crashed releases: report, and repair what is safe",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["paddle-canary", "ops"],
) as dag:
    ReleaseWatchdogOperator(task_id="reconcile")
