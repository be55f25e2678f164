"""``paddle-canary analyze``: usage errors exit 2 with a clear message; a live verdict prints
as a table or JSON with an exit status per verdict."""

from __future__ import annotations

import json
import time

import pytest
from analysis_live import wait_scraped

from paddle_canary.analysis.provider import PrometheusProvider
from paddle_canary.cli import main

BASE = ["analyze", "--model", "risk-score", "--baseline", "v1", "--candidate", "v2"]


@pytest.mark.parametrize("extra, message", [
    ([], "either --window"),
    (["--window", "60", "--start", "1"], "either --window"),
    (["--window", "60", "--gates", "{bad json"], "--gates: not valid JSON"),
    (["--window", "60", "--gates", '{"latency_p99": {}}'], "gates.latency_p99: unknown gate"),
    (["--window", "60", "--gates", "@/nonexistent.json"], "--gates: cannot read"),
    (["--window", "60", "--prometheus", "localhost:9090"], "Prometheus URL"),
])
def test_usage_errors_exit_2(extra, message, capsys):
    assert main(BASE + extra) == 2
    assert message in capsys.readouterr().err


def test_unknown_model_is_a_usage_error(capsys):
    assert main(["analyze", "--model", "no-such-model", "--baseline", "a", "--candidate", "b",
                 "--window", "10", "--prometheus", "http://127.0.0.1:1"]) == 2
    assert "error:" in capsys.readouterr().err


def test_unreachable_prometheus_is_inconclusive_exit_3(capsys):
    assert main(BASE + ["--window", "60", "--prometheus", "http://127.0.0.1:1"]) == 3
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" in out and "unreachable" in out


@pytest.mark.slow
def test_live_verdict_as_json(prometheus, exporters, capsys):
    base, cand = exporters("risk-score", "v1"), exporters("risk-score", "v2")
    prometheus.add_target("risk-score", "v1", [base.address])
    prometheus.add_target("risk-score", "v2", [cand.address])
    provider = PrometheusProvider(prometheus.url)
    start = time.time()
    for _ in range(30):
        base.scored([0.1])
        cand.failed()
    for version in ("v1", "v2"):
        wait_scraped(provider, f'sum(paddle_canary_requests_total{{version="{version}"}})', 30.0)
    status = main(BASE + ["--start", str(start), "--prometheus", prometheus.url, "--json"])
    verdict = json.loads(capsys.readouterr().out)
    assert status == 1 and verdict["status"] == "fail", verdict["reason"]
    errors = next(g for g in verdict["gates"] if g["gate"] == "errors")
    assert errors["status"] == "fail" and "burst" in errors["reason"]
