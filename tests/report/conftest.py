"""Report test fixtures: a private stack home whose Prometheus URL points at a closed port."""

from __future__ import annotations

import pytest

from paddle_canary import process
from paddle_canary.settings import Settings


@pytest.fixture
def closed_url() -> str:
    """A Prometheus URL nothing listens on (connection refused at once)."""
    return f"http://127.0.0.1:{process.free_port()}"


@pytest.fixture
def paths(tmp_path, closed_url) -> Settings:
    return Settings(home=tmp_path / "stack", registry_root=tmp_path / "registry",
                      prometheus_url=closed_url)
