"""Synthetic users sending /predict through a gateway in a background thread, for tests that
inject faults while users are served and then count what those users saw."""

from __future__ import annotations

import threading
import time

from paddle_canary.loadgen import run_load


class Users:
    """``rate`` requests/s from ``users`` synthetic users until :meth:`finish`; the summary
    keeps every request's record, and :meth:`failures_between` counts the failed ones in a
    wall-clock window."""

    def __init__(self, url: str, reference, rate: float = 100.0, users: int = 3000,
                 duration_s: float = 900.0):
        self._stop = threading.Event()
        self._result: dict = {}
        self.started = time.time()
        self._thread = threading.Thread(target=lambda: self._result.update(summary=run_load(
            url, users=users, duration_s=duration_s, rate=rate, concurrency=4,
            reference=reference, stop=self._stop, keep_records=True, timeout_s=5)),
            daemon=True)
        self._thread.start()

    def finish(self):
        self._stop.set()
        self._thread.join(60)
        return self._result["summary"]

    def failures_between(self, summary, start: float, end: float) -> int:
        return sum(1 for r in summary.records
                   if not r.ok and start <= self.started + r.start_s <= end)
