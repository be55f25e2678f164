"""Triggers run in Airflow's triggerer: waits that hold no worker slot.

They live in the plugins package because the triggerer imports them by path; a trigger defined
in a DAG file fails there with ModuleNotFoundError. ``serialize()`` round-trips ``__init__``, and
every value is a plain JSON type (a numpy float in a TriggerEvent cancels the trigger).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from paddle_canary.airflow import loglines
from paddle_canary.release import controller, messages


#: A paused step hands back to its sensor this long after its planned end (the deferral times
#: out 600 s after it), and is deferred again until its moved end.
HOLD_HANDBACK_S = 300.0


class AnalysisEvent(TriggerEvent):
    """The analysis trigger's event; the triggerer logs it by its repr, so that is one line
    (status and reason), not the whole verdict (several kB)."""

    def __repr__(self) -> str:
        try:
            return f"TriggerEvent<{loglines.event_line(self.payload)}>"
        except Exception:  # noqa: BLE001 - a repr never raises
            return "TriggerEvent<analysis event>"


class CanaryAnalysisTrigger(BaseTrigger):
    """Poll the judge for one step until it fails or the step's interval ends.

    The judge's intervals are time-uniform (valid at every look), so asking it every
    ``poll_s`` seconds does not inflate false rollbacks; each look is given the previous one
    (``previous``), whose intervals it may keep and whose health it continues. On a fail the
    trigger cuts the candidate's traffic at once, before the task resumes: rollback in seconds,
    not after another scheduling round. Cutting is idempotent, so running this trigger twice
    (the triggerer may restart it) does no harm.
    """

    def __init__(self, plan: dict[str, Any], since: float, until: float, poll_s: float,
                 step: int | None = None, weight: int | None = None,
                 previous: dict[str, Any] | None = None, counted_from: float | None = None):
        super().__init__()
        self.counted_from = counted_from  # pauses after this move the end out (None: the step's start)
        self.plan = plan
        self.since = since
        self.until = until
        self.poll_s = poll_s
        self.step = step
        self.weight = weight
        self.previous = previous

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"plan": self.plan, "since": self.since, "until": self.until,
                 "poll_s": self.poll_s, "step": self.step, "weight": self.weight,
                 "previous": self.previous, "counted_from": self.counted_from})

    def look(self, release, previous):
        return release.judge(self.since, step=self.step, weight=self.weight, previous=previous)

    def manual_step_end(self, release, now: float) -> tuple[float, bool]:
        """The step's end moved out by any pause (``paddle-canary pause``), and whether a
        ``promote --full`` ends this step below 100 % now (see release.manual)."""
        from paddle_canary.release import manual
        events = release.events()
        counted_from = self.counted_from
        if counted_from is None:
            counted_from = self.until - float(self.plan.get("step_interval_s") or 0)
        until = manual.step_end(events, counted_from, self.until, now)
        return until, bool(manual.skips_step(events, self.weight))

    async def run(self):
        # in a thread: the settings may come from Airflow Variables (a sync SDK call)
        release = await asyncio.to_thread(controller.open_release, self.plan)
        verdict: dict[str, Any] = {}
        previous = self.previous
        while True:
            try:
                verdict = await asyncio.to_thread(self.look, release, previous)
                previous = verdict
            except Exception as exc:  # noqa: BLE001 - a broken look is never a pass or a fail
                self.log.exception("analysis look failed")
                verdict = {"status": "inconclusive", "reason": f"analysis error: {exc}",
                           "gates": []}
            loglines.log_safely(self.log.info, loglines.look_line, verdict, self.step, self.weight)
            if verdict["status"] == "fail":
                try:
                    await asyncio.to_thread(release.cut, messages.verdict_reason(verdict))
                    verdict["cut_at"] = time.time()
                except Exception as exc:  # noqa: BLE001 - the rollback task cuts again
                    self.log.exception("cutting the candidate's traffic failed")
                    verdict["cut_error"] = f"{type(exc).__name__}: {exc}"
                break
            now = time.time()
            until, manual_end = await asyncio.to_thread(self.manual_step_end, release, now)
            if now >= until or manual_end:
                break
            if now >= self.until + HOLD_HANDBACK_S:
                # Held past the planned end: hand back before the deferral's timeout (planned
                # end + 600 s); the sensor waits again until the moved end.
                yield AnalysisEvent({"verdict": verdict, "looked_until": now, "hold_until": until})
                return
            await asyncio.sleep(min(self.poll_s, max(0.0, until - now)))
        yield AnalysisEvent({"verdict": verdict, "looked_until": time.time()})


class BakeTrigger(BaseTrigger):
    """The bake period (``release.bake``): look at the new stable every ``poll_s`` seconds
    until ``until`` (the old version's teardown); a breach undoes the promotion here, at once.
    Its event: ``{"status": "baked" | "breach" | "undone", "reason", "undo" |
    "undo_refused"}``. A look that raises acts on nothing (logged); undo is idempotent in
    effect (a second one is refused: the promotion is already undone)."""

    def __init__(self, plan: dict[str, Any], until: float, poll_s: float):
        super().__init__()
        self.plan, self.until, self.poll_s = plan, until, poll_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"plan": self.plan, "until": self.until, "poll_s": self.poll_s})

    async def run(self):
        from paddle_canary.release import bake

        # in a thread: the settings may come from Airflow Variables (a sync SDK call)
        release = await asyncio.to_thread(controller.open_release, self.plan)
        while True:
            now = time.time()
            if now >= self.until:
                yield TriggerEvent({"status": "baked", "reason": "no guard breached"})
                return
            try:
                seen = await asyncio.to_thread(bake.watch_once, release, now)
            except Exception as exc:  # noqa: BLE001 - a broken look acts on nothing
                self.log.exception("bake look failed")
                seen = {"status": bake.INCONCLUSIVE, "reason": f"bake look error: {exc}"}
            if seen["status"] == bake.FAIL:
                self.log.warning("bake guard breached: %s", seen["reason"])
                yield TriggerEvent({"status": "breach", "reason": seen["reason"],
                                    **{k: seen[k] for k in ("undo", "undo_refused")
                                       if k in seen}})
                return
            if seen["status"] == bake.UNDONE:
                yield TriggerEvent({"status": "undone", "reason": seen["reason"]})
                return
            await asyncio.sleep(min(self.poll_s, max(0.0, self.until - time.time())))
