"""Triggers run in Airflow's triggerer: waits that hold no worker slot.

They live in the plugins package because the triggerer imports them by path; a trigger defined
in a DAG file fails there with ModuleNotFoundError. ``serialize()`` round-trips ``__init__``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from paddle_canary.release import controller


class CanaryAnalysisTrigger(BaseTrigger):
    """Poll the judge for one step until it fails or the step's interval ends.

    The judge's intervals are time-uniform (valid at every look), so asking it every
    ``poll_s`` seconds does not inflate false rollbacks. On a fail the trigger moves the
    candidate's weight to 0 at once, before the task resumes: rollback in seconds, not after
    another scheduling round. Cutting to 0 is idempotent, so running this trigger twice (the
    triggerer may restart it) does no harm.
    """

    def __init__(self, plan: dict[str, Any], since: float, until: float, poll_s: float):
        super().__init__()
        self.plan = plan
        self.since = since
        self.until = until
        self.poll_s = poll_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"plan": self.plan, "since": self.since, "until": self.until,
                 "poll_s": self.poll_s})

    async def run(self):
        verdict: dict[str, Any] = {}
        while True:
            try:
                verdict = await asyncio.to_thread(controller.judge, self.plan, self.since)
            except Exception as exc:  # noqa: BLE001 - a broken look is never a pass or a fail
                self.log.exception("analysis look failed")
                verdict = {"status": "inconclusive", "reason": f"analysis error: {exc}",
                           "gates": []}
            if verdict["status"] == "fail":
                await asyncio.to_thread(controller.cut_traffic, self.plan,
                                        controller.verdict_reason(verdict))
                verdict["cut_at"] = time.time()
                break
            now = time.time()
            if now >= self.until:
                break
            await asyncio.sleep(min(self.poll_s, max(0.0, self.until - now)))
        yield TriggerEvent({"verdict": verdict, "looked_until": time.time()})
