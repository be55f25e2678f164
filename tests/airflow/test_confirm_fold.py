"""One question at a time: a confirmation after an inconclusive step is folded into the next
step's approval when one is planned (they came seconds apart with the same table), and the
confirmation of the last step asks what Approve then does: promote. The real
``ReleaseApprovalOperator`` on a real release journal; the Airflow scheduler is not run: its
``execute`` is called with the context fields it reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.exceptions import AirflowSkipException

from paddle_canary.release import controller
from paddle_canary.release import events as ev

MODEL = "risk-score"
INCONCLUSIVE = {"status": "inconclusive", "reason": "latency_p95 inconclusive", "gates": []}


def release_with(settings, approvals_before):
    plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 50, 100],
                               "approvals_before": approvals_before},
                              run_id="manual__2026-12-01T10:00:00", settings=settings)
    release = controller.open_release(plan, settings)
    release.record(ev.StepVerdict(task="step_01.analyze", step=1, weight=5, verdict=INCONCLUSIVE))
    return release


def context_for(release, verdict):
    def xcom_pull(task_ids):
        return release.plan.to_dict() if task_ids == "resolve_plan" else verdict
    return {"ti": SimpleNamespace(xcom_pull=xcom_pull),
            "dag_run": SimpleNamespace(run_id=release.plan.run_id, triggering_user_name="ana"),
            "params": {}}


def confirm(slot):
    from paddle_canary.airflow.operators import ReleaseApprovalOperator
    return ReleaseApprovalOperator(task_id=f"step_{slot + 1:02d}.confirm", slot=slot,
                                   when="inconclusive",
                                   analysis_task=f"step_{slot + 1:02d}.analyze")


@pytest.fixture
def asked(monkeypatch):
    """``asked(operator, context)``: the question the operator would put (subject, body),
    without handing it to Airflow's HITL wait."""
    from airflow.providers.standard.operators.hitl import HITLOperator
    monkeypatch.setattr(HITLOperator, "execute", lambda self, context: None)

    def ask(operator, context):
        operator.execute(context)
        return operator.subject, operator.body
    return ask


def test_an_inconclusive_step_before_a_planned_approval_asks_once(settings, asked):
    release = release_with(settings, approvals_before=[50, 100])
    with pytest.raises(AirflowSkipException, match=r"asked together with the approval before "
                                                   r"50 % \(step_02.approve\)"):
        confirm(0).execute(context_for(release, INCONCLUSIVE))

    from paddle_canary.airflow.operators import ReleaseApprovalOperator
    approve = ReleaseApprovalOperator(task_id="step_02.approve", slot=1, when="before")
    subject, body = asked(approve, context_for(release, None))
    assert subject == f"Move 50 % of traffic to {MODEL} v2 (stable v1)?"
    assert "analysis was **inconclusive**" in body and "approving also goes on" in body


def test_without_a_planned_approval_the_confirmation_is_asked(settings, asked):
    release = release_with(settings, approvals_before=[100])
    subject, _ = asked(confirm(0), context_for(release, INCONCLUSIVE))
    assert subject == f"Analysis inconclusive at 5 % for {MODEL} v2 (stable v1): go on?"


def test_the_last_steps_confirmation_asks_to_promote(settings, asked):
    release = release_with(settings, approvals_before=[50])
    subject, _ = asked(confirm(2), context_for(release, INCONCLUSIVE))
    assert subject.startswith("Promote v2 to stable? The analysis at 100 % was inconclusive")
