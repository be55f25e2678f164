"""The runtime contract, run against the in-memory double the controller tests use, the real
local runtime (real `paddle-canary serve` processes) and the real docker runtime (containers of
the serving images on our own dockerd, built once per session: tests/docker_fixtures.py)."""

from __future__ import annotations

import json
import signal

import pytest

from doubles import MemoryRuntime
from paddle_canary import process
from paddle_canary.runtime.local import LocalRuntime

MODEL = "risk-score"


@pytest.fixture(params=["memory", pytest.param("local", marks=pytest.mark.slow),
                        pytest.param("docker", marks=pytest.mark.slow)])
def runtime(request, tmp_path, registry_root):
    if request.param == "memory":
        yield MemoryRuntime()
        return
    if request.param == "docker":  # its containers are removed by the fixture
        yield request.getfixturevalue("docker_runtime")
        return
    rt = LocalRuntime(tmp_path / "rt", registry_root=registry_root,
                      targets_dir=tmp_path / "targets")
    try:
        yield rt
    finally:
        for ep in rt.endpoints():
            rt.remove(ep.model, ep.version)


def kill(runtime, endpoint):
    if isinstance(runtime, MemoryRuntime):
        runtime.kill(MODEL, endpoint.version)
    elif runtime.kind == "docker":
        runtime.client.containers.get(endpoint.instance).kill()
    else:
        process.stop_pid(endpoint.pid, signal.SIGKILL, 5)


def test_deploy_is_idempotent_probe_healthy_remove_gone(runtime):
    ep = runtime.deploy(MODEL, "v1")
    assert runtime.deploy(MODEL, "v1") == ep
    assert ep.instance and ep.url.startswith("http://127.0.0.1:")
    health = runtime.probe(MODEL, "v1")
    assert health.healthy and health.instance == ep.instance
    assert runtime.endpoints(MODEL) == [ep] and runtime.endpoint(MODEL, "v1") == ep
    assert runtime.endpoints("other-model") == []
    runtime.remove(MODEL, "v1")
    assert runtime.probe(MODEL, "v1").state == "gone"
    assert runtime.endpoints() == []
    runtime.remove(MODEL, "v1")  # nothing to remove: no error


def test_a_killed_version_is_gone_and_a_new_deploy_is_another_instance(runtime):
    ep = runtime.deploy(MODEL, "v1")
    kill(runtime, ep)
    assert process.wait_until(lambda: runtime.probe(MODEL, "v1").state == "gone", 10,
                              what="the killed version to be seen gone")
    again = runtime.deploy(MODEL, "v1")
    assert again.instance != ep.instance
    assert runtime.probe(MODEL, "v1").restarted_since(ep.instance)


@pytest.mark.slow
def test_the_local_runtime_registers_and_drops_its_scrape_target(tmp_path, registry_root):
    rt = LocalRuntime(tmp_path / "rt", registry_root=registry_root,
                      targets_dir=tmp_path / "targets")
    try:
        ep = rt.deploy(MODEL, "v2")
        target = json.loads((tmp_path / "targets" / f"{MODEL}--v2.json").read_text())
        assert target == [{"targets": [ep.url.split("//")[1]],
                           "labels": {"model": MODEL, "version": "v2"}}]
    finally:
        rt.remove(MODEL, "v2")
    assert not (tmp_path / "targets" / f"{MODEL}--v2.json").exists()
