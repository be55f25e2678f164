"""Operators of the ``model_release`` DAG: a few lines each over ``paddle_canary.release``.

Every task reads the plan that ``resolve_plan`` pushed to XCom and turns it into a
:class:`ReleasePlan` once, here at the boundary. A task that fails records why in the release
journal first, so the rollback and the report can say what happened.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.exceptions import HITLRejectException
from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.triggers.temporal import DateTimeTrigger, TimeDeltaTrigger
from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from paddle_canary.airflow import loglines, run_note, ui
from paddle_canary.airflow.triggers import BakeTrigger, CanaryAnalysisTrigger
from paddle_canary.errors import UserError
from paddle_canary.release import controller, messages
from paddle_canary.release import events as ev
from paddle_canary.release.plan import ReleasePlan
from paddle_canary.report import note as note_text

PLAN_TASK = "resolve_plan"
# Airflow 3.3 can mark a task failed when it resumes within seconds of parking (an approval
# answered at once, a deferral whose trigger fires at once): the executor's late "success" for
# the parked attempt finds the task already queued again ("state changed externally"). Tasks
# that park get one quick retry; their real failures raise AirflowFailException, never retried.
RACE_RETRY = timedelta(seconds=1)
# A step's weight change waiting on a pause (paddle-canary pause) looks again this often.
HOLD_POLL_S = 30
# Request fields whose empty list means something ("no approvals"); for the others an empty
# value from the form means "use the model's default".
EMPTY_MEANS_NONE = ("approvals_before",)


def plan_of(context) -> ReleasePlan:
    plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
    if not plan:
        raise AirflowSkipException("no release plan: the request was refused")
    return ReleasePlan.from_dict(plan)


def step_weight(plan: ReleasePlan, slot: int) -> int:
    weight = plan.step_at(slot)
    if weight is None:
        raise AirflowSkipException(f"the plan has {len(plan.steps)} steps; slot {slot + 1} unused")
    return weight


def skip_manually(release: controller.Release, weight: int) -> None:
    """Skip a step below 100 % once ``paddle-canary promote --full`` was asked."""
    from paddle_canary.release import manual
    why = manual.skips_step(release.events(), weight)
    if why:
        raise AirflowSkipException(why)


def request_of(params: dict[str, Any], asset_events=None) -> dict[str, Any]:
    """The release request from the run's params (or the registering asset event)."""
    request = {k: v for k, v in dict(params).items()
               if v is not None and v != "" and (v != [] or k in EMPTY_MEANS_NONE)}
    for events in (asset_events or {}).values():
        for event in events:  # scheduled by a registration: the event names the version
            request.update({k: v for k, v in (event.extra or {}).items()
                            if k in ("model", "version")})
    return request


class ReleaseTask(BaseOperator):
    """Run ``self.work(release, context)``; record a failure's reason in the journal, then fail."""

    def execute(self, context):
        release = controller.open_release(plan_of(context))
        try:
            result = self.work(release, context)
        except (AirflowSkipException, AirflowFailException):
            raise
        except Exception as exc:
            release.record_failure(self.task_id, f"{type(exc).__name__}: {exc}")
            raise AirflowFailException(f"{self.task_id}: {exc}") from exc
        run_note.note_release(context, release, self.log)
        return result

    def work(self, release: controller.Release, context) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class ResolvePlanOperator(BaseOperator):
    """Turn the run's params (or the registering asset event) into a plan; refuse bad requests."""

    def execute(self, context):
        request = request_of(context["params"], context.get("triggering_asset_events"))
        try:
            plan = controller.prepare(request, run_id=context["dag_run"].run_id)
        except UserError as exc:
            run_note.note_refused(context, request, str(exc), self.log)
            raise AirflowFailException(f"release refused: {exc}") from exc
        warning = ui.short_step_warning(plan.to_dict())
        if warning:
            self.log.warning(warning)
        run_note.set_note(context, note_text.plan_line(plan.to_dict())
                          + (f" · {warning}" if warning else ""), self.log)
        return plan.to_dict()


class BuildImageOperator(ReleaseTask):
    """The serving images of stable and the candidate (docker SDK; the build log goes to the
    task log line by line); skipped on the local runtime. XCom: the candidate's image name."""

    def work(self, release, context):
        built = release.build_images(log=self.log.info)
        if built is None:
            raise AirflowSkipException(
                "runtime 'local' runs the package in local processes: no image to build")
        candidate = built[release.plan.candidate]
        return candidate["pushed"] or candidate["tag"]


