"""LocalRuntime: real `paddle-canary serve` children found and stopped through the state file."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from paddle_canary.process import pid_alive, wait_until
from paddle_canary.registry import RegistryError
from paddle_canary.runtime.base import Endpoint
from paddle_canary.runtime.local import DeployError, LocalRuntime

pytestmark = pytest.mark.slow
MODEL = "risk-score"


def test_deploy_is_idempotent_and_another_process_can_stop_it(tmp_path, registry_root):
    rt = LocalRuntime(tmp_path, registry_root=registry_root)
    try:
        ep = rt.deploy(MODEL, "v1")
        assert isinstance(ep, Endpoint) and ep.url == f"http://127.0.0.1:{ep.port}"
        assert pid_alive(ep.pid)
        assert httpx.get(f"{ep.url}/deep_health").status_code == 200
        assert rt.deploy(MODEL, "v1") == ep  # same process, same port
        assert rt.health(MODEL, "v1")

        state = json.loads((tmp_path / "endpoints.json").read_text())
        assert state[f"{MODEL}/v1"]["pid"] == ep.pid and state[f"{MODEL}/v1"]["port"] == ep.port
        assert (tmp_path / "logs" / f"{MODEL}--v1.log").is_file()

        other = LocalRuntime(tmp_path, registry_root=registry_root)  # e.g. an Airflow task
        assert other.endpoints() == [ep]
        other.remove(MODEL, "v1")
        assert not pid_alive(ep.pid)
        assert rt.endpoints() == [] and not rt.health(MODEL, "v1")
        assert json.loads((tmp_path / "endpoints.json").read_text()) == {}
        rt.remove(MODEL, "v1")  # removing what is not running does nothing
    finally:
        for e in rt.endpoints():
            rt.remove(e.model, e.version)


def test_a_dead_process_is_replaced_on_deploy(registry_root, tmp_path):
    rt = LocalRuntime(tmp_path, registry_root=registry_root)
    try:
        first = rt.deploy(MODEL, "v2")
        os.kill(first.pid, 9)
        wait_until(lambda: not pid_alive(first.pid), 10, what="killed server gone")
        assert rt.endpoints() == [] and not rt.health(MODEL, "v2")
        second = rt.deploy(MODEL, "v2")
        assert second.pid != first.pid and rt.health(MODEL, "v2")
    finally:
        for e in rt.endpoints():
            rt.remove(e.model, e.version)


def test_unknown_version_is_refused_before_anything_starts(tmp_path, registry_root):
    rt = LocalRuntime(tmp_path, registry_root=registry_root)
    with pytest.raises(RegistryError):
        rt.deploy(MODEL, "v404")
    assert rt.endpoints() == [] and not (tmp_path / "logs").exists()


def test_a_model_that_cannot_load_fails_fast_with_the_log_tail(tmp_path, broken_registry_root):
    rt = LocalRuntime(tmp_path, registry_root=broken_registry_root, start_timeout=60)
    with pytest.raises(DeployError) as info:
        rt.deploy(MODEL, "bad-signature")
    message = str(info.value)
    assert "exited (status 2)" in message and "30 float32 features" in message
    assert rt.endpoints() == [] and json.loads((tmp_path / "endpoints.json").read_text()) == {}


def test_serving_factory_fixture_starts_and_stops(serving_factory):
    ep = serving_factory(MODEL, "v1")
    r = httpx.post(f"{ep.url}/predict", json={"user_id": "u", "features": [0.0] * 30})
    assert r.status_code == 200 and r.json()["model_version"] == "v1"


def test_a_port_taken_before_the_child_binds_it_is_retried(tmp_path, registry_root,
                                                           monkeypatch):
    import socket

    from paddle_canary.runtime import local

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real_free_port = local.free_port
    monkeypatch.setattr(local, "free_port",
                        lambda host: next(ports, None) or real_free_port(host))
    rt = LocalRuntime(tmp_path, registry_root=registry_root)
    try:
        ep = rt.deploy(MODEL, "v1")
        assert ep.port != taken.getsockname()[1] and rt.health(MODEL, "v1")
        log = (tmp_path / "logs" / f"{MODEL}--v1.log").read_text().lower()
        assert "address already in use" in log
    finally:
        taken.close()
        for e in rt.endpoints():
            rt.remove(e.model, e.version)
