"""The release DAG imports cleanly, parses fast, and has the tasks and wiring a release needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paddle_canary.release.plan import MAX_STEPS

REPO_DAGS = "dags"


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag
    return DagBag(dag_folder=REPO_DAGS)


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["model_release"]


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "model_release" in dagbag.dags


def test_dag_file_top_level_is_light(airflow_home):
    """Airflow's best practice: no heavy imports at parse time (paddle, numpy's models...)."""
    code = ("import sys, time; t=time.perf_counter(); import runpy; "
            "runpy.run_path('dags/model_release.py'); "
            "print(time.perf_counter()-t); print('paddle' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out[-2:] == ["False", "False"], "the DAG file imports paddle or numpy at parse time"


def test_release_tasks_are_all_there(dag):
    ids = set(dag.task_ids)
    for task in ("resolve_plan", "build_image", "validate_model", "deploy_candidate",
                 "promote", "teardown_old_version", "rollback", "report"):
        assert task in ids
    for slot in range(1, MAX_STEPS + 1):
        for task in ("approve", "set_weight", "analyze", "confirm"):
            assert f"step_{slot:02d}.{task}" in ids


def test_steps_run_in_order_and_failures_roll_back(dag):
    t = dag.task_dict
    # the shadow phase (skipped unless the plan has shadow_s) sits between deploy and step 1
    assert t["shadow.mirror"].upstream_task_ids == {"deploy_candidate"}
    assert t["shadow.analyze"].upstream_task_ids == {"shadow.mirror"}
    assert t["step_01.approve"].upstream_task_ids == {"shadow.analyze"}
    assert t["step_02.approve"].upstream_task_ids == {"step_01.confirm"}
    assert t["promote"].upstream_task_ids == {f"step_{MAX_STEPS:02d}.confirm"}
    assert t["rollback"].trigger_rule == "one_failed"
    # every task that changes something is watched by the rollback
    watched = t["rollback"].upstream_task_ids
    assert {"validate_model", "deploy_candidate", "promote", "step_03.analyze",
            "step_03.approve", "shadow.mirror", "shadow.analyze"} <= watched
    assert "resolve_plan" not in watched  # a refused request changed nothing: nothing to undo
    assert t["report"].trigger_rule == "all_done"
    assert {"rollback", "promote"} <= t["report"].upstream_task_ids
    assert t["teardown_old_version"].upstream_task_ids == {"promote"}


def test_params_form_has_the_release_fields(dag):
    assert {"model", "version", "steps", "step_interval_s", "approvals_before",
            "teardown_delay_s", "gates", "runtime"} <= set(dag.params.keys())


def test_dag_is_scheduled_by_registrations(dag):
    from paddle_canary.airflow.assets import REGISTERED_VERSIONS
    assert REGISTERED_VERSIONS.uri in str(dag.timetable.asset_condition)


def test_analysis_trigger_round_trips():
    from paddle_canary.airflow.triggers import CanaryAnalysisTrigger
    trig = CanaryAnalysisTrigger(plan={"model": "m", "run_id": "r"}, since=1.0, until=2.0,
                                 poll_s=0.5)
    path, kwargs = trig.serialize()
    assert path == "paddle_canary.airflow.triggers.CanaryAnalysisTrigger"
    again = CanaryAnalysisTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)


def test_only_tasks_that_park_are_retried(dag):
    """Approvals and deferrals get a quick retry for Airflow 3.3's resume race; a failed gate
    or a Reject is an AirflowFailException and is never retried; the rest never retry."""
    t = dag.task_dict
    assert t["step_01.approve"].retries == 1 and t["step_01.confirm"].retries == 1
    assert t["step_01.analyze"].retries == 1
    assert t["teardown_old_version"].retries == 2
    for task in ("resolve_plan", "validate_model", "deploy_candidate", "step_01.set_weight",
                 "promote", "rollback"):
        assert t[task].retries == 0, task


def test_the_dags_doc_names_tasks_it_has(dag):
    """The release flow shown on the DAG's page names tasks and groups the graph has."""
    import re
    named = set(re.findall(r"\*\*([a-z_0-9]+)\*\*", dag.doc_md or ""))
    ids = {t.task_id for t in dag.tasks} | set(dag.task_group_dict)
    assert len(named) >= 8 and named <= ids, named - ids
