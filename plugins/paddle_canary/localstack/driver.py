"""Follow a ``model_release`` run over the REST API and answer its approvals, as a person would.

Used by the demo and the end-to-end tests; summarises a finished run from its journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from paddle_canary.airflow_rest import AirflowUnreachable
from paddle_canary.release import events as ev
from paddle_canary.release.journal import Journal


ANSWER_AFTER_S = 3.0


def asked_a_while_ago(item: dict, seconds: float = ANSWER_AFTER_S) -> bool:
    """True once an approval has waited ``seconds``. Airflow 3.3 can fail an approval answered
    within about a second of being asked (see ``ReleaseApprovalOperator``); people never are
    that fast, and scripts should not be either."""
    created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
    return (datetime.now(timezone.utc) - created).total_seconds() >= seconds


def journal_events(home: Path, model: str, run_id: str) -> list[ev.Event]:
    return Journal.of_run(home, model, run_id).read()


def finished_early(home: Path, model: str, run_id: str) -> bool:
    """The rollback has done its work; the rest of the graph is only being marked failed."""
    return any(e.outcome != ev.PROMOTED_OUTCOME
               for e in ev.of_kind(journal_events(home, model, run_id), ev.Finished))


def drive(client, run_id: str, home: Path, model: str, timeout: float,
          answer: str | Callable[[dict], str] = "Approve",
          log: Callable[[str], None] = lambda _m: None,
          until: Callable[[dict[str, str]], bool] | None = None) -> dict:
    """Follow ``run_id`` until it ends (or its rollback is done), answering every approval with
    ``answer`` (or ``answer(item)``). Returns the run as the REST API gives it. ``until``: also
    return as soon as it holds for the run's task states (``{task_id: state}``)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    first_seen: dict[tuple, float] = {}
    answered: set[tuple] = set()
    while time.monotonic() < deadline:
        try:
            run = _follow(client, run_id, answer, log, until, seen, answered, first_seen)
        except AirflowUnreachable as exc:  # a busy or restarting api-server: ask again
            log(f"  {exc}; asking again")
            run = None
        if run is not None and (until is not None or run["state"] in ("success", "failed")
                                or finished_early(home, model, run_id)):
            return run
        time.sleep(1.0)
    raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f}s")


def _follow(client, run_id, answer, log, until, seen: dict, answered: set,
            first_seen: dict) -> dict | None:
    """One look at the run: log state changes, answer approvals. Returns the run when
    ``until`` holds, else the run as it stands (``None`` while ``until`` does not hold)."""
    states = client.task_instances(run_id)
    if until is not None and until(states):
        return client.run(run_id)
    for task, state in sorted(states.items()):
        if state and seen.get(task) != state and state not in ("scheduled", "queued",
                                                               "skipped", "upstream_failed"):
            log(f"  {task}: {state}")
        seen[task] = state
    for item in client.pending_approvals(run_id):
        task = item["task_instance"]["task_id"]
        # A retried approval task (Airflow's resume race, a restarted scheduler) asks again:
        # each try is a new question.
        # The wait runs from when this try was first seen waiting: Airflow keeps the first
        # try's created_at on a retried approval, so created_at alone can be long past.
        key = (task, item["task_instance"].get("try_number"), item.get("created_at"))
        waited = time.monotonic() - first_seen.setdefault(key, time.monotonic())
        if key in answered or not asked_a_while_ago(item) or waited < ANSWER_AFTER_S:
            continue
        choice = answer(item) if callable(answer) else answer
        log(f"  approval asked: {item.get('subject')}")
        log(f"    Required Actions page: {client.required_actions_url(run_id, task)}")
        client.answer(run_id, task, choice)
        answered.add(key)
        log(f"    answered {choice} over the REST API")
    run = client.run(run_id)
    if until is not None and run["state"] not in ("success", "failed"):
        return None
    return run


def summary(home: Path, model: str, run_id: str, run_state: str) -> dict:
    """Outcome, steps reached, why, the confirmations a person was asked for (steps that ended
    inconclusive), and the seconds from first canary traffic to weight 0."""
    events = journal_events(home, model, run_id)
    plan = ev.plan_in(events)
    weights = ev.of_kind(events, ev.WeightSet)
    first_traffic = next((e.ts for e in weights if e.weight > 0), None)
    first_fail = next((e.ts for e in ev.of_kind(events, ev.Look)
                       if e.verdict.get("status") == "fail"), None)
    cuts = [e.ts for e in ev.of_kind(events, ev.Cut)]
    cut = cuts[0] if cuts else None  # the trigger's cut; the rollback task cuts again after
    reports = sorted((Path(home) / "reports" / model).glob(f"*{run_id[-8:]}*.html"))
    return {
        "run_id": run_id, "dag_run": run_state,
        "candidate": plan["candidate"] if plan else None,
        "baseline": plan["baseline"] if plan else None,
        "outcome": ev.outcome(events),
        "steps_reached": [e.weight for e in weights],
        "shadow_phase": any(e.share > 0 for e in ev.of_kind(events, ev.MirrorSet)),
        "confirmations": sum(1 for e in ev.of_kind(events, ev.ApprovalRequested)
                             if e.task.endswith(".confirm")),
        "reason": ev.failure_reason(events),
        "traffic_to_weight0_s": cut - first_traffic if cut and first_traffic else None,
        "failing_look_to_weight0_s": cut - first_fail if cut and first_fail else None,
        # what leaving the cut to the rollback task would give (the baseline in the bench)
        "failing_look_to_rollback_cut_s": cuts[-1] - first_fail if cuts and first_fail else None,
        "report": str(reports[-1]) if reports else None,
    }


def summary_table(results: list[dict]) -> list[str]:
    """The demos' table, a line each (header first): model, candidate, outcome, the steps
    reached (``shadow`` first when it had a shadow phase), the confirmations a person was asked
    for, the first failing look to weight 0, and the reason; then each report's path."""
    lines = [f"{'model':<12} {'candidate':<10} {'outcome':<12} {'steps reached':<22} "
             f"{'confirms':>8} {'fail->cut':>9}  reason"]
    for r in results:
        steps = ",".join((["shadow"] if r.get("shadow_phase") else [])
                         + [str(w) for w in r.get("steps_reached") or []])
        t = (f"{r['failing_look_to_weight0_s']:.1f} s" if r.get("failing_look_to_weight0_s")
             else "-")
        lines.append(f"{r.get('model') or '?':<12} {r.get('candidate') or '?':<10} "
                     f"{r.get('outcome') or '?':<12} {steps:<22} "
                     f"{r.get('confirmations', '?'):>8} {t:>9}  "
                     f"{(r.get('reason') or r.get('error') or '')[:50]}")
    return lines + [f"report: {r.get('report')}" for r in results]

