"""The shadow: the stable version loaded inside a candidate's serving process, scoring every
request the candidate answered, after it answered, for paired analysis.

Both versions are deterministic functions of the same request, so scoring each request with
both turns the judge's two-group comparison into a paired one: the rejection-rate difference is
the mean of per-row decision flips (variance: the flip rate, ~1 % for a good retrain, instead
of p(1 - p) ~ 0.23), which lets a good candidate pass in ~2,600 canary rows instead of ~47,500
(bench/RESULTS.md, "Paired analysis").

What it costs and where the line is:

* The shadow's result is never returned. It runs after the response was handed to the
  transport, so its time is not in the candidate's latency histogram (the latency gate is not
  biased against the candidate); its own time is exported (``paddle_canary_shadow_seconds``).
  It shares the process's event loop and CPU, so under load it delays other requests by about
  one extra (micro-batched) inference per batch; bench/shadow.py measures it.
* It holds a second copy of the stable model (parameters and one predictor per concurrent
  call). ``paddle-canary serve`` loads it only when the stable export's parameter file is at
  most ``--shadow-max-mb`` (default 1024 MiB); a larger model, or one that fails to load (e.g.
  out of GPU memory), is served without a shadow (a warning says why) and the judge falls back
  to the unpaired statistics: models too large to load twice are judged unpaired.
* Requests wait for the shadow at most ``max_pending_rows`` rows deep; beyond that (the
  process is overloaded) a request is answered but not shadow-scored (counted as skipped,
  reason ``overload``): the shadow never queues unbounded work behind users. Rows a shadow
  fails on (an exception, a non-finite score) are skipped with reason ``error``. Skipping
  depends on load, not on the row, so the paired rows stay a fair sample.
"""

from __future__ import annotations

import logging
import math
import time

from paddle_canary.serving.batcher import MicroBatcher
from paddle_canary.serving.logs import log

MAX_PENDING_ROWS = 4096


class Shadow:
    """``card`` (a registry ModelCard) and ``predictor`` of the stable version."""

    def __init__(self, card, predictor, metrics, candidate_threshold: float,
                 max_pending_rows: int = MAX_PENDING_ROWS):
        self.card = card
        self.version = card.version
        self.predictor = predictor
        self.metrics = metrics
        self.candidate_threshold = float(candidate_threshold)
        self.threshold = float(card.decision_threshold)
        self.max_pending_rows = max_pending_rows
        self.pending_rows = 0
        self.batcher = MicroBatcher(self._timed_predict)

    def _timed_predict(self, rows):
        t0 = time.perf_counter()
        try:
            return self.predictor.predict(rows)
        finally:
            self.metrics.shadow_time(time.perf_counter() - t0)

    async def score(self, rows: list, candidate_scores: list[float], request_id: str) -> None:
        """Score ``rows`` (already answered with ``candidate_scores``) and count the pairs.
        Never raises: the response is gone, nothing may reach the client from here."""
        n = len(rows)
        if self.pending_rows + n > self.max_pending_rows:
            self.metrics.shadow_skipped("overload")
            return
        self.pending_rows += n
        try:
            stable = await self.batcher.score(rows)
        except Exception as exc:  # noqa: BLE001 - counted and logged, never the user's problem
            self.metrics.shadow_skipped("error")
            log(logging.WARNING, "shadow error", request_id=request_id,
                shadow_version=self.version, error=f"{type(exc).__name__}: {exc}")
            return
        finally:
            self.pending_rows -= n
        try:
            pairs = [(c, s) for c, s in zip(candidate_scores, stable) if math.isfinite(s)]
            if len(pairs) < n:
                self.metrics.shadow_skipped("error")
                log(logging.WARNING, "shadow error", request_id=request_id,
                    shadow_version=self.version,
                    error=f"the shadow gave {n - len(pairs)} non-finite score(s)")
            if pairs:
                c, s = zip(*pairs)
                self.metrics.scored_paired(list(c), list(s), self.candidate_threshold,
                                           self.threshold)
        except Exception as exc:  # noqa: BLE001
            self.metrics.shadow_skipped("error")
            log(logging.ERROR, "shadow error", request_id=request_id, exc_info=True,
                error=f"{type(exc).__name__}: {exc}")
