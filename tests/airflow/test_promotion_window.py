"""A model's promotion window through the real release plan, controller, set_weight operator
and report: a step due outside the window is deferred (no worker slot) until the window opens
and recorded once; inside it the weight moves; a window model.yaml cannot hold refuses the
release before anything changes. Operators are called directly with the context fields they
read (no scheduler), over a real registry, lock and journal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from card_helpers import set_card

from paddle_canary.release import controller
from paddle_canary.release import events as ev
from paddle_canary.release.plan import PlanError

MODEL = "risk-score"
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def closed_now() -> dict:
    """A window that is closed right now and opens in about an hour (every day, UTC)."""
    now = datetime.now(timezone.utc)
    opens = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    if opens.date() != now.date():   # late in the day: open at midnight + 1 h on the next day
        return {"days": ALL_DAYS, "hours": "01:00-02:00", "timezone": "UTC"}
    return {"days": ALL_DAYS, "hours": f"{opens:%H:%M}-24:00", "timezone": "UTC"}


def open_now() -> dict:
    return {"days": ALL_DAYS, "hours": "00:00-24:00", "timezone": "UTC"}


def release_of(settings):
    plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 100],
                               "approvals_before": []}, run_id="run-1", settings=settings)
    return controller.open_release(plan, settings)


def ctx(release):
    def pull(task_ids):
        return release.plan.to_dict() if task_ids == "resolve_plan" else {"at": None}
    return {"ti": SimpleNamespace(xcom_pull=pull), "params": {},
            "dag_run": SimpleNamespace(run_id="run-1", triggering_user_name="ana")}


def test_a_step_due_outside_the_window_waits_deferred_until_it_opens(settings):
    from airflow.sdk.exceptions import TaskDeferred

    from paddle_canary.airflow.operators import SetWeightOperator
    set_card(settings, MODEL, promotion_window=closed_now())
    release = release_of(settings)
    opens = release.plan.window().next_open(datetime.now(timezone.utc))
    assert opens is not None
    set_weight = SetWeightOperator(task_id="step_01.set_weight", slot=0)
    for _ in range(2):  # the wait is deferred again (e.g. a retried task): recorded once
        with pytest.raises(TaskDeferred) as deferred:
            set_weight.execute(ctx(release))
        assert deferred.value.method_name == "execute_after_hold"
        assert deferred.value.trigger.moment == opens
    waits = ev.of_kind(release.events(), ev.WindowWait)
    assert [(w.step, w.weight, w.until) for w in waits] == [(1, 5, opens.timestamp())]
    assert "UTC" in waits[0].window
    assert not ev.of_kind(release.events(), ev.WeightSet), "no traffic moved"


def test_inside_the_window_the_weight_moves_at_once(settings):
    from airflow.sdk.exceptions import AirflowFailException

    from paddle_canary.airflow.operators import SetWeightOperator
    set_card(settings, MODEL, promotion_window=open_now())
    release = release_of(settings)
    # no gateway runs in this test: reaching it is what "not held" means here
    with pytest.raises(AirflowFailException, match="gateway"):
        SetWeightOperator(task_id="step_01.set_weight", slot=0).execute(ctx(release))
    assert not ev.of_kind(release.events(), ev.WindowWait)


def test_no_window_means_any_time(settings):
    release = release_of(settings)
    assert release.plan.promotion_window is None and release.window_wait(1, 5) is None


def test_a_window_the_model_yaml_cannot_hold_refuses_the_release(settings):
    set_card(settings, MODEL, promotion_window={"hours": "17:00-09:00"})
    with pytest.raises(PlanError, match="risk-score's model.yaml: promotion_window.hours"):
        release_of(settings)


def test_the_report_shows_the_wait(settings):
    from paddle_canary.report.data import summary as summarize
    from paddle_canary.report.html import page_from_journal

    set_card(settings, MODEL, promotion_window=closed_now())
    release = release_of(settings)
    until = release.window_wait(1, 5)
    records = release.journal.records()
    summary = summarize(release.plan.to_dict(), records)
    assert [(w["weight"], w["until"]) for w in summary["window_waits"]] == [(5, until)]
    page = page_from_journal(records, settings)  # Prometheus does not answer: no charts
    assert "<h2>Promotion window</h2>" in page and release.plan.window().describe() in page


def test_status_says_what_the_step_waits_for(settings):
    from paddle_canary.release.run_commands import _manual_state

    set_card(settings, MODEL, promotion_window=closed_now())
    release = release_of(settings)
    release.window_wait(1, 5)
    [line] = _manual_state(settings, MODEL, "run-1")
    assert line.startswith("waiting for the promotion window (") and "5 % at " in line
