"""The approvals' people side, applied at run time: who may answer (model.yaml owners, four
eyes), how long they have (``response_timeout`` with Reject as the default outcome) and who is
told (notifiers); and the notice sent when a release is rolled back or fails.

The DAG is one for every model, so these come from the model's ``model.yaml`` when the task
runs, not when the DAG is parsed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

from paddle_canary.airflow.notifiers import notifiers_for, send
from paddle_canary.ops import notify
from paddle_canary.ops.approvals import TIMEOUT_OUTCOME, ApprovalPolicy, Notify
from paddle_canary.release.plan import ReleasePlan

PLAN_TASK = "resolve_plan"


def policy_of(release) -> ApprovalPolicy:
    return ApprovalPolicy.from_model_card(release.registry.model_defaults(release.plan.model))


def triggered_by(context) -> str | None:
    run = context.get("dag_run")
    return getattr(run, "triggering_user_name", None) or None


def airflow_url(policy_notify: Notify) -> str | None:
    if policy_notify.airflow_url:
        return policy_notify.airflow_url
    from airflow.configuration import conf
    return conf.get("api", "base_url", fallback=None) or None


def configure_approval(operator, release, context, *, weight: int, kind: str) -> dict[str, Any]:
    """Set ``assigned_users``, ``response_timeout``, ``defaults`` (Reject) and ``notifiers`` on
    the approval ``operator`` from the model's policy. Raises ``ApprovalPolicyError`` (a
    UserError) when nobody could answer under four eyes; returns what was set, for the
    journal."""
    policy = policy_of(release)
    assigned = policy.assigned_users(triggered_by(context))
    operator.assigned_users = assigned or None
    operator.response_timeout = timedelta(seconds=policy.response_timeout_s)
    operator.defaults = [TIMEOUT_OUTCOME]
    message = notify.approval_message(release.plan, release.events(), task_id=operator.task_id,
                                      weight=weight, kind=kind,
                                      timeout_s=policy.response_timeout_s, assigned=assigned,
                                      airflow_url=airflow_url(policy.notify))
    operator.notifiers = notifiers_for(policy.notify, message)
    return {"assigned_users": [u["id"] for u in assigned],
            "timeout_s": policy.response_timeout_s}


def responder_of(event: dict[str, Any]) -> str | None:
    user = event.get("responded_by_user")
    if isinstance(user, dict):
        return user.get("id") or user.get("name")
    return str(user) if user else None


def answer_refusal(release, context, event: dict[str, Any]) -> str | None:
    """Why this answer must not move the release on: a timeout (Reject by default), or an
    approval by the user who triggered it under four eyes. None when the answer stands."""
    if event.get("timedout"):
        return "no answer within the approval's response timeout: rejected by default"
    return policy_of(release).refusal(responder_of(event), triggered_by(context))


class ReleaseOutcomeNotifier(BaseNotifier):
    """On the rollback task (success and failure callbacks): tell the model's people that the
    release was rolled back or failed, why, and where the report is."""

    template_fields = ()

    def notify(self, context) -> None:
        from paddle_canary.release import controller
        plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
        if not plan:
            return  # refused before any change: nothing to tell
        plan = ReleasePlan.from_dict(plan)
        release = controller.open_release(plan)
        try:
            policy = policy_of(release)
        except Exception as exc:  # noqa: BLE001 - a bad model.yaml must not hide the outcome
            self.log.error("cannot read the model's notification settings: %s", exc)
            return
        if not policy.notify.any:
            return
        from paddle_canary.report.html import report_paths
        from paddle_canary.settings import Settings
        html_path, _ = report_paths(Settings.from_env().reports_dir, plan.model, plan.run_id)
        message = notify.outcome_message(plan, release.events(),
                                         airflow_url=airflow_url(policy.notify),
                                         report=str(html_path))
        send(notifiers_for(policy.notify, message), context)
