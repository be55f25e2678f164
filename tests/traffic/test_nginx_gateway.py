"""The gateway in front of real serving processes (risk-score v1 stable, v2 candidate)."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from paddle_canary import process
from paddle_canary.loadgen import run_load
from paddle_canary.traffic.buckets import routes_to_candidate
from paddle_canary.traffic.nginx import NginxRouter, read_access_log, wait_for_log

from traffic_helpers import CANDIDATE, MODEL, PADDLE_CANARY, STABLE, predict

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(serving_pair, gateway_factory):
    stable, candidate = serving_pair
    return gateway_factory(stable.url, candidate.url, weight=0)


def test_each_user_gets_the_version_nginx_is_predicted_to_give(gateway, reference_rows):
    gateway.set_weight(MODEL, 15)
    conn = http.client.HTTPConnection("127.0.0.1", gateway.state.port, timeout=10)
    users = [f"user-{i:06d}" for i in range(1, 601)]
    seen = {}
    for i, user in enumerate(users):
        status, version, body = predict(gateway.url, user, reference_rows[i % len(reference_rows)], conn)
        assert status == 200
        assert version == body["model_version"]
        seen[user] = version
    conn.close()
    expected = {u: CANDIDATE if routes_to_candidate(u, 15, MODEL) else STABLE for u in users}
    assert seen == expected
    assert 40 < sum(v == CANDIDATE for v in seen.values()) < 140


def test_requests_without_user_id_go_to_stable_and_are_counted(gateway, reference_rows):
    gateway.set_weight(MODEL, 100)
    for i in range(20):
        status, version, _ = predict(gateway.url, None, reference_rows[i])
        assert (status, version) == (200, STABLE)
    status, version, _ = predict(gateway.url, "user-000001", reference_rows[0])
    assert (status, version) == (200, CANDIDATE)
    wait_for_log(gateway.access_log, 21)
    counts = gateway.route_counts()
    assert counts["no_user"] == 20 and counts["candidate"] == 1 and counts["stable"] == 0


def test_access_log_is_json_with_version_bucket_and_route(gateway, reference_rows):
    gateway.set_weight(MODEL, 50)
    for i in range(30):
        predict(gateway.url, f"user-{i:06d}", reference_rows[i])
    predict(gateway.url, None, reference_rows[0])
    entries = wait_for_log(gateway.access_log, 31)
    for entry in entries[:30]:
        assert entry["version"] in (STABLE, CANDIDATE)
        assert entry["route"] == ("candidate" if routes_to_candidate(entry["user_id"], 50, MODEL)
                                  else "stable")
        assert entry["version"] == (CANDIDATE if entry["route"] == "candidate" else STABLE)
        assert 0 <= entry["bucket"] <= 99 and entry["status"] == 200
        assert entry["weight"] == 50 and float(entry["upstream_response_time"]) >= 0
    assert entries[30]["route"] == "no_user" and entries[30]["bucket"] is None


def test_weight_sweep_under_load_from_another_process_loses_no_request(gateway, tmp_path):
    """0 -> 5 -> 15 -> ... -> 95 -> 100 -> 0 while `paddle-canary loadgen` runs."""
    out = tmp_path / "load.json"
    load = process.spawn(
        PADDLE_CANARY + ["loadgen", "--url", gateway.url + "/predict", "--users", "2000",
                         "--duration", "120", "--rate", "150", "--concurrency", "4",
                         "--model", "risk-score", "--version", STABLE, "--json-out", str(out),
                         "--records"],
        tmp_path / "loadgen.log")
    try:
        wait_for_log(gateway.access_log, 50, timeout=30)
        weights = [0, 5] + list(range(15, 100, 10)) + [100, 0]
        for weight in weights:
            gateway.set_weight(MODEL, weight)
            assert gateway.verify_weight(MODEL, weight)
            seen = len(read_access_log(gateway.access_log))
            wait_for_log(gateway.access_log, seen + 20, timeout=10)  # traffic at each weight
    finally:
        if load.poll() is None:
            process.stop_pid(load.pid, signal.SIGTERM, 30)
    summary = json.loads(out.read_text())
    print({k: summary[k] for k in ("requests", "failures", "stale_retries", "reconnects", "by_version")})
    assert summary["failures"] == 0, summary["error_samples"]
    assert summary["requests"] > 500
    assert set(summary["by_version"]) == {STABLE, CANDIDATE}
    assert all(r["version"] in (STABLE, CANDIDATE) for r in summary["records"])
    entries = read_access_log(gateway.access_log)
    assert {e["weight"] for e in entries} >= set(weights)
    assert all(e["status"] == 200 and e["version"] in (STABLE, CANDIDATE) for e in entries)
    # Everyone who saw the candidate saw it only at weights that put them in the canary.
    for e in entries:
        if e["version"] == CANDIDATE:
            assert routes_to_candidate(e["user_id"], e["weight"], MODEL), e


def test_candidate_killed_mid_load_gives_users_no_error(serving_pair, serve, gateway_factory,
                                                        reference_rows):
    stable, _ = serving_pair
    candidate = serve(CANDIDATE)
    gateway = gateway_factory(stable.url, candidate.url, weight=50)
    result = {}
    loader = threading.Thread(target=lambda: result.update(summary=run_load(
        gateway.url + "/predict", users=500, duration_s=6, rate=200, concurrency=4,
        reference=reference_rows, keep_records=True)))
    loader.start()
    try:
        wait_for_log(gateway.access_log, 200, timeout=20)
        candidate.kill()
        killed_at = time.monotonic()
    finally:
        loader.join(60)
    summary = result["summary"]
    print(summary.lines(), gateway.route_counts())
    assert summary.failures == 0, summary.error_samples
    assert summary.by_version.get(CANDIDATE, 0) > 0
    entries = read_access_log(gateway.access_log)
    counts = gateway.route_counts()
    assert counts["fallback"] > 0  # candidate users were answered by stable
    after = [e for e in entries if e["route"] == "candidate"][-20:]
    assert all(e["version"] == STABLE and e["served_by"] == "stable" for e in after)
    assert time.monotonic() - killed_at < 60
    assert all(r.version in (STABLE, CANDIDATE) for r in summary.records)


def test_cli_set_weight_and_status_drive_the_running_gateway(gateway):
    def cli(*args):
        return subprocess.run(PADDLE_CANARY + ["gateway", *args, "--workdir", str(gateway.workdir)],
                              capture_output=True, text=True, timeout=60)

    done = cli("set-weight", MODEL, "25")
    assert done.returncode == 0, done.stderr
    assert "0 -> 25" in done.stdout
    assert gateway.weight(MODEL) == 25
    for bad in ("101", "-1", "5.5", "five"):
        refused = cli("set-weight", MODEL, bad)
        assert refused.returncode == 2 and "weight" in refused.stderr
    assert gateway.weight(MODEL) == 25
    status = cli("status")
    assert status.returncode == 0 and "weight 25" in status.stdout


def test_cli_gateway_runs_in_the_foreground_and_sigterm_stops_nginx(serving_pair, tmp_path,
                                                                   reference_rows):
    stable, candidate = serving_pair
    port = process.free_port()
    workdir = tmp_path / "gw"
    proc = process.spawn(PADDLE_CANARY + [
        "gateway", "--port", str(port), "--model", MODEL, "--stable", stable.url,
        "--candidate", candidate.url, "--weight", "100", "--workdir", str(workdir)],
        tmp_path / "gateway.log")
    try:
        router = process.wait_until(lambda: NginxRouter.attach(workdir).is_running()
                                    and NginxRouter.attach(workdir), 20, what="gateway up")
        nginx_pid = router.pid()
        status, version, _ = predict(f"http://127.0.0.1:{port}", "user-000001", reference_rows[0])
        assert (status, version) == (200, CANDIDATE)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            process.stop_pid(proc.pid, signal.SIGKILL, 5)
    assert not process.pid_alive(nginx_pid)
    assert not process.port_open(port)


@pytest.fixture
def stub_upstream(tmp_path):
    """Start ``stub_upstream.py`` in a mode; returns its URL. Stopped by PID afterwards."""
    procs = []

    def start(mode: str) -> str:
        port = process.free_port()
        procs.append(process.spawn([sys.executable, str(Path(__file__).with_name("stub_upstream.py")),
                                    str(port), mode], tmp_path / f"stub-{mode}.log"))
        process.wait_until(lambda: process.port_open(port), 20, what=f"stub {mode} up")
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        process.stop_pid(proc.pid, signal.SIGKILL, 5)


@pytest.mark.parametrize("mode", ["503", "hang"])
def test_candidate_answering_503_or_hanging_is_answered_by_stable(
        serving_pair, gateway_factory, stub_upstream, reference_rows, mode):
    stable, _ = serving_pair
    gateway = gateway_factory(stable.url, stub_upstream(mode), weight=100, read_timeout_s=1)
    for i in range(5):
        status, version, body = predict(gateway.url, f"user-{i:06d}", reference_rows[i])
        assert (status, version, body["model_version"]) == (200, STABLE, STABLE)
    entries = wait_for_log(gateway.access_log, 5)
    assert all(e["route"] == "candidate" and e["served_by"] == "stable" for e in entries)
    assert gateway.route_counts()["fallback"] == 5


def test_response_names_no_version_when_nginx_answers_itself(gateway_factory, reference_rows):
    dead = f"http://127.0.0.1:{process.free_port()}"
    gateway = gateway_factory(dead, f"http://127.0.0.1:{process.free_port()}", weight=50)
    for user in ("user-000001", "user-000002", None):
        status, version, _ = predict(gateway.url, user, reference_rows[0])
        assert status == 502 and version == "none"
