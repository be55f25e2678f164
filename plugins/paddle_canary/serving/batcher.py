"""Coalesce the rows of concurrent requests into one predictor call (dynamic batching).

A request adds its rows to the pending batch and yields to the event loop once; every request
that reached the loop meanwhile joins the same batch, and the first one to resume scores them
all. At 16 concurrent clients this turns ~11 calls of ~28 µs into one of ~40 µs
(bench/RESULTS.md, "Serving"). No timer: an idle server scores a lone request one loop
iteration after it arrives.

Inference runs inline on the event-loop thread: for a network this small a thread hop costs
more than the inference. Each request gets its own slice of scores back and judges its own rows
(a NaN in one request's row fails only that request). A predictor error reaches every request
of the batch it broke.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

MAX_ROWS_PER_CALL = 512


class _Slot:
    __slots__ = ("rows", "scores", "error")

    def __init__(self, rows: np.ndarray):
        self.rows = rows
        self.scores: np.ndarray | None = None
        self.error: BaseException | None = None


class MicroBatcher:
    def __init__(self, predict: Callable[[np.ndarray], np.ndarray],
                 max_rows: int = MAX_ROWS_PER_CALL):
        self._predict = predict
        self._max_rows = max_rows
        self._pending: list[_Slot] = []
        self._pending_rows = 0
        self.calls = 0  # predictor calls made, and rows scored by them (rows/calls = batch size)
        self.rows = 0

    async def score(self, rows: np.ndarray) -> np.ndarray:
        """Scores for ``rows``, computed together with the other requests of this moment."""
        if len(rows) >= self._max_rows:  # a large batch request runs on its own
            self.calls += 1
            self.rows += len(rows)
            return self._predict(rows)
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
        self.calls += 1
        try:
            if len(pending) == 1:
                pending[0].scores = self._predict(pending[0].rows)
                self.rows += len(pending[0].rows)
                return
            rows = np.concatenate([slot.rows for slot in pending])
            self.rows += len(rows)
            scores = self._predict(rows)
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
            for slot in pending:
                slot.error = exc
            return
        start = 0
        for slot in pending:
            end = start + len(slot.rows)
            slot.scores = scores[start:end]
            start = end
