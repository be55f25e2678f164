"""Operators of the ``model_release`` DAG: a few lines each over ``paddle_canary.release``.

Every task reads the plan that ``resolve_plan`` pushed to XCom. A task that fails records why
in the release journal first, so the rollback and the report can say what happened.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.exceptions import HITLRejectException
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from paddle_canary.airflow.triggers import CanaryAnalysisTrigger
from paddle_canary.errors import UserError
from paddle_canary.release import controller
from paddle_canary.release.plan import ReleasePlan

PLAN_TASK = "resolve_plan"
# Airflow 3.3 can mark a task failed when it resumes within seconds of parking (an approval
# answered at once, a deferral whose trigger fires at once): the executor's late "success" for
# the parked attempt finds the task already queued again ("state changed externally"). Tasks
# that park get one quick retry; their real failures raise AirflowFailException, never retried.
RACE_RETRY = timedelta(seconds=1)


def plan_of(context) -> dict[str, Any]:
    plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
    if not plan:
        raise AirflowSkipException("no release plan: the request was refused")
    return plan


def step_weight(plan: dict[str, Any], slot: int) -> int:
    weight = ReleasePlan.from_dict(plan).step_at(slot)
    if weight is None:
        raise AirflowSkipException(f"the plan has {len(plan['steps'])} steps; slot {slot + 1} unused")
    return weight


class ReleaseTask(BaseOperator):
    """Run ``self.work(plan, context)``; record a failure's reason in the journal, then fail."""

    def execute(self, context):
        plan = plan_of(context)
        try:
            return self.work(plan, context)
        except (AirflowSkipException, AirflowFailException):
            raise
        except Exception as exc:
            controller.record_failure(plan, self.task_id, f"{type(exc).__name__}: {exc}")
            raise AirflowFailException(f"{self.task_id}: {exc}") from exc

    def work(self, plan: dict[str, Any], context) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class ResolvePlanOperator(BaseOperator):
    """Turn the run's params (or the registering asset event) into a plan; refuse bad requests."""

    def execute(self, context):
        request = {k: v for k, v in dict(context["params"]).items() if v not in (None, "", [])}
        for events in (context.get("triggering_asset_events") or {}).values():
            for event in events:  # scheduled by a registration: the event names the version
                request.update({k: v for k, v in (event.extra or {}).items()
                                if k in ("model", "version")})
        try:
            return controller.prepare(request, run_id=context["dag_run"].run_id)
        except UserError as exc:
            raise AirflowFailException(f"release refused: {exc}") from exc


class BuildImageOperator(ReleaseTask):
    def work(self, plan, context):
        if plan["runtime"] == "local":
            raise AirflowSkipException(
                "runtime 'local' runs the package in local processes: no image to build")
        return controller.build_image(plan)


class ValidateModelOperator(ReleaseTask):
    def work(self, plan, context):
        return controller.validate_candidate(plan)


class DeployCandidateOperator(ReleaseTask):
    def work(self, plan, context):
        return controller.deploy_candidate(plan)


class SetWeightOperator(ReleaseTask):
    def __init__(self, *, slot: int, **kwargs):
        super().__init__(**kwargs)
        self.slot = slot

    def work(self, plan, context):
        return controller.set_step_weight(plan, step_weight(plan, self.slot))


class CanaryAnalysisSensor(BaseSensorOperator):
    """Wait out one step in the triggerer while the judge is polled; end early on a fail.

    Inconclusive at the end extends the step (up to ``max_extensions`` times); after that the
    verdict goes to the step's confirmation approval instead of moving on.
    """

    def __init__(self, *, slot: int, set_weight_task: str, **kwargs):
        # A failed gate is an AirflowFailException and never retried; the one retry is for
        # Airflow 3.3's race when a deferral resumes within seconds (see RACE_RETRY).
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("retry_delay", RACE_RETRY)
        super().__init__(**kwargs)
        self.slot = slot
        self.set_weight_task = set_weight_task

    def poke(self, context) -> bool:  # one look, for reschedule/poke modes
        plan = plan_of(context)
        since = context["ti"].xcom_pull(task_ids=self.set_weight_task)["at"]
        return controller.judge(plan, since)["status"] == "pass"

    def execute(self, context):
        plan = plan_of(context)
        step_weight(plan, self.slot)
        since = context["ti"].xcom_pull(task_ids=self.set_weight_task)["at"]
        self._wait(plan, since, until=since + plan["step_interval_s"], extensions=0)

    def _wait(self, plan, since: float, until: float, extensions: int):
        self.defer(
            trigger=CanaryAnalysisTrigger(plan=plan, since=since, until=until,
                                          poll_s=plan["poll_interval_s"]),
            method_name="execute_complete",
            kwargs={"since": since, "extensions": extensions},
            timeout=timedelta(seconds=until - time.time() + 600),
        )

    def execute_complete(self, context, event, since: float, extensions: int):
        plan = plan_of(context)
        verdict = event["verdict"]
        controller.record_verdict(plan, self.task_id, verdict)
        if verdict["status"] == "fail":
            reason = controller.verdict_reason(verdict)
            controller.record_failure(plan, self.task_id, reason)
            raise AirflowFailException(f"gate failed: {reason}")
        if verdict["status"] == "inconclusive" and extensions < plan["max_extensions"]:
            self.log.info("inconclusive (%s); extending the step", controller.verdict_reason(verdict))
            self._wait(plan, since, until=time.time() + plan["step_interval_s"],
                       extensions=extensions + 1)
        return verdict