class ChooseValidationOperator(BaseBranchOperator):
    """Which validation runs: the GPU pod on Kubernetes, in process elsewhere. A branch, so the
    graph shows the path each run took."""

    def choose_branch(self, context):
        from paddle_canary.airflow.validation_pod import validation_task_for
        return validation_task_for(plan_of(context).runtime)


def record_pod_validation(plan: dict, summary: dict | None) -> None:
    """The validation pod's hook: its summary into the release journal and the registry."""
    controller.open_release(plan).record_validation("validate_model_pod", summary)


class ValidateModelOperator(ReleaseTask):
    def work(self, release, context):
        return release.validate()


class DeployCandidateOperator(ReleaseTask):
    def work(self, release, context):
        return release.deploy()


#: The analysis sensor's slot for the shadow phase (judged as step 0, before step 1's slot 0).
SHADOW_SLOT = -1


class StartShadowOperator(ReleaseTask):
    """The shadow phase, when the plan has one: mirror stable's requests to the candidate."""

    def work(self, release, context):
        if release.plan.shadow_s <= 0:
            raise AirflowSkipException("no shadow phase planned (shadow_s = 0)")
        return release.start_shadow()


class SetWeightOperator(ReleaseTask):
    def __init__(self, *, slot: int, **kwargs):
        super().__init__(**kwargs)
        self.slot = slot

    def work(self, release, context):
        weight = step_weight(release.plan, self.slot)
        skip_manually(release, weight)
        from paddle_canary.release import manual
        if manual.paused_since(release.events()) is not None:
            # paddle-canary pause holds the weight, even after an approval: look again later
            self.log.info("the release is paused: the weight stays until it is resumed")
            self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=HOLD_POLL_S)),
                       method_name="execute_after_hold")
        opens = release.window_wait(self.slot + 1, weight)
        if opens is not None:
            # the model's promotion window is closed: wait in the triggerer until it opens
            # (approvals can still be answered; a rollback never waits)
            self.log.info("outside the promotion window (%s): %d %% waits until %s UTC",
                          release.plan.window().describe(), weight,
                          datetime.fromtimestamp(opens, timezone.utc).isoformat(timespec="minutes"))
            self.defer(trigger=DateTimeTrigger(datetime.fromtimestamp(opens, timezone.utc)),
                       method_name="execute_after_hold")
        return release.set_step_weight(self.slot + 1, weight)

    def execute_after_hold(self, context, event=None):
        return self.execute(context)


