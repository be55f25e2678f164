"""Reconcile what a crash can leave behind, model by model: report it, repair what is safe.

Findings (``kind``):

* ``stale_lock``: the release lock names an Airflow run that is no longer queued or running.
  Repair: the release is rolled back the way ``paddle-canary rollback`` does it (users to
  stable, candidate released - not rejected: the fault was not its own - and stopped), the
  reason recorded in that release's journal, the lock freed.
* ``traffic_without_release``: no release holds the model, yet the gateway sends the candidate
  traffic (weight, header route or mirror). Repair: cut it to 0 (traffic to stable is the safe
  side), recorded in the newest journal of the model.
* ``weight_disagrees``: a live release's last recorded weight is not the gateway's. Reported
  only: the watchdog never acts on a model whose lock is held by a live run.
* ``orphan_version``: a version runs that is neither stable, nor the locked candidate, nor the
  previous version in its bake period, and gets no traffic. Repair: stop it.
* ``teardown_overdue``: a bake period ended (``teardown_scheduled`` passed by more than
  ``grace_s``) and the previous version still runs while its run is gone. Repair: stop it (only
  when it is not stable again), recorded as ``torn_down``.
* ``stable_unhealthy``: the stable version does not answer /deep_health. Reported only.

A run whose state cannot be read is treated as live: nothing is repaired on a guess. Every
repair is idempotent and written to the journal. Plain Python: the parts come in as arguments.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from paddle_canary.release import events as ev
from paddle_canary.release import lock
from paddle_canary.release.journal import Journal

LIVE_STATES = ("queued", "running")
UNKNOWN = "unknown"
WATCHDOG = "watchdog"


@dataclasses.dataclass(frozen=True)
class Finding:
    model: str
    kind: str
    detail: str
    repaired: str | None = None  # what was done, when something was
    error: str | None = None     # the repair was attempted and failed

    def line(self) -> str:
        out = f"{self.model}: {self.kind}: {self.detail}"
        if self.repaired:
            out += f" -> repaired: {self.repaired}"
        if self.error:
            out += f" -> repair FAILED: {self.error}"
        return out


class UnreachableRouter:
    """Stands for a gateway that could not even be attached: every read raises its reason, so
    each model reports ``gateway_unreadable`` and nothing that needs the gateway is repaired."""

    def __init__(self, reason: str):
        self.reason = reason

    def live(self, model: str):
        raise RuntimeError(self.reason)

    route = live

    def apply_verified(self, route):
        raise RuntimeError(self.reason)


def journals(settings, model: str) -> list[Journal]:
    """The model's release journals, newest first."""
    folder = Path(settings.releases_dir) / model
    if not folder.is_dir():
        return []
    return [Journal(p) for p in sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime,
                                       reverse=True)]


def check_model(settings, model: str, *, registry, router, runtime,
                run_state: Callable[[str], str], open_release: Callable[[dict], Any],
                repair: bool = True, grace_s: float = 600.0,
                now: float | None = None) -> list[Finding]:
    now = time.time() if now is None else now
    found: list[Finding] = []
    holder = lock.holder(registry.root, model)
    state = run_state(holder["run_id"]) if holder else None
    live = holder is not None and state not in ("success", "failed", "gone")
    pointers = registry.pointers(model)
    try:
        route = router.live(model)
    except Exception as exc:  # noqa: BLE001 - report the gateway, repair nothing that needs it
        route, route_error = None, f"{type(exc).__name__}: {exc}"
    else:
        route_error = None
    if route_error:
        found.append(Finding(model, "gateway_unreadable", route_error))

    if holder and not live:
        found.append(_stale_lock(settings, model, holder, state, open_release, repair))
    elif holder and live and route is not None:
        journal = Journal.of_run(settings.home, model, holder["run_id"])
        events = journal.read()
        weights = ev.of_kind(events, ev.WeightSet)
        last = weights[-1] if weights else None
        cut = ev.of_kind(events, ev.Cut)
        expected = 0 if (cut and (last is None or cut[-1].ts > last.ts)) or last is None \
            else last.weight
        if route.candidate is not None and route.weight != expected and \
                not ev.first(events, ev.Promoted):
            found.append(Finding(model, "weight_disagrees",
                                 f"the gateway sends {route.weight} %, the journal of "
                                 f"{holder['run_id']} says {expected} % (reported only: its run "
                                 f"is {state})"))
    elif holder is None and route is not None and route.candidate is not None and \
            (route.weight or route.header or route.mirror):
        found.append(_cut_unowned(settings, model, route, router, repair))

    baking = _baking(settings, model)
    keep = {pointers.stable, pointers.candidate, holder.get("candidate") if holder else None,
            baking["plan"]["baseline"] if baking else None}
    if route is not None:
        keep |= {route.stable.version if route.stable else None,
                 route.candidate.version if route.candidate else None}
    for endpoint in runtime.endpoints(model):
        if endpoint.version in keep:
            continue
        finding = Finding(model, "orphan_version", f"{endpoint.version} runs ({endpoint.url}) "
                                                   "with no release, no traffic, not stable")
        if repair and not live:
            finding = _attempt(finding, lambda v=endpoint.version: runtime.remove(model, v),
                               f"stopped {endpoint.version}")
        found.append(finding)

    if baking and baking["due"] is not None and now > baking["due"] + grace_s:
        found.append(_overdue(settings, model, baking, registry, runtime, run_state, repair, now))

    if pointers.stable:
        health = runtime.probe(model, pointers.stable)
        if not health.healthy:
            found.append(Finding(model, "stable_unhealthy",
                                 f"stable {pointers.stable} is {health.state}: {health.detail}"))
    return found


