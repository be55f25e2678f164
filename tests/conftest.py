"""Fixtures shared by every test area.

- ``registry_root``: the committed registry (``model_registry/``: risk-score v1, v2).
- ``broken_registry_root``: the broken fixture models (``fixtures/broken_models/``).
- ``isolated_settings``: a copy of the registry and a state home of the test's own, Prometheus
  where nothing answers; ``isolated_settings_in_env``: the same, in the environment (what the
  CLI, the operators and the controller read).
- ``serving_factory`` / ``module_serving_factory``: ``start(model, version, registry_root=None)
  -> Endpoint`` starts ``paddle-canary serve`` through :class:`LocalRuntime` and returns once
  the version answers ``/deep_health``; every process started is stopped by PID when the test
  (or the module) ends.
- Docker (our own dockerd, the base, serving images, DockerRuntime): see ``docker_fixtures``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docker_fixtures import (docker_client, docker_runtime, docker_runtime_factory,  # noqa: F401
                             dockerd, image_registry, private_image_registry, serving_base,
                             serving_image, serving_images)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def registry_root() -> Path:
    return REPO / "model_registry"


@pytest.fixture(scope="session")
def broken_registry_root() -> Path:
    return REPO / "fixtures" / "broken_models"


@pytest.fixture
def isolated_settings(tmp_path, registry_root):
    import shutil

    from paddle_canary.settings import Settings
    root = tmp_path / "registry"
    shutil.copytree(registry_root, root, ignore=shutil.ignore_patterns("release.lock", ".lock"))
    return Settings(home=tmp_path / "home", registry_root=root,
                    prometheus_url="http://127.0.0.1:9")


@pytest.fixture
def isolated_settings_in_env(isolated_settings, monkeypatch):
    for key, value in isolated_settings.to_env().items():
        monkeypatch.setenv(key, value)
    return isolated_settings


def _serving(workdir: Path):
    from paddle_canary.runtime.local import LocalRuntime

    runtimes: list[LocalRuntime] = []

    def start(model: str, version: str, registry_root: Path | None = None):
        runtime = LocalRuntime(workdir / f"runtime-{len(runtimes)}", registry_root=registry_root)
        runtimes.append(runtime)
        return runtime.deploy(model, version)

    def stop_all() -> None:
        for runtime in runtimes:
            for endpoint in runtime.endpoints():
                runtime.remove(endpoint.model, endpoint.version)

    return start, stop_all


@pytest.fixture
def serving_factory(tmp_path):
    start, stop_all = _serving(tmp_path)
    yield start
    stop_all()


@pytest.fixture(scope="module")
def module_serving_factory(tmp_path_factory):
    start, stop_all = _serving(tmp_path_factory.mktemp("serving"))
    yield start
    stop_all()


# Local notification endpoints (HTTP webhook receiver, SMTP sink): tests/notify_sinks.py.
from notify_sinks import smtp_sink, webhook_receiver  # noqa: E402,F401
