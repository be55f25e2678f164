"""Fixtures for the traffic tests: real serving processes and real nginx gateways."""

from __future__ import annotations

import pytest
from traffic_helpers import MODEL, STABLE, CANDIDATE, Serving, route

from paddle_canary import process
from paddle_canary.registry import Registry, default_root
from paddle_canary.traffic.nginx import NginxRouter


@pytest.fixture(scope="session")
def reference_rows():
    return Registry(default_root()).card(MODEL, STABLE).reference_inputs()


@pytest.fixture(scope="session")
def serving_pair(tmp_path_factory):
    """Stable (v1) and candidate (v2) serving processes shared by the module's tests."""
    log_dir = tmp_path_factory.mktemp("serving")
    started = []
    try:
        for version in (STABLE, CANDIDATE):
            started.append(Serving(version, log_dir))
        yield started[0], started[1]
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def serve(tmp_path):
    """Start extra serving processes in a test: ``serve("v2")``; all stopped afterwards."""
    started = []

    def start(version: str) -> Serving:
        s = Serving(version, tmp_path)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def gateway_factory(tmp_path):
    """``gateway_factory(stable_url, candidate_url, weight)`` -> a started NginxRouter routing
    risk-score (the default model: /predict) that way."""
    routers = []

    def start(stable_url: str, candidate_url: str | None = None, weight: int = 0,
              **kwargs) -> NginxRouter:
        router = NginxRouter(tmp_path / f"gateway{len(routers)}", process.free_port(), **kwargs)
        routers.append(router)
        return router.start([route(stable_url, candidate_url, weight)])

    yield start
    for r in routers:
        r.stop()
