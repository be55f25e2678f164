"""The release_watchdog DAG: parses, runs hourly, and its task reads the release runs' state
through the Task SDK. ``dag.test()`` runs the real task in process against the test's SQLite
Airflow database: a lock left by a run that Airflow never had is freed, and the finding is
kept for ``paddle-canary status``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paddle_canary.ops import watchdog
from paddle_canary.release import lock
from paddle_canary.settings import Settings

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def watchdog_dag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=REPO_DAGS / "release_watchdog.py")
    assert bag.import_errors == {}
    return bag.dags["release_watchdog"]


def test_the_watchdog_runs_hourly_one_run_at_a_time(watchdog_dag):
    assert watchdog_dag.max_active_runs == 1
    assert [t.task_id for t in watchdog_dag.tasks] == ["reconcile"]
    assert watchdog_dag.schedule == "@hourly"


@pytest.mark.slow
def test_a_lock_of_a_run_airflow_never_had_is_freed(airflow_home, tmp_path, registry_root):
    root = tmp_path / "registry"
    shutil.copytree(registry_root, root, ignore=shutil.ignore_patterns("release.lock", ".lock"))
    settings = Settings(home=tmp_path / "home", registry_root=root,
                        prometheus_url="http://127.0.0.1:9")
    lock.acquire(root, "risk-score", "manual__crashed-before-its-plan", "v2")
    # In a child process: Airflow binds its database when first imported, and another test
    # area's collection may have imported it before this session's AIRFLOW_HOME was set.
    code = ("from airflow.dag_processing.dagbag import DagBag; "
            f"bag = DagBag(dag_folder={str(REPO_DAGS / 'release_watchdog.py')!r}); "
            "run = bag.dags['release_watchdog'].test(); print('STATE', run.state)")
    env = {**os.environ, **settings.to_env(), "AIRFLOW_HOME": str(airflow_home)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert "STATE success" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    assert lock.holder(root, "risk-score") is None
    findings = watchdog.read_status(settings)["findings"]
    stale = [f for f in findings if f["kind"] == "stale_lock"]
    assert len(stale) == 1 and "manual__crashed-before-its-plan" in stale[0]["detail"]
    assert "gone" in stale[0]["detail"] and stale[0]["repaired"].startswith("lock freed")
    # no gateway runs in this test: said per model, and the lock is freed all the same
    assert {f["model"] for f in findings if f["kind"] == "gateway_unreadable"} >= {"risk-score"}
    assert json.dumps(findings)  # plain JSON for the CLI