class CanaryAnalysisSensor(BaseSensorOperator):
    """Wait out one step in the triggerer while the judge is polled; end early on a fail.

    Inconclusive at the end extends the step (up to ``max_extensions`` times); after that the
    verdict goes to the step's confirmation approval instead of moving on. The wait always
    defers (no worker slot held), so there is no ``poke``.
    """

    def __init__(self, *, slot: int, set_weight_task: str, **kwargs):
        # A failed gate is an AirflowFailException and never retried; the one retry is for
        # Airflow 3.3's race when a deferral resumes within seconds (see RACE_RETRY).
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("retry_delay", RACE_RETRY)
        super().__init__(**kwargs)
        self.slot = slot
        self.set_weight_task = set_weight_task

    def execute(self, context):
        plan = plan_of(context)
        if self.slot == SHADOW_SLOT:
            if plan.shadow_s <= 0:
                raise AirflowSkipException("no shadow phase planned (shadow_s = 0)")
            weight, interval = 0, plan.shadow_s
        else:
            weight, interval = step_weight(plan, self.slot), plan.step_interval_s
            skip_manually(controller.open_release(plan), weight)
        since = context["ti"].xcom_pull(task_ids=self.set_weight_task)["at"]
        self._wait(plan, since, until=since + interval, extensions=0, weight=weight)

    def _wait(self, plan: ReleasePlan, since: float, until: float, extensions: int, weight: int,
              previous: dict | None = None, counted_from: float | None = None):
        self.defer(
            trigger=CanaryAnalysisTrigger(plan=plan.to_dict(), since=since, until=until,
                                          poll_s=plan.poll_interval_s, step=self.slot + 1,
                                          weight=weight, previous=previous,
                                          counted_from=counted_from),
            method_name="execute_complete",
            kwargs={"since": since, "extensions": extensions, "weight": weight},
            timeout=timedelta(seconds=until - time.time() + 600),
        )

    def execute_complete(self, context, event, since: float, extensions: int, weight: int = 0):
        plan = plan_of(context)
        release = controller.open_release(plan)
        verdict = event["verdict"]
        loglines.log_safely(self.log.info, loglines.event_line, event)
        if event.get("hold_until") and verdict.get("status") != "fail":
            # paused (paddle-canary pause): wait again until the moved end of the step
            self._wait(plan, since, until=event["hold_until"], extensions=extensions,
                       weight=weight, previous=verdict, counted_from=event["looked_until"])
        if verdict.get("status") != "pass":  # green in Airflow either way: the note says
            run_note.set_task_note(context, f"analysis ended {verdict.get('status')}: "
                                            f"{verdict.get('reason') or ''}"[:1000], self.log)
        release.record_verdict(self.task_id, verdict, step=self.slot + 1, weight=weight)
        if verdict["status"] == "fail":
            reason = messages.verdict_reason(verdict)
            release.record_failure(self.task_id, reason,
                                   blame=(verdict.get("health") or {}).get("blame", "candidate"))
            raise AirflowFailException(f"gate failed: {reason}")
        if self.slot == SHADOW_SLOT:
            return verdict  # a preview: inconclusive moves on to the steps, judged again there
        if verdict["status"] == "inconclusive" and extensions < plan.max_extensions:
            self.log.info("inconclusive (%s); extending the step", messages.verdict_reason(verdict))
            self._wait(plan, since, until=time.time() + plan.step_interval_s,
                       extensions=extensions + 1, weight=weight, previous=verdict)
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
        if self.when == "before" and plan.step_at(self.slot) is None:
            # The first unused slot skips every later step task in one go: letting each of them
            # start a worker just to skip itself took about a minute on two cores.
            later = [t for t in context["task"].get_flat_relatives(upstream=False)
                     if t.task_id.startswith("step_")]
            self.log.info("the plan has %d steps: skipping the %d tasks of the unused slots",
                          len(plan.steps), len(later))
            self.skip(ti=context["ti"], tasks=later)
        weight = step_weight(plan, self.slot)
        release = controller.open_release(plan)
        skip_manually(release, weight)
        name = f"{plan.model} {plan.candidate} (stable {plan.baseline})"
        if self.when == "before":
            if not plan.needs_approval_before(weight):
                raise AirflowSkipException(f"no approval planned before {weight} %")
            self.subject = f"Move {weight} % of traffic to {name}?"
            self.body = messages.approval_body(plan, release.events(), weight,
                                               release.candidate_health())
        else:
            verdict = context["ti"].xcom_pull(task_ids=self.analysis_task) or {}
            if verdict.get("status") != "inconclusive":
                raise AirflowSkipException("analysis was conclusive: no confirmation needed")
            following = plan.step_at(self.slot + 1)
            if following is not None and plan.needs_approval_before(following):
                # one question, not two a few seconds apart: the next step's approval shows
                # this inconclusive verdict and asks whether to go on to `following`
                raise AirflowSkipException(
                    f"inconclusive at {weight} %: asked together with the approval before "
                    f"{following} % (step_{self.slot + 2:02d}.approve)")
            if following is None:  # the last step: going on means promoting
                self.subject = (f"Promote {plan.candidate} to stable? The analysis at {weight} % "
                                f"was inconclusive for {name}")
            else:
                self.subject = f"Analysis inconclusive at {weight} % for {name}: go on?"
            self.body = release.candidate_health() + "\n\n" + messages.verdict_markdown(verdict)
        from paddle_canary.airflow import release_notices
        try:
            asked = release_notices.configure_approval(
                self, release, context, weight=weight,
                kind="approval" if self.when == "before" else "confirmation")
        except UserError as exc:
            release.record_failure(self.task_id, f"approval cannot be asked: {exc}")
            raise AirflowFailException(f"approval cannot be asked: {exc}") from exc
        release.record(ev.ApprovalRequested(task=self.task_id, weight=weight, **asked))
        return super().execute(context)

    def execute_complete(self, context, event):
        from paddle_canary.airflow import release_notices
        release = controller.open_release(plan_of(context))
        chosen = (event.get("chosen_options") or ["?"])[0]
        by = release_notices.responder_of(event) or "timeout"
        release.record(ev.ApprovalAnswered(task=self.task_id, answer=chosen, by=by))
        refusal = release_notices.answer_refusal(release, context, event) \
            if chosen == self.APPROVE or event.get("timedout") else None
        if refusal:
            release.record_failure(self.task_id, refusal)
            raise AirflowFailException(refusal)
        if chosen == self.REJECT:
            release.record_failure(self.task_id, f"rejected by {by} at approval")
        try:
            return super().execute_complete(context, event)
        except HITLRejectException as exc:
            raise AirflowFailException(f"rejected by {event.get('responded_by_user')}") from exc


