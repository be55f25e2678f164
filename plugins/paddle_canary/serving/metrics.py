"""The Prometheus series one serving process exposes, with the names in ``telemetry``.

A dedicated registry (no process/GC collectors) so that every series on ``/metrics`` carries
``model`` and ``version``. Children are bound once at start-up; every counter series exists from
the first scrape (at 0), so a rate over a quiet window is 0, not an empty result.
"""

from __future__ import annotations

import numpy as np
import prometheus_client as prom

from paddle_canary import telemetry

OUTCOMES = ("ok", "invalid_input", "error")
DECISIONS = ("approve", "reject")
CONTENT_TYPE = prom.CONTENT_TYPE_PLAIN_0_0_4


class ServingMetrics:
    def __init__(self, model: str, version: str, content_hash: str, device: str):
        prom.disable_created_metrics()  # no *_created series: nothing here needs them
        self.registry = prom.CollectorRegistry(auto_describe=True)
        labels = list(telemetry.LABELS)
        values = (model, version)
        latency = prom.Histogram(
            telemetry.REQUEST_LATENCY, "Time to answer a /predict request (batch counts once).",
            labels, buckets=telemetry.LATENCY_BUCKETS, registry=self.registry)
        score = prom.Histogram(
            telemetry.SCORE, "Scores returned, one observation per scored row.",
            labels, buckets=telemetry.SCORE_BUCKETS, registry=self.registry)
        decisions = prom.Counter(
            telemetry.DECISIONS, "Decisions returned, one per scored row.",
            labels + ["decision"], registry=self.registry)
        requests = prom.Counter(
            telemetry.REQUESTS, "/predict requests by outcome (invalid_input: the caller's "
            "fault; error: the model's or the server's).",
            labels + ["outcome"], registry=self.registry)
        info = prom.Gauge(
            telemetry.MODEL_INFO, "The model version this process serves (always 1).",
            labels + ["content_hash", "device"], registry=self.registry)
        info.labels(model, version, content_hash, device).set(1)
        self.latency = latency.labels(*values)
        self.score = score.labels(*values)
        self.decisions = {d: decisions.labels(*values, d) for d in DECISIONS}
        self.requests = {o: requests.labels(*values, o) for o in OUTCOMES}

    def scored(self, scores: np.ndarray, decisions: list[str], seconds: float) -> None:
        """A request answered with ``scores``."""
        for s in scores.tolist():
            self.score.observe(s)
        n_reject = decisions.count("reject")
        if n_reject:
            self.decisions["reject"].inc(n_reject)
        if len(decisions) - n_reject:
            self.decisions["approve"].inc(len(decisions) - n_reject)
        self.latency.observe(seconds)
        self.requests["ok"].inc()

    def failed(self, seconds: float) -> None:
        """A request the model or the server failed (counted against the model)."""
        self.latency.observe(seconds)
        self.requests["error"].inc()

    def refused(self) -> None:
        """A request refused as invalid input (not the model's fault; latency not observed)."""
        self.requests["invalid_input"].inc()

    def exposition(self) -> bytes:
        return prom.generate_latest(self.registry)
