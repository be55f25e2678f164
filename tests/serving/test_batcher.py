"""Micro-batching: concurrent requests share one predictor call and each gets its own scores."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from paddle_canary.serving.batcher import MicroBatcher


class Recorder:
    def __init__(self, fail: bool = False):
        self.calls: list[int] = []
        self.fail = fail

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        self.calls.append(len(rows))
        if self.fail:
            raise RuntimeError("model broke")
        return rows[:, 0] * 2  # a score that says which row it came from


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_scored_together_in_order():
    rec = Recorder()
    batcher = MicroBatcher(rec)
    requests = [np.full((1 + i % 3, 4), float(i), dtype=np.float32) for i in range(16)]

    async def main():
        return await asyncio.gather(*(batcher.score(r) for r in requests))

    results = run(main())
    assert rec.calls == [sum(len(r) for r in requests)]  # one call for all 16
    for i, (rows, scores) in enumerate(zip(requests, results)):
        assert scores.tolist() == [2.0 * i] * len(rows)
    assert (batcher.calls, batcher.rows) == (1, sum(len(r) for r in requests))


def test_a_lone_request_is_scored_without_waiting_for_company():
    rec = Recorder()
    batcher = MicroBatcher(rec)
    out = run(batcher.score(np.ones((1, 4), dtype=np.float32)))
    assert out.tolist() == [2.0] and rec.calls == [1]


def test_large_requests_run_alone_and_batches_are_capped():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_rows=8)

    async def main():
        return await asyncio.gather(batcher.score(np.ones((9, 4), np.float32)),
                                    *(batcher.score(np.ones((3, 4), np.float32))
                                      for _ in range(4)))

    results = run(main())
    assert [len(r) for r in results] == [9, 3, 3, 3, 3]
    assert rec.calls[0] == 9 and all(n <= 9 for n in rec.calls[1:]) and sum(rec.calls) == 21


def test_a_predictor_error_reaches_every_request_of_its_batch():
    batcher = MicroBatcher(Recorder(fail=True))

    async def main():
        return await asyncio.gather(*(batcher.score(np.ones((1, 4), np.float32))
                                      for _ in range(3)), return_exceptions=True)

    results = run(main())
    assert all(isinstance(r, RuntimeError) and "model broke" in str(r) for r in results)
    # and the batcher keeps working afterwards
    batcher._predict = Recorder()
    assert run(batcher.score(np.ones((1, 4), np.float32))).tolist() == [2.0]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_results_are_views_of_the_right_rows(n):
    batcher = MicroBatcher(lambda rows: rows.sum(axis=1))
    reqs = [np.arange(4 * k, 4 * k + 4, dtype=np.float32).reshape(1, 4) for k in range(n)]

    async def main():
        return await asyncio.gather(*(batcher.score(r) for r in reqs))

    assert [float(s[0]) for s in run(main())] == [float(r.sum()) for r in reqs]
