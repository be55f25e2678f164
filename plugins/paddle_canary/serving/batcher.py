"""Coalesce the rows of concurrent requests into one predictor call (dynamic batching).

A request adds its rows to the pending batch and yields to the event loop once; every request
that reached the loop meanwhile joins the same batch, and the first one to resume scores them
all. At 16 concurrent clients a call scores ~10 rows: one Paddle call and one list-to-array
conversion per batch instead of per request (bench/RESULTS.md, "Serving"). No timer: an idle
server scores a lone request one loop iteration after it arrives.

Rows come in and scores go out as plain Python lists (JSON gives lists; the response wants
floats); the float32 array exists only inside a flush. Inference runs inline on the event-loop
thread: for a network this small a thread hop costs more than the inference. Each request gets
its own slice of scores back and judges its own rows (a NaN in one request's row fails only that
request). A predictor error reaches every request of the batch it broke.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

MAX_ROWS_PER_CALL = 512


class _Slot:
    __slots__ = ("rows", "scores", "error")

    def __init__(self, rows: list):
        self.rows = rows
        self.scores: list[float] | None = None
        self.error: BaseException | None = None


class MicroBatcher:
    """``await score(rows)``: rows are lists of numbers, the result one float per row."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray],
                 max_rows: int = MAX_ROWS_PER_CALL):
        self._predict = predict
        self._max_rows = max_rows
        self._pending: list[_Slot] = []
        self._pending_rows = 0
        self.calls = 0  # predictor calls made, and rows scored by them (rows/calls = batch size)
        self.rows = 0

    def _run(self, rows: list) -> list[float]:
        self.calls += 1
        self.rows += len(rows)
        return self._predict(np.array(rows, dtype=np.float32)).tolist()

    async def score(self, rows: list) -> list[float]:
        """Scores for ``rows``, computed together with the other requests of this moment."""
        if len(rows) >= self._max_rows:  # a large batch request runs on its own
            return self._run(rows)
        slot = _Slot(rows)
        self._pending.append(slot)
        self._pending_rows += len(rows)
        if self._pending_rows >= self._max_rows:
            self.flush()
        else:
            await asyncio.sleep(0)  # let the other requests of this moment join
            if slot.scores is None and slot.error is None:
                self.flush()
        if slot.error is not None:
            raise slot.error
        return slot.scores

    def flush(self) -> None:
        """Score every pending request now."""
        pending, self._pending, self._pending_rows = self._pending, [], 0
        if not pending:
            return
        try:
            if len(pending) == 1:
                pending[0].scores = self._run(pending[0].rows)
                return
            scores = self._run([row for slot in pending for row in slot.rows])
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
            for slot in pending:
                slot.error = exc
            return
        start = 0
        for slot in pending:
            end = start + len(slot.rows)
            slot.scores = scores[start:end]
            start = end
