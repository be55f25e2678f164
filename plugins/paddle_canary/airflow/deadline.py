"""The release's deadline alert (Airflow's ``DeadlineAlert``): a run still going
``DEADLINE_MARGIN`` after its planned end tells the model's people where it stands.

A DAG-level deadline has one interval for every run, but each run plans its own duration (steps,
step interval, shadow phase, teardown delay, from the request and ``model.yaml``). So the
reference is our own, :class:`PlannedRunEnd`: when the run is created, its request is resolved
against the registry and the deadline is put at ``queued (or created) + plan.nominal_s``; the
alert's interval is the margin for what the plan cannot know (approvals, extensions, pauses,
promotion-window waits). A request that does not resolve gets no deadline (the run is refused
within seconds by ``resolve_plan``), and evaluating never raises: Airflow evaluates it while it
creates the run (in the API server for a REST or UI trigger), where an exception would refuse
the trigger itself.

The reference is registered with Airflow through the plugin (``deadline_references``); the
callback (:func:`release_overdue`) runs in the triggerer.

``PADDLE_CANARY_DEADLINE_MARGIN_S`` (read when the DAG is parsed; default 7200): the margin.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk.definitions.deadline import BaseDeadlineReference

log = logging.getLogger(__name__)

ENV_MARGIN = "PADDLE_CANARY_DEADLINE_MARGIN_S"
DEFAULT_MARGIN_S = 7200.0


def margin() -> timedelta:
    """The deadline's margin after a run's planned end (``$PADDLE_CANARY_DEADLINE_MARGIN_S``)."""
    raw = os.environ.get(ENV_MARGIN) or DEFAULT_MARGIN_S
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_MARGIN} must be a number of seconds, got {raw!r}") from None
    if seconds < 0:
        raise ValueError(f"{ENV_MARGIN} must be >= 0, got {seconds}")
    return timedelta(seconds=seconds)


def planned_end(conf: dict[str, Any] | None, start: datetime, run_id: str = "",
                registry_root: str | None = None) -> datetime | None:
    """``start`` + the nominal duration of the plan ``conf`` resolves to against the registry
    at ``registry_root`` (None: the environment's; no settings source is asked: see
    :func:`_registry_variable`), or None when it does not resolve (logged).
    Never raises."""
    try:
        from paddle_canary.release.controller import registry_at
        from paddle_canary.release.plan import resolve_plan
        from paddle_canary.settings import Settings
        settings = Settings.from_env(registry_root=registry_root or Settings.env_registry_root())
        plan = resolve_plan(registry_at(settings), dict(conf or {}), run_id=run_id)
        return start + timedelta(seconds=plan.nominal_s)
    except Exception as exc:  # noqa: BLE001 - see the module docstring: never refuse a trigger
        log.warning("no deadline for release run %s: its request does not resolve (%s: %s)",
                    run_id, type(exc).__name__, exc)
        return None


def _registry_variable(session) -> str | None:
    """The Variable ``paddle_canary_registry`` read with the caller's ``session``.

    Not ``Variable.get``: in the scheduler that opens and closes the thread's scoped session
    under the caller, whose objects are then detached (seen: the scheduler died with
    DetachedInstanceError creating an asset-triggered run)."""
    from airflow.models import Variable
    from sqlalchemy import select

    from paddle_canary.airflow.connections import REGISTRY_VARIABLE
    env = os.environ.get(f"AIRFLOW_VAR_{REGISTRY_VARIABLE.upper()}")
    if env:
        return env
    row = session.scalar(select(Variable).where(Variable.key == REGISTRY_VARIABLE))
    return row.val if row is not None else None


class PlannedRunEnd(BaseDeadlineReference):
    """A release run's planned end (see the module docstring). Everything it reads from
    Airflow goes through the session it is given."""

    required_kwargs = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session, dag_id: str, run_id: str, **kwargs) -> datetime | None:
        try:
            from airflow.models import DagRun
            from sqlalchemy import select
            run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id,
                                                      DagRun.run_id == run_id))
            registry = _registry_variable(session)
        except Exception as exc:  # noqa: BLE001 - never refuse a trigger
            log.warning("no deadline for %s %s: %s", dag_id, run_id, exc)
            return None
        if run is None:
            return None
        start = run.queued_at or run.run_after or datetime.now(timezone.utc)
        return planned_end(run.conf, start, run_id, registry)


async def release_overdue(context: dict[str, Any] | None = None, **kwargs) -> None:
    """The deadline's callback (in the triggerer): notify the model's people (``model.yaml``
    ``notify``) that the run is overdue, with where it stands; logged either way."""
    await asyncio.to_thread(_notify_overdue, context or {})


def _notify_overdue(context: dict[str, Any]) -> None:
    from paddle_canary.airflow.notifiers import notifiers_for, send
    from paddle_canary.airflow.release_notices import airflow_url, policy_of
    from paddle_canary.ops import notify
    from paddle_canary.release import controller
    from paddle_canary.release import events as ev
    from paddle_canary.release.journal import Journal
    from paddle_canary.release.plan import ReleasePlan
    from paddle_canary.report.links import report_url
    from paddle_canary.settings import Settings

    run = context.get("dag_run") or {}
    run_id, conf = run.get("dag_run_id") or run.get("run_id"), run.get("conf") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    model = conf.get("model")
    if not run_id or not model:
        log.error("release deadline missed, but the context names no run/model: %s", run)
        return
    settings = Settings.from_env()
    events = Journal.of_run(settings.home, model, run_id).read()
    recorded = ev.first(events, ev.PlanRecorded)
    if recorded is None:
        log.error("release %s of %s missed its deadline %s before its plan was recorded",
                  run_id, model, deadline)
        return
    plan = ReleasePlan.from_dict(recorded.plan)
    release = controller.open_release(plan, settings)
    policy = policy_of(release)
    url = airflow_url(policy.notify)
    message = notify.overdue_message(plan, events, deadline=str(deadline),
                                     airflow_url=url,
                                     report=report_url(url or "", notify.DAG_ID, run_id))
    log.warning("%s: %s", message.title, message.text.replace("\n", "; "))
    if policy.notify.any:
        send(notifiers_for(policy.notify, message), context)
