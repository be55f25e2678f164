"""Fixtures for the analysis tests: a real Prometheus (1 s scrape) and stand-in exporters.

Every process started here is stopped by its PID in the fixture's finaliser.
"""

from __future__ import annotations

import pytest
from analysis_live import Exporter

from paddle_canary.localstack.prometheus import PrometheusServer


@pytest.fixture
def prometheus(tmp_path):
    server = PrometheusServer(tmp_path / "prometheus", scrape_interval_s=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def exporters(tmp_path):
    started: list[Exporter] = []

    def start(model: str, version: str, port: int | None = None) -> Exporter:
        exp = Exporter(tmp_path, model, version, port)
        started.append(exp)
        return exp

    yield start
    for exp in started:
        exp.stop()
