"""The load generator against a real serving process, as a library and as a process."""

from __future__ import annotations

import json
import signal
import sys
import threading

import numpy as np
import pytest

from paddle_canary import process
from paddle_canary.errors import UserError
from paddle_canary.loadgen import RequestPlan, run_load, user_ids
from paddle_canary.telemetry import REQUESTS

CLI = [sys.executable, "-m", "paddle_canary.cli", "loadgen"]


def test_user_ids_are_stable_and_numbered():
    assert user_ids(3) == ["user-000001", "user-000002", "user-000003"]
    with pytest.raises(UserError):
        user_ids(0)


def test_request_plan_is_seeded_and_visits_every_user_once_per_cycle(reference_rows):
    a = RequestPlan(user_ids(50), reference_rows, seed=7)
    b = RequestPlan(user_ids(50), reference_rows, seed=7)
    assert [a.body(k) for k in range(120)] == [b.body(k) for k in range(120)]
    assert sorted(a.user(k) for k in range(50)) == user_ids(50)
    user, body = a.body(3)
    payload = json.loads(body)
    assert payload["user_id"] == user and len(payload["features"]) == reference_rows.shape[1]
    assert any(np.allclose(payload["features"], row) for row in reference_rows)


@pytest.mark.slow
def test_every_request_is_answered_and_summarised(serving_v1, reference_rows):
    summary = run_load(serving_v1 + "/predict", users=100, requests=300, concurrency=2,
                       reference=reference_rows, keep_records=True)
    assert (summary.requests, summary.ok, summary.failures) == (300, 300, 0)
    assert summary.by_version == {"v1": 300}
    assert summary.by_status == {"200": 300}
    lat = summary.latency_ms
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert len({r.user_id for r in summary.records}) == 100
    assert summary.throughput_rps > 0


@pytest.mark.slow
def test_rate_schedules_exactly_the_requests_due_within_the_duration(serving_v1, reference_rows):
    summary = run_load(serving_v1 + "/predict", users=10, duration_s=1.0, rate=40,
                       concurrency=2, reference=reference_rows)
    assert summary.requests == 40 and summary.failures == 0


@pytest.mark.slow
def test_failures_are_counted_not_hidden(serving_v1, reference_rows):
    closed = f"http://127.0.0.1:{process.free_port()}/predict"
    down = run_load(closed, users=5, requests=10, concurrency=1, reference=reference_rows)
    assert (down.failures, down.connection_errors, down.ok) == (10, 10, 0)
    assert down.error_samples and "Connection" in down.error_samples[0]
    wrong_path = run_load(serving_v1 + "/no-such-path", users=5, requests=10, concurrency=1,
                          reference=reference_rows)
    assert (wrong_path.failures, wrong_path.http_errors) == (10, 10)
    bad_rows = run_load(serving_v1 + "/predict", users=5, requests=10, concurrency=1,
                        reference=np.ones((3, 4)))  # wrong feature count: the server says 4xx
    assert bad_rows.http_errors == 10


@pytest.mark.slow
def test_requests_without_user_header(serving_v1, reference_rows):
    summary = run_load(serving_v1 + "/predict", users=10, requests=40, concurrency=1,
                       reference=reference_rows, without_user_share=0.25, keep_records=True)
    assert summary.ok == 40
    assert sum(r.user_id == "" for r in summary.records) == 10


def test_stop_event_ends_the_run_with_a_summary(reference_rows):
    stop = threading.Event()
    stop.set()
    summary = run_load("http://127.0.0.1:9/predict", users=5, duration_s=30, rate=10,
                       reference=reference_rows, stop=stop)
    assert summary.requests == 0 and summary.failures == 0


@pytest.mark.parametrize("kwargs", [
    {}, {"duration_s": 0}, {"requests": 0}, {"requests": 5, "rate": 0},
    {"requests": 5, "concurrency": 0}, {"requests": 5, "users": 0},
    {"requests": 5, "without_user_share": 2.0},
])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(UserError):
        run_load("http://127.0.0.1:9/predict", **kwargs)
    with pytest.raises(UserError):
        run_load("ftp://x/predict", requests=1)


@pytest.mark.slow
def test_cli_process_stopped_by_sigterm_still_writes_its_summary(serving_v1, tmp_path):
    out = tmp_path / "summary.json"
    log = tmp_path / "loadgen.log"
    before = _served(serving_v1)
    proc = process.spawn(CLI + ["--url", serving_v1 + "/predict", "--duration", "120",
                                "--rate", "100", "--model", "risk-score", "--version", "v1",
                                "--json-out", str(out)], log)
    try:
        # wait until the server has answered some of this process's requests
        process.wait_until(lambda: proc.poll() is None and _served(serving_v1) >= before + 20, 30,
                           what="loadgen traffic")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            process.stop_pid(proc.pid, signal.SIGKILL, 5)
    summary = json.loads(out.read_text())
    assert summary["requests"] >= 1 and summary["failures"] == 0
    assert summary["by_version"] == {"v1": summary["ok"]}
    assert "requests" in log.read_text()


def _served(url: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(url + "/metrics", timeout=2).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(REQUESTS + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_cli_refuses_model_without_version(tmp_path):
    import subprocess

    done = subprocess.run(CLI + ["--url", "http://127.0.0.1:9/predict", "--requests", "1",
                                 "--model", "risk-score"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--model and --version" in done.stderr
