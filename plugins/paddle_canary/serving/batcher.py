"""Coalesce the rows of concurrent requests into one predictor call (dynamic batching).

Requests that reach the event loop together are scored together: the first one schedules a
flush on the next loop iteration, the others join it. At 16 concurrent clients this turns ~16
calls of ~28 µs into one of ~42 µs (bench/RESULTS.md, "Serving"). A request never waits for
a timer: an idle server scores a lone request on the very next iteration.

Inference runs inline on the event-loop thread: for a network this small a thread hop costs
more than the inference. Scores come back per request in request order; each request judges
its own rows (one NaN row fails only the request that sent it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

MAX_ROWS_PER_CALL = 512


class MicroBatcher:
    def __init__(self, predict: Callable[[np.ndarray], np.ndarray],
                 max_rows: int = MAX_ROWS_PER_CALL):
        self._predict = predict
        self._max_rows = max_rows
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self._rows = 0
        self._scheduled = False
        self.calls = 0  # predictor calls made, and rows scored by them (rows/calls = batch size)
        self.rows = 0

    async def score(self, rows: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if len(rows) >= self._max_rows:  # a large batch request runs on its own
            self.calls += 1
            self.rows += len(rows)
            return self._predict(rows)
        fut = loop.create_future()
        self._pending.append((rows, fut))
        self._rows += len(rows)
        if self._rows >= self._max_rows:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        pending, self._pending, self._rows, self._scheduled = self._pending, [], 0, False
        if not pending:
            return
        self.calls += 1
        self.rows += sum(len(rows) for rows, _ in pending)
        try:
            if len(pending) == 1:
                parts = [self._predict(pending[0][0])]
            else:
                scores = self._predict(np.concatenate([rows for rows, _ in pending]))
                cuts = np.cumsum([len(rows) for rows, _ in pending])[:-1]
                parts = np.split(scores, cuts)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for _, fut in pending:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), part in zip(pending, parts):
            if not fut.done():  # a client that went away cancelled its future
                fut.set_result(part)