def _attempt(finding: Finding, action: Callable[[], Any], done: str) -> Finding:
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - reported, never hidden
        return dataclasses.replace(finding, error=f"{type(exc).__name__}: {exc}")
    return dataclasses.replace(finding, repaired=done)


def _stale_lock(settings, model, holder, state, open_release, repair) -> Finding:
    run_id = holder["run_id"]
    finding = Finding(model, "stale_lock", f"the release lock names run {run_id}, which is "
                                           f"{state or 'gone'}")
    if not repair:
        return finding
    journal = Journal.of_run(settings.home, model, run_id)
    plan = ev.plan_in(journal.read())
    if plan is None:
        return _attempt(finding, lambda: lock.release(settings.registry_root, model, run_id),
                        "lock freed (the run had no plan: nothing had changed)")

    def roll_back():
        release = open_release(plan)
        if not ev.first(release.events(), ev.Promoted):
            if not ev.first(release.events(), ev.RolledBack):
                release.record_failure(WATCHDOG, f"release run {run_id} is {state or 'gone'}; "
                                                 "rolled back by the watchdog", blame=WATCHDOG)
                result = release.rollback()
                if result["incomplete"]:
                    raise RuntimeError("rollback incomplete: " + "; ".join(result["incomplete"]))
        release.finish(run_id)

    return _attempt(finding, roll_back, "rolled back to stable (candidate released, not "
                                        "rejected), outcome recorded, lock freed")


def _cut_unowned(settings, model, route, router, repair) -> Finding:
    finding = Finding(model, "traffic_without_release",
                      f"no release holds {model}, yet candidate {route.candidate.version} gets "
                      f"{route.weight} % (header {bool(route.header)}, mirror {route.mirror} %)")
    if not repair:
        return finding

    def cut():
        router.apply_verified(route.replace(weight=0, header=None, mirror=0))
        newest = journals(settings, model)
        if newest:
            newest[0].append(ev.Cut(reason="watchdog: candidate traffic with no release"))

    return _attempt(finding, cut, "candidate traffic cut to 0 %")


def _baking(settings, model: str) -> dict | None:
    """The newest promotion whose previous version was not torn down, with the teardown's due
    time (None when not scheduled yet)."""
    for journal in journals(settings, model):
        events = journal.read()
        if ev.first(events, ev.Promoted) is None:
            continue
        if ev.first(events, ev.TornDown) or ev.first(events, ev.Undone) or \
                ev.first(events, ev.TeardownSkipped):
            return None
        scheduled = ev.of_kind(events, ev.TeardownScheduled)
        due = datetime.fromisoformat(scheduled[-1].at).timestamp() if scheduled else None
        return {"journal": journal, "plan": ev.plan_in(events) or {}, "due": due}
    return None


def _overdue(settings, model, baking, registry, runtime, run_state, repair, now) -> Finding:
    plan, journal = baking["plan"], baking["journal"]
    old = plan.get("baseline")
    finding = Finding(model, "teardown_overdue",
                      f"{old} was due to stop {now - baking['due']:.0f} s ago "
                      f"(run {plan.get('run_id')})")
    state = run_state(plan.get("run_id", ""))
    if not repair or state in LIVE_STATES or state == UNKNOWN:
        return finding
    if registry.pointers(model).stable == old:
        return finding  # stable again (undone by hand): keep it

    def stop():
        runtime.remove(model, old)
        journal.append(ev.TornDown(version=old, extra={"by": WATCHDOG}))

    return _attempt(finding, stop, f"stopped {old}")


def check_all(settings, **parts) -> list[Finding]:
    found: list[Finding] = []
    for model in parts["registry"].models():
        try:
            found += check_model(settings, model, **parts)
        except Exception as exc:  # noqa: BLE001 - one model's trouble does not hide the others
            found.append(Finding(model, "check_failed", f"{type(exc).__name__}: {exc}"))
    return found


def write_status(settings, findings: list[Finding]) -> Path:
    """The last findings, for ``paddle-canary status`` (``<home>/watchdog.json``, 0600)."""
    import json
    import os
    path = Path(settings.home) / "watchdog.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"at": time.time(), "findings": [dataclasses.asdict(x) for x in findings]}, f)
    os.replace(tmp, path)
    return path


def read_status(settings) -> dict | None:
    import json
    try:
        return json.loads((Path(settings.home) / "watchdog.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
