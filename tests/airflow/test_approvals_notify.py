"""Approvals tell people and never wait forever; failures tell them too.

The policy comes from a model.yaml (owners, four eyes, response timeout); the approval task's
``assigned_users``, ``response_timeout``, ``defaults`` and ``notifiers`` are set from it on the
real ``ReleaseApprovalOperator``, and the notifiers deliver to a real local HTTP receiver and a
real SMTP server (aiosmtpd, tests/notify_sinks.py) through the SMTP provider's hook. The Airflow
scheduler is not run here: the operator's ``execute`` up to the wait and its ``execute_complete``
are called with the context fields they read.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from card_helpers import set_card

from paddle_canary.ops import notify
from paddle_canary.ops.approvals import ApprovalPolicy, ApprovalPolicyError
from paddle_canary.release import controller
from paddle_canary.release import events as ev

MODEL = "risk-score"


@pytest.fixture
def smtp_conn(smtp_sink, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_RELEASES",
                       f"smtp://{smtp_sink.host}:{smtp_sink.port}?disable_ssl=true&disable_tls=true")
    return "smtp_releases"


def release_of(settings):
    plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 50, 100]},
                              run_id="manual__2026-12-01T00:00:00", settings=settings)
    return controller.open_release(plan, settings)


def context_for(release, user="ana"):
    return {"ti": SimpleNamespace(xcom_pull=lambda task_ids: release.plan.to_dict()),
            "dag_run": SimpleNamespace(run_id=release.plan.run_id, triggering_user_name=user),
            "params": {}}


def approval(slot=1):
    from paddle_canary.airflow.operators import ReleaseApprovalOperator
    return ReleaseApprovalOperator(task_id=f"step_{slot + 1:02d}.approve", slot=slot,
                                   when="before")


# ---- the policy ------------------------------------------------------------------------------

def test_four_eyes_excludes_the_triggering_user_and_refuses_when_nobody_is_left():
    policy = ApprovalPolicy.from_model_card(
        {"approvals": {"owners": ["ana", {"id": "bo", "name": "Bo B."}], "four_eyes": True}})
    assert policy.assigned_users("ana") == [{"id": "bo", "name": "Bo B."}]
    assert policy.assigned_users(None) == [{"id": "ana", "name": "ana"},
                                           {"id": "bo", "name": "Bo B."}]
    assert "ana triggered this release" in policy.refusal("ana", "ana")
    assert policy.refusal("bo", "ana") is None
    alone = ApprovalPolicy.from_model_card({"approvals": {"owners": ["ana"], "four_eyes": True}})
    with pytest.raises(ApprovalPolicyError, match="ana triggered this release and is its only"):
        alone.assigned_users("ana")
    nobody = ApprovalPolicy.from_model_card({"approvals": {"four_eyes": True}})
    with pytest.raises(ApprovalPolicyError, match="names no approvals.owners"):
        nobody.assigned_users("ana")


@pytest.mark.parametrize("card, message", [
    ({"approvals": {"response_timeout_s": 0}}, "positive number"),
    ({"approvals": {"response_timeout_s": True}}, "positive number"),
    ({"approvals": {"four_eyes": "yes"}}, "true or false"),
    ({"approvals": {"owner": ["x"]}}, "unknown approvals field"),
    ({"approvals": {"owners": [""]}}, "user id"),
    ({"notify": {"webhooks": ["ftp://x"]}}, "not an http"),
    ({"notify": {"email": [3]}}, "list of strings"),
])
def test_a_bad_policy_is_refused_with_the_field_named(card, message):
    with pytest.raises(ApprovalPolicyError, match=message):
        ApprovalPolicy.from_model_card(card)


def test_defaults_time_out_to_reject_and_let_anyone_allowed_answer():
    policy = ApprovalPolicy.from_model_card({})
    assert policy.response_timeout_s == 4 * 3600
    assert policy.assigned_users("ana") == []
    assert not policy.notify.any


# ---- the approval task -------------------------------------------------------------------------

def test_the_approval_task_gets_owners_timeout_reject_default_and_notifiers(
        settings, webhook_receiver, smtp_sink, smtp_conn):
    set_card(settings, MODEL,
             approvals={"owners": ["ana", "bo"], "four_eyes": True, "response_timeout_s": 900},
             notify={"webhooks": [webhook_receiver.url_for("/hooks/T0/B0")],
                     "email": ["oncall@example.com"], "smtp_conn_id": smtp_conn,
                     "from_email": "canary@example.com", "airflow_url": "http://airflow.test"})
    release = release_of(settings)
    release.record(ev.Look(verdict={"status": "inconclusive", "reason": "too few rows",
                                    "gates": [{"gate": "latency_p95", "status": "pass",
                                               "effect": 0.5, "interval": [-1.0, 2.0],
                                               "reason": "P95 ok"}]}, step=1, weight=5))
    from paddle_canary.airflow import release_notices
    op = approval()
    asked = release_notices.configure_approval(op, release, context_for(release), weight=50,
                                               kind="approval")
    assert op.assigned_users == [{"id": "bo", "name": "bo"}]
    assert op.response_timeout == timedelta(seconds=900)
    assert op.defaults == ["Reject"]
    assert asked == {"assigned_users": ["bo"], "timeout_s": 900.0}

    for notifier in op.notifiers:  # what HITLOperator.execute does before it waits
        notifier(context_for(release))
    (hook,) = webhook_receiver.wait_for(lambda r: r.path == "/hooks/T0/B0")
    body = hook.json
    fields = body["paddle_canary"]
    assert (fields["model"], fields["candidate"], fields["stable"], fields["weight"],
            fields["step"]) == (MODEL, "v2", "v1", 50, 2)
    assert fields["verdict"] == "inconclusive"
    assert "latency_p95: pass, effect 0.5 [-1, 2]" in body["text"]
    assert fields["links"]["approve"] == ("http://airflow.test/dags/model_release/runs/"
                                          "manual__2026-12-01T00%3A00%3A00/tasks/step_02.approve"
                                          "/required_actions")
    (mail,) = smtp_sink.wait_for()
    assert mail.rcpt_tos == ("oncall@example.com",)
    assert mail.subject.startswith(f"Approval needed: {MODEL} v2")
    assert "unanswered after 0.25 h: Reject" in mail.text()
    assert "may answer: bo" in mail.text()


def test_four_eyes_with_only_the_triggering_owner_fails_the_task_clearly(settings):
    set_card(settings, MODEL, approvals={"owners": ["ana"], "four_eyes": True})
    release = release_of(settings)
    op = approval()
    from airflow.sdk.exceptions import AirflowFailException
    ctx = {**context_for(release), "task": op, "task_instance": SimpleNamespace(id="x")}
    with pytest.raises(AirflowFailException, match="four eyes: ana triggered this release"):
        op.execute(ctx)
    assert "four eyes" in ev.failure_reason(release.events())


def event(option, user=None, timedout=False):
    return {"chosen_options": [option], "params_input": {},
            "responded_at": datetime.now(timezone.utc),
            "responded_by_user": {"id": user, "name": user} if user else None,
            "timedout": timedout}


def test_an_unanswered_approval_rejects_and_the_release_rolls_back(settings):
    from airflow.sdk.exceptions import AirflowFailException
    release = release_of(settings)
    op = approval()
    with pytest.raises(AirflowFailException, match="response timeout"):
        op.execute_complete(context_for(release), event("Reject", timedout=True))
    answered = ev.of_kind(release.events(), ev.ApprovalAnswered)[0]
    assert (answered.answer, answered.by) == ("Reject", "timeout")
    assert "response timeout" in ev.failure_reason(release.events())


def test_the_triggering_user_cannot_approve_under_four_eyes(settings):
    """Airflow refuses users outside assigned_users (403); an auth manager that lets every
    user answer (simple_auth_manager_all_admins) is caught here, after the fact."""
    from airflow.sdk.exceptions import AirflowFailException
    set_card(settings, MODEL, approvals={"owners": ["ana", "bo"], "four_eyes": True})
    release = release_of(settings)
    with pytest.raises(AirflowFailException, match="four eyes: ana triggered"):
        approval().execute_complete(context_for(release, user="ana"), event("Approve", "ana"))
    release2 = release_of(settings)
    out = approval().execute_complete(context_for(release2, user="ana"), event("Approve", "bo"))
    assert out["chosen_options"] == ["Approve"]
    answered = ev.of_kind(release2.events(), ev.ApprovalAnswered)[-1]
    assert answered.by == "bo"


# ---- failures and rollbacks --------------------------------------------------------------------

def test_a_rollback_is_told_with_its_reason_and_report(settings, webhook_receiver, smtp_sink,
                                                        smtp_conn):
    set_card(settings, MODEL, notify={"webhooks": [webhook_receiver.url_for("/hook")],
                               "email": ["oncall@example.com"], "smtp_conn_id": smtp_conn,
                               "from_email": "canary@example.com"})
    release = release_of(settings)
    release.record(ev.WeightSet(weight=5, step=1))
    release.record_failure("step_01.analyze", "latency_p95 fail: P95 74 ms vs 0.6 ms")
    release.record(ev.RolledBack(reason="latency_p95 fail: P95 74 ms vs 0.6 ms",
                                 incomplete=["candidate: DeployError: cannot stop"]))
    from paddle_canary.airflow.release_notices import ReleaseOutcomeNotifier
    ReleaseOutcomeNotifier()(context_for(release))
    (hook,) = webhook_receiver.wait_for()
    fields = hook.json["paddle_canary"]
    assert fields["kind"] == "rolled_back" and fields["outcome"] == "rolled_back"
    assert fields["reason"].startswith("latency_p95 fail")
    assert fields["incomplete"] == ["candidate: DeployError: cannot stop"]
    assert fields["links"]["report"].endswith(".html")
    assert "ROLLBACK INCOMPLETE" in hook.json["text"]
    (mail,) = smtp_sink.wait_for()
    assert mail.subject == f"Release rolled back: {MODEL} v2"
    assert "highest weight reached: 5 %" in mail.text()


def test_an_undeliverable_notice_is_logged_not_fatal(settings, webhook_receiver, caplog):
    webhook_receiver.status = 500
    set_card(settings, MODEL, notify={"webhooks": [webhook_receiver.url_for("/hooks/secret-token")]})
    release = release_of(settings)
    release.record_failure("deploy_candidate", "boom")
    from paddle_canary.airflow.release_notices import ReleaseOutcomeNotifier
    ReleaseOutcomeNotifier()(context_for(release))  # does not raise
    webhook_receiver.wait_for()
    with pytest.raises(notify.NotifyError) as info:
        notify.post_webhook(webhook_receiver.url_for("/hooks/secret-token"),
                            notify.outcome_message(release.plan, release.events(),
                                                   airflow_url=None, report=None))
    assert "answered 500" in str(info.value) and "secret-token" not in str(info.value)
