"""The release's tasks and its analysis trigger honour pause/resume and promote --full
(journal events written by the CLI, tests/release/test_manual.py): the real operators and
trigger, their ``execute``/``execute_complete``/step-end logic called directly with the context
fields they read (no scheduler), over a real registry, lock and journal."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from paddle_canary.release import controller, manual
from paddle_canary.release import events as ev

MODEL = "risk-score"


@pytest.fixture
def release(settings):
    plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 25, 50, 100],
                               "approvals_before": [50, 100], "step_interval_s": 600},
                              run_id="run-1", settings=settings)
    return controller.open_release(plan, settings)


def ctx(release, weight_at=None):
    def pull(task_ids):
        return release.plan.to_dict() if task_ids == "resolve_plan" else {"at": weight_at}
    return {"ti": SimpleNamespace(xcom_pull=pull), "params": {},
            "dag_run": SimpleNamespace(run_id="run-1", triggering_user_name="ana")}


def trigger(release, since, **kw):
    from paddle_canary.airflow.triggers import CanaryAnalysisTrigger
    return CanaryAnalysisTrigger(plan=release.plan.to_dict(), since=since,
                                 until=since + release.plan.step_interval_s, poll_s=1,
                                 step=2, weight=25, **kw)


def test_a_pause_moves_the_step_end_and_a_resume_lets_it_run_out(release):
    since = time.time() - 100
    t = trigger(release, since)
    assert t.manual_step_end(release, now=time.time()) == (since + 600, False)
    held = release.record(ev.Paused(by="ana", ts=since + 200))
    until, _ = t.manual_step_end(release, now=since + 700)
    assert until == pytest.approx(since + 600 + 500)  # still held: moves with the clock
    release.record(ev.Resumed(by="ana", ts=held.ts + 60))
    assert t.manual_step_end(release, now=since + 9999)[0] == pytest.approx(since + 660)
    # a trigger deferred again after a hold counts only the pauses after that moment
    again = trigger(release, since, counted_from=held.ts + 60)
    assert again.manual_step_end(release, now=since + 9999)[0] == pytest.approx(since + 600)
    assert again.serialize()[1]["counted_from"] == held.ts + 60


def test_a_held_step_is_deferred_again_until_its_moved_end(release):
    from airflow.sdk.exceptions import TaskDeferred

    from paddle_canary.airflow.operators import CanaryAnalysisSensor
    sensor = CanaryAnalysisSensor(task_id="step_02.analyze", slot=1,
                                  set_weight_task="step_02.set_weight")
    now = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute_complete(ctx(release), {"verdict": {"status": "inconclusive", "gates": []},
                                               "looked_until": now, "hold_until": now + 400},
                                since=now - 900, extensions=0, weight=25)
    t = deferred.value.trigger
    assert (t.until, t.counted_from, t.since) == (now + 400, now, now - 900)
    assert deferred.value.kwargs["extensions"] == 0  # a hold is not an extension


def test_promote_full_ends_the_step_and_skips_the_steps_below_100(release):
    from airflow.sdk.exceptions import AirflowSkipException

    from paddle_canary.airflow.operators import (ReleaseApprovalOperator, SetWeightOperator,
                                                 CanaryAnalysisSensor)
    t = trigger(release, time.time())
    release.record(ev.FullPromotionRequested(by="ana", reason="hotfix CVE-1"))
    assert t.manual_step_end(release, now=time.time())[1] is True
    approve = ReleaseApprovalOperator(task_id="step_03.approve", slot=2, when="before")
    with pytest.raises(AirflowSkipException, match="promote --full by ana"):
        approve.execute(ctx(release))
    with pytest.raises(AirflowSkipException, match="hotfix CVE-1"):
        SetWeightOperator(task_id="step_03.set_weight", slot=2).execute(ctx(release))
    with pytest.raises(AirflowSkipException):
        CanaryAnalysisSensor(task_id="step_03.analyze", slot=2,
                             set_weight_task="step_03.set_weight").execute(ctx(release, 1.0))
    assert manual.skips_step(release.events(), 100) is None  # the 100 % step still runs


def test_a_paused_release_holds_its_weight_even_after_an_approval(release):
    from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

    from paddle_canary.airflow.operators import HOLD_POLL_S, SetWeightOperator
    set_weight = SetWeightOperator(task_id="step_03.set_weight", slot=2)
    release.record(ev.Paused(by="ana", reason="incident"))
    with pytest.raises(TaskDeferred) as deferred:
        set_weight.execute(ctx(release))
    assert deferred.value.method_name == "execute_after_hold"
    wait = (deferred.value.trigger.moment - datetime.now(timezone.utc)).total_seconds()
    assert HOLD_POLL_S - 10 < wait <= HOLD_POLL_S
    assert not ev.of_kind(release.events(), ev.WeightSet)
    release.record(ev.Resumed(by="ana"))
    # resumed: it goes on to move the weight (no gateway runs in this test, so that fails)
    with pytest.raises(AirflowFailException, match="gateway"):
        set_weight.execute_after_hold(ctx(release), event=None)
