"""A real serving process (risk-score v1) for the load generator's tests."""

from __future__ import annotations

import pytest

from paddle_canary.registry import Registry, default_root
from paddle_canary.runtime.local import ServeProcess


@pytest.fixture(scope="session")
def serving_v1(tmp_path_factory):
    """URL of a `paddle-canary serve --model risk-score --version v1` process."""
    serving = ServeProcess("risk-score", "v1", tmp_path_factory.mktemp("serving"))
    try:
        yield serving.wait_ready().url
    finally:
        serving.stop()


@pytest.fixture(scope="session")
def reference_rows():
    return Registry(default_root()).card("risk-score", "v1").reference_inputs()
