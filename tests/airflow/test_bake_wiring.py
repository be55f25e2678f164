"""The teardown task waits in the triggerer with the bake guards (release.bake) instead of a
plain timer: the real operator and trigger, called directly with the context fields they read
(no scheduler), over a real registry and journal. The guards themselves: tests/release/
test_bake.py."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from paddle_canary.release import controller
from paddle_canary.release import events as ev

MODEL = "risk-score"


@pytest.fixture
def release(settings):
    plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 100],
                               "approvals_before": [], "teardown_delay_s": 3600,
                               "poll_interval_s": 5},
                              run_id="run-1", settings=settings)
    return controller.open_release(plan, settings)


def ctx(release):
    return {"ti": SimpleNamespace(xcom_pull=lambda task_ids: release.plan.to_dict()),
            "params": {}, "dag_run": SimpleNamespace(run_id="run-1", note=None)}


def first_event(trigger):
    async def one():
        async for event in trigger.run():
            return event.payload
    return asyncio.run(asyncio.wait_for(one(), 30))


def test_the_teardown_waits_with_the_bake_guards_until_the_delay_from_the_promotion(
        release, monkeypatch):
    from airflow.sdk.exceptions import TaskDeferred

    from paddle_canary.airflow import operators, run_note
    from paddle_canary.airflow.triggers import BakeTrigger
    monkeypatch.setattr(run_note, "note_release", lambda *a, **k: None)
    promoted = release.record(ev.Promoted(previous="v1"))
    op = operators.TeardownOperator(task_id="teardown_old_version")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx(release))
    t = deferred.value.trigger
    assert isinstance(t, BakeTrigger) and t.poll_s == 5
    assert t.until == pytest.approx(promoted.ts + 3600)
    path, kwargs = t.serialize()
    assert path == "paddle_canary.airflow.triggers.BakeTrigger" and BakeTrigger(**kwargs).until \
        == t.until


def test_the_trigger_ends_when_the_delay_is_over_or_the_promotion_was_undone(release):
    from paddle_canary.airflow.triggers import BakeTrigger
    plan = release.plan.to_dict()
    assert first_event(BakeTrigger(plan, until=time.time() - 1, poll_s=1))["status"] == "baked"
    release.record(ev.Promoted(previous="v1"))
    release.record(ev.Undone(by="ana", reason="complaints", restored="v1", version="v2"))
    seen = first_event(BakeTrigger(plan, until=time.time() + 600, poll_s=1))
    assert seen == {"status": "undone", "reason": "the promotion was undone"}


def test_a_breach_the_undo_could_not_act_on_fails_the_task(release):
    from airflow.sdk.exceptions import AirflowFailException

    from paddle_canary.airflow.operators import TeardownOperator
    op = TeardownOperator(task_id="teardown_old_version")
    with pytest.raises(AirflowFailException, match="error share .* undo refused: the previous"):
        op.execute_complete(ctx(release), {"status": "breach", "reason": "error share 5 %",
                                           "undo_refused": "the previous version v1 is gone"})
