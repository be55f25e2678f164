"""The /metrics exposition: the shared names, every series labelled, promtool-clean."""

from __future__ import annotations

import shutil
import subprocess
import threading

import numpy as np
import pytest

from paddle_canary import telemetry
from paddle_canary.serving.metrics import ServingMetrics


def series(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_counts_land_in_the_shared_series():
    m = ServingMetrics("risk-score", "v7", "sha256:abc", "cpu")
    m.scored(np.array([0.2], np.float32), ["approve"], 0.0015)
    m.scored(np.array([0.7, 0.01, 0.99], np.float32), ["reject", "approve", "reject"], 0.004)
    m.refused()
    m.failed(0.2)
    s = series(m.exposition().decode())

    def get(name, **labels):
        want = {"model": "risk-score", "version": "v7", **labels}
        hits = [v for k, v in s.items() if k.startswith(name + "{")
                and all(f'{lk}="{lv}"' in k for lk, lv in want.items())]
        assert len(hits) == 1, (name, labels, hits)
        return hits[0]

    assert get(telemetry.REQUESTS, outcome="ok") == 2
    assert get(telemetry.REQUESTS, outcome="invalid_input") == 1
    assert get(telemetry.REQUESTS, outcome="error") == 1
    assert get(telemetry.DECISIONS, decision="reject") == 2
    assert get(telemetry.DECISIONS, decision="approve") == 2
    assert get(telemetry.SCORE + "_count") == 4
    assert get(telemetry.SCORE + "_bucket", le="0.05") == 1
    assert get(telemetry.SCORE + "_bucket", le="0.25") == 2
    assert get(telemetry.SCORE + "_bucket", le="+Inf") == 4
    assert get(telemetry.REQUEST_LATENCY + "_count") == 3  # ok + error; refused not timed
    assert get(telemetry.REQUEST_LATENCY + "_bucket", le="0.002") == 1
    assert get(telemetry.MODEL_INFO, content_hash="sha256:abc", device="cpu") == 1
    # every series carries model and version
    assert all('model="risk-score"' in k and 'version="v7"' in k for k in s)
    buckets = [k for k in s if k.startswith(telemetry.REQUEST_LATENCY + "_bucket")]
    assert len(buckets) == len(telemetry.LATENCY_BUCKETS) + 1


def test_counters_exist_at_zero_before_any_request():
    s = series(ServingMetrics("m", "v", "h", "cpu").exposition().decode())
    for outcome in ("ok", "invalid_input", "error"):
        assert any(telemetry.REQUESTS in k and f'outcome="{outcome}"' in k and v == 0
                   for k, v in s.items())
    for decision in ("approve", "reject"):
        assert any(telemetry.DECISIONS in k and f'decision="{decision}"' in k and v == 0
                   for k, v in s.items())


def test_updates_from_many_threads_are_all_counted():
    m = ServingMetrics("m", "v", "h", "cpu")

    def work():
        for _ in range(2000):
            m.scored(np.array([0.3], np.float32), ["approve"], 0.001)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.requests["ok"] == 16000 and sum(m.score.counts) == 16000


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")
def test_promtool_accepts_the_exposition():
    m = ServingMetrics("risk-score", "v1", "sha256:abc", "cpu")
    m.scored(np.array([0.2, 0.9], np.float32), ["approve", "reject"], 0.003)
    m.refused()
    out = subprocess.run(["promtool", "check", "metrics"], input=m.exposition(),
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
