"""The load generator sending several models' users through one real nginx gateway."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from paddle_canary import process
from paddle_canary.errors import UserError
from paddle_canary.loadgen.models import model_loads, parse_model_rate, run_models
from paddle_canary.traffic.base import Backend, ModelRoute
from paddle_canary.traffic.nginx import NginxRouter

CLI = [sys.executable, "-m", "paddle_canary.cli", "loadgen"]
GATEWAY = "http://127.0.0.1:9"


def test_every_model_with_a_stable_version_by_default(registry_root):
    loads = model_loads(GATEWAY, registry_root=registry_root, rate=7)
    assert [(ld.model, ld.url, ld.rate) for ld in loads] == [
        ("digit-seven", f"{GATEWAY}/models/digit-seven/predict", 7),
        ("risk-score", f"{GATEWAY}/models/risk-score/predict", 7)]
    # each model's own reference rows: 64 pixels, 30 features
    assert [ld.reference.shape[1] for ld in loads] == [64, 30]


def test_named_models_with_their_own_rates(registry_root):
    loads = model_loads(GATEWAY + "/", [parse_model_rate("risk-score"),
                                        parse_model_rate("digit-seven:2.5")],
                        rate=10, registry_root=registry_root)
    assert [(ld.model, ld.rate) for ld in loads] == [("risk-score", 10), ("digit-seven", 2.5)]
    assert loads[0].url == f"{GATEWAY}/models/risk-score/predict"


@pytest.mark.parametrize("text", ["", ":5", "risk-score:0", "risk-score:-1", "risk-score:fast"])
def test_bad_model_rates_are_refused(text):
    with pytest.raises(UserError):
        parse_model_rate(text)


def test_unknown_or_repeated_models_are_refused(registry_root):
    with pytest.raises(UserError):
        model_loads(GATEWAY, [("no-such-model", None)], registry_root=registry_root)
    with pytest.raises(UserError, match="named twice"):
        model_loads(GATEWAY, [("risk-score", None), ("risk-score", 3.0)],
                    registry_root=registry_root)


@pytest.fixture(scope="module")
def two_model_gateway(module_serving_factory, tmp_path_factory):
    """A real nginx gateway routing risk-score v1 and digit-seven v1 (real serving processes)."""
    routes = []
    for model in ("risk-score", "digit-seven"):
        endpoint = module_serving_factory(model, "v1")
        routes.append(ModelRoute(model, stable=Backend("v1", endpoint.url)))
    router = NginxRouter(tmp_path_factory.mktemp("gateway"), process.free_port())
    router.start(routes)
    try:
        yield router
    finally:
        router.stop()


@pytest.mark.slow
def test_each_model_gets_its_own_requests_through_its_route(two_model_gateway, registry_root):
    loads = model_loads(two_model_gateway.url, registry_root=registry_root)
    summaries = run_models(loads, users=20, requests=40, concurrency=2)
    assert sorted(summaries) == ["digit-seven", "risk-score"]
    for summary in summaries.values():
        assert (summary.requests, summary.ok, summary.failures) == (40, 40, 0)
        assert summary.by_version == {"v1": 40}
    # nginx's own log: each model's route got its model's requests (written after the answer)
    counts = two_model_gateway.route_counts
    process.wait_until(lambda: counts("risk-score")["stable"] >= 40
                       and counts("digit-seven")["stable"] >= 40, 10, what="access-log lines")


@pytest.mark.slow
def test_an_error_in_one_model_stops_every_model(two_model_gateway, registry_root):
    loads = model_loads(two_model_gateway.url, registry_root=registry_root)
    with pytest.raises(UserError):
        run_models(loads, users=0, requests=5)  # refused by run_load in every thread


@pytest.mark.slow
def test_cli_sends_to_every_model_and_writes_a_summary_per_model(two_model_gateway,
                                                                 registry_root, tmp_path):
    out = tmp_path / "summary.json"
    done = subprocess.run(CLI + ["--gateway", two_model_gateway.url, "--requests", "30",
                                 "--model", "risk-score", "--model", "digit-seven:50",
                                 "--registry", str(registry_root), "--json-out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert {m: s["by_version"] for m, s in summary.items()} == {
        "risk-score": {"v1": 30}, "digit-seven": {"v1": 30}}
    assert "digit-seven: requests 30" in done.stdout


def test_cli_refuses_version_with_gateway_and_both_targets():
    for extra in (["--gateway", GATEWAY, "--version", "v1"],
                  ["--gateway", GATEWAY, "--url", GATEWAY + "/predict"]):
        done = subprocess.run(CLI + ["--requests", "1", *extra], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2, done.stderr