class ReleaseApprovalOperator(ApprovalOperator):
    """A person approves in the UI (Required Actions) or over REST; Reject rolls back.

    ``when="before"``: asked before the slot's weight is applied, if the plan says so.
    ``when="inconclusive"``: asked when the slot's analysis stayed inconclusive.
    """

    def __init__(self, *, slot: int, when: str, analysis_task: str | None = None, **kwargs):
        kwargs.setdefault("subject", f"Release step {slot + 1}")
        # One retry for Airflow 3.3's race (see RACE_RETRY); a Reject is an
        # AirflowFailException, which is never retried.
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("retry_delay", RACE_RETRY)
        super().__init__(fail_on_reject=True, **kwargs)
        self.slot, self.when, self.analysis_task = slot, when, analysis_task

    def execute(self, context):
        plan = plan_of(context)
        if self.when == "before" and ReleasePlan.from_dict(plan).step_at(self.slot) is None:
            # The first unused slot skips every later step task in one go: letting each of them
            # start a worker just to skip itself took about a minute on two cores.
            later = [t for t in context["task"].get_flat_relatives(upstream=False)
                     if t.task_id.startswith("step_")]
            self.log.info("the plan has %d steps: skipping the %d tasks of the unused slots",
                          len(plan["steps"]), len(later))
            self.skip(ti=context["ti"], tasks=later)
        weight = step_weight(plan, self.slot)
        release = f"{plan['model']} {plan['candidate']} (stable {plan['baseline']})"
        if self.when == "before":
            if not ReleasePlan.from_dict(plan).needs_approval_before(weight):
                raise AirflowSkipException(f"no approval planned before {weight} %")
            self.subject = f"Move {weight} % of traffic to {release}?"
            self.body = controller.approval_body(plan, weight)
        else:
            verdict = context["ti"].xcom_pull(task_ids=self.analysis_task) or {}
            if verdict.get("status") != "inconclusive":
                raise AirflowSkipException("analysis was conclusive: no confirmation needed")
            self.subject = f"Analysis inconclusive at {weight} % for {release}: go on?"
            self.body = controller.verdict_markdown(verdict)
        controller.record_event(plan, "approval_requested", task=self.task_id, weight=weight)
        return super().execute(context)

    def execute_complete(self, context, event):
        plan = plan_of(context)
        chosen = (event.get("chosen_options") or ["?"])[0]
        controller.record_event(plan, "approval_answered", task=self.task_id, answer=chosen,
                                by=str(event.get("responded_by_user")))
        if chosen == self.REJECT:
            controller.record_failure(plan, self.task_id, "rejected by a person at approval")
        try:
            return super().execute_complete(context, event)
        except HITLRejectException as exc:
            raise AirflowFailException(f"rejected by {event.get('responded_by_user')}") from exc


class PromoteOperator(ReleaseTask):
    def work(self, plan, context):
        return controller.promote(plan)


class TeardownOperator(BaseOperator):
    """Stop the old version ``teardown_delay_s`` after promotion, waiting in the triggerer.

    The moment is counted from the promotion recorded in the journal, so a retry does not
    push it further out."""

    def __init__(self, **kwargs):
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", RACE_RETRY)
        super().__init__(**kwargs)

    def execute(self, context):
        plan = plan_of(context)
        promoted = next((e["ts"] for e in controller.events(plan) if e["event"] == "promoted"),
                        time.time())
        moment = (datetime.fromtimestamp(promoted, timezone.utc)
                  + timedelta(seconds=plan["teardown_delay_s"]))
        controller.record_event(plan, "teardown_scheduled", at=moment.isoformat())
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def execute_complete(self, context, event=None):
        return controller.teardown(plan_of(context))


class RollbackOperator(BaseOperator):
    """Weight 0 first, then the candidate marked rejected with the reason, then stopped; then
    the report is written and the model freed at once, without waiting for the rest of the
    graph to be marked upstream_failed."""

    def execute(self, context):
        plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
        if not plan:
            raise AirflowSkipException("nothing to roll back: the request was refused before any change")
        result = controller.rollback(plan)
        return {**result, **controller.finish(plan, run_id=context["dag_run"].run_id)}


class ReportOperator(BaseOperator):
    """Write the rollout report whatever the outcome, and free the model for the next release."""

    def execute(self, context):
        plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
        return controller.finish(plan, run_id=context["dag_run"].run_id)
