"""DockerRuntime on the session's own dockerd: real containers from real serving images."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from paddle_canary.registry import export_as
from paddle_canary.runtime.base import FAILING, GONE, HEALTHY, DeployError, Endpoint
from paddle_canary.runtime.docker import LABEL, DockerRuntime, ValidationFailed

pytestmark = pytest.mark.slow
MODEL = "risk-score"


def _ours(docker_client, runtime: DockerRuntime) -> list:
    return docker_client.containers.list(
        all=True, filters={"label": f"{LABEL}.namespace={runtime.namespace}"})


def test_deploy_serves_probes_and_is_found_again_from_the_labels(docker_runtime,
                                                                  docker_runtime_factory,
                                                                  registry_root, docker_client):
    rt = docker_runtime
    ep = rt.deploy(MODEL, "v1")
    assert isinstance(ep, Endpoint) and ep.url == f"http://127.0.0.1:{ep.port}"
    container = docker_client.containers.get(ep.instance)
    assert container.labels[f"{LABEL}.model"] == MODEL
    assert container.labels[f"{LABEL}.version"] == "v1"
    assert container.attrs["HostConfig"]["Init"] is True
    assert httpx.get(f"{ep.url}/deep_health", timeout=15).status_code == 200
    answer = httpx.post(f"{ep.url}/predict", json={"user_id": "u1", "features": [0.0] * 30},
                        timeout=10)
    assert answer.status_code == 200 and answer.json()["model_version"] == "v1"
    assert 0.0 <= answer.json()["score"] <= 1.0

    assert rt.deploy(MODEL, "v1") == ep  # idempotent: the same container
    health = rt.probe(MODEL, "v1")
    assert health.state == HEALTHY and health.instance == ep.instance
    target = json.loads((rt.targets_dir / f"{MODEL}--v1.json").read_text())
    assert target == [{"targets": [f"127.0.0.1:{ep.port}"],
                       "labels": {"model": MODEL, "version": "v1"}}]

    # A restarted CLI or scheduler: a new runtime object finds the version from the labels.
    again = docker_runtime_factory(registry_root=registry_root, namespace=rt.namespace)
    assert again.endpoints() == [ep] and again.endpoints(MODEL) == [ep]
    assert again.endpoints("other-model") == []
    again.remove(MODEL, "v1")
    assert rt.probe(MODEL, "v1").state == GONE and rt.endpoints() == []
    assert not (rt.targets_dir / f"{MODEL}--v1.json").exists()
    assert _ours(docker_client, rt) == []
    rt.remove(MODEL, "v1")  # not running: nothing happens


def test_concurrent_deploys_share_one_container_and_a_live_one_is_never_replaced(
        docker_runtime, docker_client):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        endpoints = list(pool.map(lambda _: docker_runtime.deploy(MODEL, "v1"), range(2)))
    assert endpoints[0] == endpoints[1]
    assert [c.id for c in _ours(docker_client, docker_runtime)] == [endpoints[0].instance]
    with pytest.raises(DeployError, match="already runs .* with shadow none, not v2: remove it"):
        docker_runtime.deploy(MODEL, "v1", shadow="v2")
    assert docker_runtime.probe(MODEL, "v1").instance == endpoints[0].instance  # still serving


def test_a_container_reached_on_its_bridge_address(docker_runtime_factory, serving_images,
                                                   registry_root, docker_client):
    rt = docker_runtime_factory(registry_root=registry_root, address="bridge")
    ep = rt.deploy(MODEL, "v2")
    container = docker_client.containers.get(ep.instance)
    ip = container.attrs["NetworkSettings"]["Networks"][rt.network]["IPAddress"]
    assert ep.url == f"http://{ip}:8080"
    assert not any(container.attrs["NetworkSettings"]["Ports"].values())  # nothing published
    answer = httpx.post(f"{ep.url}/predict", json={"user_id": "u2", "features": [0.0] * 30},
                        timeout=10)
    assert answer.status_code == 200 and answer.json()["model_version"] == "v2"
    target = json.loads((rt.targets_dir / f"{MODEL}--v2.json").read_text())
    assert target[0]["targets"] == [f"{ip}:8080"]


def test_a_killed_container_is_gone_and_deploy_starts_a_new_instance(docker_runtime,
                                                                     docker_client):
    rt = docker_runtime
    first = rt.deploy(MODEL, "v2")
    docker_client.containers.get(first.instance).kill()
    health = rt.probe(MODEL, "v2")
    assert health.state == GONE and "exited" in health.detail
    second = rt.deploy(MODEL, "v2")
    assert second.instance != first.instance
    assert rt.probe(MODEL, "v2").restarted_since(first)
    assert [c.id for c in _ours(docker_client, rt)] == [second.instance]


def test_a_stalled_server_probes_failing(docker_runtime_factory, serving_images, registry_root,
                                         docker_client):
    rt = docker_runtime_factory(registry_root=registry_root, probe_timeout=2.0)
    ep = rt.deploy(MODEL, "v1")
    docker_client.containers.get(ep.instance).pause()
    try:
        health = rt.probe(MODEL, "v1")
        assert health.state == FAILING and health.instance == ep.instance
    finally:
        docker_client.containers.get(ep.instance).unpause()


def test_validate_in_the_image_compares_with_stable(docker_runtime):
    summary = docker_runtime.validate(MODEL, "v2", baseline="v1")
    assert summary["passed"] and summary["exit_code"] == 0
    assert summary["version"] == "v2" and summary["baseline"] == "v1"
    assert 0.0 <= summary["psi_vs_baseline"] <= 0.25
    assert summary["decision_agreement"] >= 0.9
    assert summary["rows"] > 0 and summary["non_finite"] == 0


def _registry_with(tmp_path, registry_root, broken_registry_root, *broken: str):
    """v1 and the given broken fixtures in one registry (the stable one is needed beside them)."""
    root = tmp_path / "registry"
    shutil.copytree(registry_root / MODEL / "v1", root / MODEL / "v1")
    for version in broken:
        shutil.copytree(broken_registry_root / MODEL / version, root / MODEL / version)
    return root


def test_validation_of_a_broken_candidate_fails_with_the_reason(serving_image, tmp_path,
                                                                registry_root,
                                                                broken_registry_root,
                                                                docker_runtime_factory,
                                                                docker_client):
    root = _registry_with(tmp_path, registry_root, broken_registry_root, "bad-shift")
    serving_image("bad-shift", broken_registry_root)  # same model files as in `root`
    rt = docker_runtime_factory(registry_root=root)
    with pytest.raises(ValidationFailed, match=r"bad-shift failed validation in "
                                               r"risk-score-serving:bad-shift: "
                                               r"candidate_scores: score distribution far from "
                                               r"stable's: expect_column_kl_divergence"
                                               ) as failed:
        rt.validate(MODEL, "bad-shift", "v1")
    summary = failed.value.summary  # what the release journal records
    assert summary["passed"] is False and summary["exit_code"] == 1
    assert summary["baseline"] == "v1" and summary["kl_vs_baseline"] > 0
    assert _ours(docker_client, rt) == []


def test_a_version_failing_deep_health_is_refused_and_removed(serving_image, tmp_path,
                                                              registry_root,
                                                              broken_registry_root,
                                                              docker_runtime_factory,
                                                              docker_client):
    serving_image("bad-nan", broken_registry_root)
    rt = docker_runtime_factory(registry_root=broken_registry_root)
    with pytest.raises(DeployError, match=r"bad-nan .* fails /deep_health"):
        rt.deploy(MODEL, "bad-nan")
    assert _ours(docker_client, rt) == [] and rt.endpoints() == []
    assert not (rt.targets_dir / f"{MODEL}--bad-nan.json").exists()


def test_bad_requests_name_the_cause_and_leave_nothing_running(docker_runtime, tmp_path,
                                                               registry_root, docker_client,
                                                               docker_runtime_factory,
                                                               serving_images):
    rt = docker_runtime
    with pytest.raises(DeployError, match="version v9 of risk-score"):
        rt.deploy(MODEL, "v9")
    with pytest.raises(DeployError, match="shadow version v9 of risk-score"):
        rt.deploy(MODEL, "v2", shadow="v9")

    # Registered, but never built.
    root = tmp_path / "registry"
    shutil.copytree(registry_root / MODEL / "v1", root / MODEL / "v1")
    export_as(registry_root / MODEL / "v1", root / MODEL / "never-built", "never-built")
    unbuilt = docker_runtime_factory(registry_root=root)
    with pytest.raises(DeployError, match=r"no image risk-score-serving:never-built in the Docker "
                                          r"engine: build it first \(paddle-canary image build "
                                          r"risk-score never-built\)"):
        unbuilt.deploy(MODEL, "never-built")

    # An image built from other model files than the registry holds now.
    export_as(registry_root / MODEL / "v1", root / MODEL / "v2", "v2")
    stale = docker_runtime_factory(registry_root=root)
    with pytest.raises(DeployError, match="risk-score-serving:v2 was built from model sha256:.* "
                                          "rebuild it"):
        stale.deploy(MODEL, "v2")

    # No GPU in this engine: the engine's refusal, named.
    gpu = docker_runtime_factory(registry_root=registry_root, device="gpu")
    with pytest.raises(DeployError, match="did not start from risk-score-serving:v1: .*gpu"):
        gpu.deploy(MODEL, "v1")

    for runtime in (rt, unbuilt, stale, gpu):
        assert _ours(docker_client, runtime) == []


def test_no_engine_is_a_deploy_error_naming_the_socket(registry_root):
    rt = DockerRuntime(registry_root=registry_root,
                       docker_url="unix:///nonexistent/paddle-canary.sock")
    with pytest.raises(DeployError, match="no Docker engine answers at "
                                          "unix:///nonexistent/paddle-canary.sock"):
        rt.deploy(MODEL, "v1")
    with pytest.raises(DeployError, match="no Docker engine"):
        rt.probe(MODEL, "v1")


def test_with_an_image_registry_the_engine_pulls_what_the_build_pushed(
        serving_images, image_registry, docker_client, docker_runtime_factory, registry_root,
        serving_base):
    from paddle_canary.images.build import build_serving_image

    ref = build_serving_image(registry_root, MODEL, "v1", base=serving_base,
                              client=docker_client, image_registry=image_registry,
                              log=lambda line: None)
    docker_client.images.remove(ref.pushed)  # untag: the engine must pull it back
    rt = docker_runtime_factory(registry_root=registry_root, image_registry=image_registry)
    ep = rt.deploy(MODEL, "v1")
    assert docker_client.containers.get(ep.instance).image.id == ref.id
    assert rt.probe(MODEL, "v1").healthy
