"""Micro-batching: concurrent requests share one predictor call and each gets its own scores."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from paddle_canary.serving.batcher import MicroBatcher


class Recorder:
    """A stand-in predictor: score = 2 x the row's first value; records each call's size."""

    def __init__(self, fail: bool = False):
        self.calls: list[int] = []
        self.fail = fail

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        assert rows.dtype == np.float32 and rows.ndim == 2
        self.calls.append(len(rows))
        if self.fail:
            raise RuntimeError("model broke")
        return rows[:, 0] * 2


def rows_of(value: float, n: int) -> list[list[float]]:
    return [[value] * 4 for _ in range(n)]


def test_concurrent_requests_are_scored_together_in_order():
    rec = Recorder()
    batcher = MicroBatcher(rec)
    requests = [rows_of(float(i), 1 + i % 3) for i in range(16)]

    async def main():
        return await asyncio.gather(*(batcher.score(r) for r in requests))

    results = asyncio.run(main())
    total = sum(len(r) for r in requests)
    assert rec.calls == [total]  # one call for all 16
    for i, (rows, scores) in enumerate(zip(requests, results)):
        assert scores == [2.0 * i] * len(rows)
    assert (batcher.calls, batcher.rows) == (1, total)


def test_a_lone_request_is_scored_without_waiting_for_company():
    rec = Recorder()
    out = asyncio.run(MicroBatcher(rec).score(rows_of(1.0, 1)))
    assert out == [2.0] and rec.calls == [1]


def test_large_requests_run_alone_and_batches_are_capped():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_rows=8)

    async def main():
        return await asyncio.gather(batcher.score(rows_of(1.0, 9)),
                                    *(batcher.score(rows_of(1.0, 3)) for _ in range(4)))

    results = asyncio.run(main())
    assert [len(r) for r in results] == [9, 3, 3, 3, 3]
    assert rec.calls[0] == 9 and all(n <= 9 for n in rec.calls[1:]) and sum(rec.calls) == 21


def test_a_predictor_error_reaches_every_request_of_its_batch():
    batcher = MicroBatcher(Recorder(fail=True))

    async def main():
        return await asyncio.gather(*(batcher.score(rows_of(1.0, 1)) for _ in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "model broke" in str(r) for r in results)
    batcher._predict = Recorder()  # and the batcher keeps working afterwards
    assert asyncio.run(batcher.score(rows_of(1.0, 1))) == [2.0]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_each_request_gets_the_scores_of_its_own_rows(n):
    batcher = MicroBatcher(lambda rows: rows.sum(axis=1))
    reqs = [[[4.0 * k + j for j in range(4)]] for k in range(n)]

    async def main():
        return await asyncio.gather(*(batcher.score(r) for r in reqs))

    assert [s[0] for s in asyncio.run(main())] == [sum(r[0]) for r in reqs]
