"""The release deadline: a run still going a margin after its planned end tells the model's
people. The DAG's ``DeadlineAlert`` goes through Airflow's own serialization (what the
scheduler and API server read back), its reference is evaluated against a DagRun row in a real
Airflow metadata database (SQLite), and the callback delivers to a real local HTTP receiver.
The scheduler's loop that notices a missed deadline is Airflow's own and is not run here."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from card_helpers import set_card

from paddle_canary.release import controller
from paddle_canary.release import events as ev

MODEL = "risk-score"
REQUEST = {"model": MODEL, "version": "v2", "steps": [5, 50, 100], "step_interval_s": 60,
           "shadow_s": 30, "teardown_delay_s": 600}
START = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def test_the_planned_end_is_the_start_plus_shadow_steps_and_teardown(settings):
    from paddle_canary.airflow.deadline import planned_end
    assert planned_end(REQUEST, START) == START + timedelta(seconds=30 + 3 * 60 + 600)


@pytest.mark.parametrize("conf", [{}, {"model": MODEL, "version": "v9"},
                                  {**REQUEST, "steps": "fast"}, None])
def test_a_request_that_does_not_resolve_gets_no_deadline_and_never_raises(settings, conf):
    from paddle_canary.airflow.deadline import planned_end
    assert planned_end(conf, START) is None


def test_the_margin_comes_from_the_environment_and_is_checked(monkeypatch):
    from paddle_canary.airflow.deadline import margin
    monkeypatch.delenv("PADDLE_CANARY_DEADLINE_MARGIN_S", raising=False)
    assert margin() == timedelta(hours=2)
    monkeypatch.setenv("PADDLE_CANARY_DEADLINE_MARGIN_S", "90")
    assert margin() == timedelta(seconds=90)
    monkeypatch.setenv("PADDLE_CANARY_DEADLINE_MARGIN_S", "soon")
    with pytest.raises(ValueError, match="number of seconds"):
        margin()


@pytest.fixture
def metadata_session(airflow_home):
    """A session on the test's migrated Airflow database (by its path: Airflow's own engine
    may have been configured by an earlier test of the session, before AIRFLOW_HOME was set)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    engine = create_engine(f"sqlite:///{airflow_home / 'airflow.db'}")
    with Session(engine) as session:
        yield session
        session.rollback()
    engine.dispose()


def test_the_dags_deadline_survives_serialization_and_evaluates_on_a_run(settings,
                                                                         metadata_session):
    """What the scheduler does when the run is created: read the DAG's serialized deadline
    (our reference found through the plugin) and evaluate it on the DagRun row."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models import DagRun
    from airflow.serialization.decoders import decode_deadline_alert
    from airflow.serialization.serialized_objects import DagSerialization

    from paddle_canary.settings import REPO

    dag = DagBag(dag_folder=REPO / "dags").dags["model_release"]
    again = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    (stored,) = again.deadline
    alert = decode_deadline_alert(stored)  # as the scheduler reads it when a run is created
    assert alert.reference.reference_name == "PlannedRunEnd"
    assert alert.interval == timedelta(hours=2)

    run_id, session = "manual__deadline-test", metadata_session
    session.add(DagRun(dag_id="model_release", run_id=run_id, run_type="manual",
                       conf=REQUEST, run_after=START))
    session.flush()
    session.query(DagRun).filter(DagRun.run_id == run_id).update({"queued_at": START})
    end = alert.reference.evaluate_with(session=session, interval=alert.interval,
                                        dag_id="model_release", run_id=run_id)
    assert end == START + timedelta(seconds=30 + 3 * 60 + 600) + timedelta(hours=2)
    session.query(DagRun).filter(DagRun.run_id == run_id).update({"conf": {"model": "x"}})
    assert alert.reference.evaluate_with(session=session, interval=alert.interval,
                                         dag_id="model_release", run_id=run_id) is None


def test_evaluating_in_the_schedulers_session_leaves_that_session_alone(settings, tmp_path,
                                                                        monkeypatch,
                                                                        metadata_session):
    """The scheduler evaluates the reference inside its own session (creating an
    asset-triggered run); the registry Variable must be read through that session. A
    ``Variable.get`` there opens and closes the thread's scoped session under the scheduler,
    which then died with DetachedInstanceError."""
    import shutil

    from airflow.models import DagRun, Variable
    from sqlalchemy import select

    from paddle_canary.airflow.deadline import PlannedRunEnd
    import airflow.sdk

    def variable_get(*args, **kwargs):
        raise AssertionError("Variable.get inside the scheduler's session")

    monkeypatch.setattr(airflow.sdk.Variable, "get", variable_get)
    monkeypatch.delenv("AIRFLOW_VAR_PADDLE_CANARY_REGISTRY", raising=False)
    elsewhere = tmp_path / "registry-in-variable"
    shutil.copytree(settings.registry_root, elsewhere)
    monkeypatch.setenv("PADDLE_CANARY_REGISTRY", str(tmp_path / "not-this-one"))
    run_id, session = "asset_triggered__deadline-session", metadata_session
    session.add(Variable(key="paddle_canary_registry", val=str(elsewhere)))
    session.add(DagRun(dag_id="model_release", run_id=run_id, run_type="asset_triggered",
                       conf=REQUEST, run_after=START))
    session.flush()
    run = session.scalar(select(DagRun).where(DagRun.run_id == run_id))
    end = PlannedRunEnd()._evaluate_with(session=session, dag_id="model_release", run_id=run_id)
    assert end == START + timedelta(seconds=30 + 3 * 60 + 600)  # resolved in `elsewhere`
    session.expire(run)
    assert run.conf == REQUEST  # still bound to the session: refreshed, not detached


def test_a_missed_deadline_tells_the_models_people_where_the_release_stands(settings,
                                                                           webhook_receiver):
    from paddle_canary.airflow.deadline import release_overdue
    set_card(settings, MODEL, notify={"webhooks": [webhook_receiver.url_for("/hook")]})
    run_id = "manual__2026-12-01T09:00:00"
    plan = controller.prepare(REQUEST, run_id=run_id, settings=settings)
    controller.journal_of(plan, settings).append(ev.WeightSet(weight=50, step=2))
    context = {"dag_run": {"dag_run_id": run_id, "conf": REQUEST},
               "deadline": {"id": "d-1", "deadline_time": "2026-12-01T11:43:30+00:00"}}
    asyncio.run(release_overdue(context=context))
    (hook,) = webhook_receiver.wait_for(lambda r: r.path == "/hook")
    body = hook.json["paddle_canary"]
    assert body["kind"] == "overdue" and body["weight"] == 50
    assert body["title"] == f"Release overdue: {MODEL} v2 at 50 %"
    assert "deadline passed: 2026-12-01T11:43:30+00:00" in hook.json["text"]