class PromoteOperator(ReleaseTask):
    def work(self, release, context):
        return release.promote()


class TeardownOperator(BaseOperator):
    """Stop the old version ``teardown_delay_s`` after promotion, waiting in the triggerer,
    where the bake guards watch the new stable meanwhile (``release.bake``: a breach undoes
    the promotion; the old version then stays).

    The moment is counted from the promotion recorded in the journal, so a retry does not
    push it further out."""

    def __init__(self, **kwargs):
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", RACE_RETRY)
        super().__init__(**kwargs)

    def execute(self, context):
        plan = plan_of(context)
        release = controller.open_release(plan)
        promoted = release.promoted_at() or time.time()
        moment = (datetime.fromtimestamp(promoted, timezone.utc)
                  + timedelta(seconds=plan.teardown_delay_s))
        release.record(ev.TeardownScheduled(at=moment.isoformat()))
        self.log.info(ui.teardown_wait_line(plan.to_dict(), promoted, moment))
        run_note.note_release(context, release, self.log)
        self.defer(trigger=BakeTrigger(plan.to_dict(), until=moment.timestamp(),
                                       poll_s=plan.poll_interval_s),
                   method_name="execute_complete")

    def execute_complete(self, context, event=None):
        release = controller.open_release(plan_of(context))
        event = event or {}
        if event.get("status") == "breach":
            if event.get("undo_refused"):
                raise AirflowFailException(f"{event.get('reason')}; undo refused: "
                                           f"{event['undo_refused']}")
            from paddle_canary.report.publish import refresh_report
            self.log.warning("promotion undone by the bake guard: %s", event.get("reason"))
            self.log.info("report written again: %s", refresh_report(release.plan))
        result = release.teardown()
        self.log.info("stopped the old version %s: %s", release.plan.baseline, result)
        run_note.note_release(context, release, self.log)
        return result


class RollbackOperator(BaseOperator):
    """Every user back on stable, then the candidate marked rejected with the reason and
    stopped; then the report is written and the model freed at once, without waiting for the
    rest of the graph to be marked upstream_failed."""

    def execute(self, context):
        plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
        if not plan:
            raise AirflowSkipException("nothing to roll back: the request was refused before any change")
        plan = ReleasePlan.from_dict(plan)
        release = controller.open_release(plan)
        failure = release.failure()
        result = release.rollback()
        loglines.log_safely(self._log_actions, loglines.rollback_lines, plan.to_dict(), result,
                            failure.blame if failure else "candidate")
        from paddle_canary.report.publish import finish_and_report
        result = {**result, **finish_and_report(plan, context["dag_run"].run_id,
                                                run_url=ui.run_url(context))}
        self.log.info(ui.outcome_line(result, ui.report_url(context)))
        run_note.note_release(context, controller.open_release(plan), self.log)
        return result

    def _log_actions(self, lines) -> None:
        for line in [lines] if isinstance(lines, str) else lines:
            (self.log.error if "FAILED" in line else self.log.info)(line)


class ReportOperator(BaseOperator):
    """Write the rollout report whatever the outcome, and free the model for the next release."""

    def execute(self, context):
        plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
        if not plan:
            self.log.info("outcome: %s; reason: the request was refused before any change "
                          "(resolve_plan's log says why); no report", ev.REFUSED)
            return {"outcome": ev.REFUSED, "report": None}
        from paddle_canary.report.publish import finish_and_report
        plan = ReleasePlan.from_dict(plan)
        result = finish_and_report(plan, context["dag_run"].run_id, run_url=ui.run_url(context))
        self.log.info(ui.outcome_line(result, ui.report_url(context)))
        run_note.note_release(context, controller.open_release(plan), self.log)
        return result
