"""The parts of an image build that need no engine: requirements, labels, mirror, refusals made
before the engine is asked anything."""

from __future__ import annotations

import io
import shutil
import tarfile

import pytest

from paddle_canary.images.base import DEFAULT_MIRROR, host_mirror
from paddle_canary.images.build import (build_serving_image, label_instruction, serve_extra,
                                        write_context)
from paddle_canary.images.engine import EngineUnavailable
from paddle_canary.images.wheelhouse import build_requirements, platform_tags, requirements
from paddle_canary.registry import RegistryError
from paddle_canary.runtime.docker import export_archive

NO_ENGINE = "unix:///nonexistent/paddle-canary-test.sock"


def test_the_image_extra_brings_paddle_and_validation_and_the_gpu_one_no_paddle():
    serve, nopaddle = requirements("image"), requirements("image-nopaddle")
    assert any(r.startswith("paddlepaddle") for r in serve)
    assert not any(r.startswith("paddlepaddle") for r in nopaddle)
    for wanted in ("uvicorn", "numpy", "pyyaml", "orjson", "great-expectations", "pandas"):  # own extra and base deps expanded
        assert any(r.startswith(wanted) for r in serve) and any(r.startswith(wanted)
                                                                for r in nopaddle)
    assert not any(r.startswith("paddle-canary") for r in serve)
    assert any(r.startswith("setuptools") for r in build_requirements())
    assert serve_extra("paddlepaddle/paddle:3.3.1-gpu-cuda12.6-cudnn9.5") == "image-nopaddle"
    assert serve_extra("local/debian:bookworm") == "image"


def test_wheels_are_chosen_for_manylinux_2_28_and_older():
    tags = platform_tags()
    assert tags[0].startswith("manylinux_2_28_") and any(t.startswith("manylinux2014_")
                                                         for t in tags)
    assert not any(t.startswith("manylinux_2_29") for t in tags)


def test_labels_go_in_one_instruction_without_variable_expansion():
    line = label_instruction({"b": 'say "hi"', "a": "$HOME\\x"})
    assert line == 'LABEL "a"="\\$HOME\\\\x" "b"="say \\"hi\\""'


def test_the_context_is_the_same_bytes_for_the_same_files(tmp_path):
    (tmp_path / "f").write_text("x")

    def context() -> bytes:
        buf = io.BytesIO()
        write_context(buf, [("wheelhouse/f", tmp_path / "f")], b"FROM scratch\n")
        return buf.getvalue()

    first = context()
    (tmp_path / "f").touch()  # a new mtime: the engine's cache must still hit
    assert context() == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getnames() == ["Dockerfile", "wheelhouse/f"]


def test_the_mirror_is_the_one_apt_uses(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    assert host_mirror(tmp_path) == DEFAULT_MIRROR
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://mirror.example/debian bookworm main\n")
    assert host_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb822.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\n")
    assert host_mirror(tmp_path) == "http://deb822.example/debian"


def test_a_version_without_an_export_is_refused_before_the_engine(tmp_path, registry_root):
    root = tmp_path / "registry"
    shutil.copytree(registry_root / "risk-score" / "v1", root / "risk-score" / "v3")
    (root / "risk-score" / "v3" / "model.pdiparams").unlink()
    with pytest.raises(RegistryError, match="missing model.pdiparams"):
        build_serving_image(root, "risk-score", "v3", docker_url=NO_ENGINE)
    with pytest.raises(RegistryError, match="v9"):
        build_serving_image(registry_root, "risk-score", "v9", docker_url=NO_ENGINE)


def test_no_engine_is_an_error_naming_where_it_was_looked_for(registry_root):
    with pytest.raises(EngineUnavailable, match="no Docker engine answers at unix:///nonexistent"):
        build_serving_image(registry_root, "risk-score", "v1", docker_url=NO_ENGINE)


def test_an_export_goes_into_a_container_readable_under_the_registry_path(registry_root):
    data = export_archive(registry_root / "risk-score" / "v1", "/srv/model_registry/risk-score/v1")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["srv/model_registry/risk-score/v1"].isdir()
    for name in ("model.json", "model.pdiparams", "card.yaml", "reference.csv"):
        member = members[f"srv/model_registry/risk-score/v1/{name}"]
        assert member.isfile() and member.mode == 0o644


def test_gpu_containers_ask_the_engine_for_one_gpu_and_cpu_ones_for_none():
    from docker.types import DeviceRequest

    from paddle_canary.runtime.docker import DockerRuntime

    gpu = DockerRuntime(device="gpu")._run_options()
    assert gpu["device_requests"] == [DeviceRequest(count=1, capabilities=[["gpu"]])]
    assert gpu["ports"] == {"8080/tcp": ("127.0.0.1", None)}
    assert "device_requests" not in DockerRuntime(device="cpu")._run_options()
    bridge = DockerRuntime(address="bridge", network="net")._run_options()
    assert "ports" not in bridge and bridge["network"] == "net"
