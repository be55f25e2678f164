"""What people do to a release by hand, besides approving: pause and resume it, promote it in
full (a hotfix), and undo a promotion during the bake period. Plain Python (no Airflow).

Each is a journal event (:mod:`events`: ``paused``, ``resumed``, ``full_promotion``,
``undone``) written into the journal of the model's release, so the DAG's tasks and the
analysis trigger see it at their next look and the report shows it:

* **pause** holds the weight: the step's timer stops (:func:`step_end` moves the end out by the
  time held) while the judge keeps looking, so a failed gate still cuts the candidate;
* **promote --full** skips the steps below 100 % that remain (:func:`skips_step`); the 100 %
  step, its approval and the promotion run as planned;
* **undo**, after promotion while the previous version still runs (before its teardown):
  traffic back to the previous version at once, the registry's stable pointer back (which
  cancels the teardown: :meth:`Release.teardown` skips a version that is stable again), the
  promoted version rejected with the reason and stopped.
"""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Any

from paddle_canary.errors import UserError
from paddle_canary.release import events as ev
from paddle_canary.release import lock
from paddle_canary.release.journal import Journal


class ManualActionRefused(UserError):
    """The action does not apply to the release as it is now (the message says why)."""


def who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): still record something
        return "unknown"


# ---- what the journal says ------------------------------------------------------------------

def paused_since(events: list[ev.Event]) -> float | None:
    """When the current hold began, or None when the release is not paused."""
    since = None
    for e in events:
        if isinstance(e, ev.Paused) and since is None:
            since = e.ts
        elif isinstance(e, ev.Resumed):
            since = None
    return since


def paused_seconds(events: list[ev.Event], start: float, now: float) -> float:
    """Seconds the release was held within [start, now] (a hold still open counts to now)."""
    total, since = 0.0, None
    for e in events:
        if isinstance(e, ev.Paused) and since is None:
            since = e.ts
        elif isinstance(e, ev.Resumed) and since is not None:
            total += max(0.0, min(e.ts, now) - max(since, start))
            since = None
    if since is not None:
        total += max(0.0, now - max(since, start))
    return total


def step_end(events: list[ev.Event], counted_from: float, until: float, now: float) -> float:
    """The step's end, ``until`` as planned at ``counted_from``, moved out by the time held
    since then. While a hold is open it moves with ``now``: the step never ends paused."""
    return until + paused_seconds(events, counted_from, now)


def full_promotion(events: list[ev.Event]) -> ev.FullPromotionRequested | None:
    return ev.first(events, ev.FullPromotionRequested)


def skips_step(events: list[ev.Event], weight: int | None) -> str | None:
    """Why the step at ``weight`` is skipped (a full promotion was asked), or None."""
    asked = full_promotion(events)
    if asked is None or weight is None or weight >= 100:
        return None
    return f"skipped: promote --full by {asked.by} ({asked.reason})"


# ---- finding the release a person means -------------------------------------------------------

def running_journal(settings, model: str) -> tuple[str, Journal, dict[str, Any]]:
    """The run that holds ``model``'s release lock, its journal and its plan."""
    holder = lock.holder(settings.registry_root, model)
    if not holder:
        raise ManualActionRefused(f"no release of {model} is running")
    run_id = holder["run_id"]
    journal = Journal.of_run(settings.home, model, run_id)
    plan = ev.plan_in(journal.read())
    if plan is None:
        raise ManualActionRefused(f"release {run_id} holds {model} but its journal has no plan; "
                                  f"'paddle-canary unlock {model}' frees it")
    return run_id, journal, plan


def baking_journal(settings, model: str) -> tuple[Journal, dict[str, Any]]:
    """The newest promoted release of ``model`` whose previous version is not torn down yet."""
    folder = Path(settings.releases_dir) / model
    journals = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if folder.is_dir() else []
    for path in journals:
        journal = Journal(path)
        events = journal.read()
        if ev.first(events, ev.Promoted) is None:
            continue
        if ev.first(events, ev.TornDown) or ev.first(events, ev.Undone):
            break  # the newest promotion is over: nothing to undo
        return journal, ev.plan_in(events)
    raise ManualActionRefused(f"no promotion of {model} is in its bake period (the previous "
                              "version is torn down, or nothing was promoted); release the "
                              "previous version again instead")


# ---- the actions -------------------------------------------------------------------------------

def pause(settings, model: str, reason: str = "", by: str | None = None) -> ev.Paused:
    _, journal, _ = running_journal(settings, model)
    events = journal.read()
    _refuse_when_over(events, model, "pause")
    since = paused_since(events)
    if since is not None:
        raise ManualActionRefused(f"{model}'s release is already paused (since "
                                  f"{time.strftime('%H:%M:%S', time.localtime(since))})")
    return journal.append(ev.Paused(by=by or who(), reason=reason))


def resume(settings, model: str, by: str | None = None) -> ev.Resumed:
    _, journal, _ = running_journal(settings, model)
    if paused_since(journal.read()) is None:
        raise ManualActionRefused(f"{model}'s release is not paused")
    return journal.append(ev.Resumed(by=by or who()))


def promote_full(settings, model: str, reason: str, by: str | None = None) \
        -> ev.FullPromotionRequested:
    if not reason or not reason.strip():
        raise ManualActionRefused("promote --full needs a --reason (it skips the safety steps)")
    _, journal, _ = running_journal(settings, model)
    events = journal.read()
    _refuse_when_over(events, model, "promote --full")
    if full_promotion(events):
        raise ManualActionRefused(f"a full promotion of {model} was already asked")
    return journal.append(ev.FullPromotionRequested(by=by or who(), reason=reason.strip()))


def _refuse_when_over(events: list[ev.Event], model: str, what: str) -> None:
    if ev.first(events, ev.Failure) or ev.first(events, ev.RolledBack):
        raise ManualActionRefused(f"{model}'s release is failing or rolled back: nothing to {what}")
    if ev.first(events, ev.Promoted):
        raise ManualActionRefused(f"{model}'s release is promoted already: nothing to {what}")


def undo(release, reason: str, by: str | None = None) -> dict[str, Any]:
    """Undo ``release``'s promotion (see the module docstring). Refused before any change when
    it is not in its bake period or the previous version is not healthy; otherwise every part
    is attempted, traffic first, and the parts that failed are recorded and returned."""
    from paddle_canary.traffic.base import ModelRoute
    if not reason or not reason.strip():
        raise ManualActionRefused("undo needs a --reason")
    p = release.plan
    events = release.events()
    if ev.first(events, ev.Promoted) is None:
        raise ManualActionRefused(f"{p.model} {p.candidate} was not promoted: nothing to undo")
    if ev.first(events, ev.Undone) or ev.first(events, ev.TornDown):
        raise ManualActionRefused(f"the bake period of {p.model} {p.candidate} is over")
    holder = lock.holder(release.registry.root, p.model)
    if holder and holder.get("run_id") != p.run_id:
        raise ManualActionRefused(f"another release of {p.model} is running "
                                  f"({holder.get('run_id')}); roll that back first")
    stable = release.registry.pointers(p.model).stable
    if stable != p.candidate:
        raise ManualActionRefused(f"{p.model}'s stable version is {stable}, not {p.candidate}: "
                                  "a later change happened; undo refused")
    health = release.runtime.probe(p.model, p.baseline)
    endpoint = release.runtime.endpoint(p.model, p.baseline)
    if not health.healthy or endpoint is None:
        raise ManualActionRefused(f"the previous version {p.baseline} is {health.state} "
                                  f"({health.detail}): traffic stays on {p.candidate}")
    reason = f"undone by {by or who()}: {reason.strip()}"
    incomplete: list[str] = []
    release.router.apply_verified(
        ModelRoute(p.model, stable=release.router.backend(p.baseline, endpoint.url)))
    try:
        release.registry.promote(p.model, p.baseline, reason=reason)
    except Exception as exc:  # noqa: BLE001 - record it, then do the rest
        incomplete.append(f"registry stable: {type(exc).__name__}: {exc}")
    try:
        release.registry.mark_rejected(p.model, p.candidate, reason)
    except Exception as exc:  # noqa: BLE001
        incomplete.append(f"registry reject: {type(exc).__name__}: {exc}")
    try:
        release.runtime.remove(p.model, p.candidate)
    except Exception as exc:  # noqa: BLE001
        incomplete.append(f"stop {p.candidate}: {type(exc).__name__}: {exc}")
    release.record(ev.Undone(by=by or who(), reason=reason, restored=p.baseline,
                             version=p.candidate, incomplete=incomplete))
    return {"restored": p.baseline, "rejected": p.candidate, "reason": reason,
            "incomplete": incomplete}
