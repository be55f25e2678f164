"""Serving images built for real on the session's dockerd: labels, layer reuse, skip, push,
and the failures a user meets (unknown base, failing build, failing push)."""

from __future__ import annotations

import json
import tarfile
import urllib.request

import pytest

from paddle_canary.images.build import (CONTENT_HASH_LABEL, ImageError, build_serving_image,
                                        image_tag)
from paddle_canary.registry import Registry, export_as

pytestmark = pytest.mark.slow
MODEL = "risk-score"


def test_each_version_is_labelled_with_its_model_and_the_oci_labels(serving_images, docker_client,
                                                                    registry_root, serving_base):
    for version, ref in serving_images.items():
        card = Registry(registry_root).card(MODEL, version)
        assert ref.tag == f"{MODEL}-serving:{version}" and ref.content_hash == card.content_hash
        image = docker_client.images.get(ref.tag)
        labels = image.labels
        assert labels[CONTENT_HASH_LABEL] == card.content_hash
        assert labels["io.paddle-canary.model"] == MODEL
        assert labels["io.paddle-canary.version"] == version
        assert labels["org.opencontainers.image.title"] == f"{MODEL}-serving"
        assert labels["org.opencontainers.image.version"] == version
        assert labels["org.opencontainers.image.base.name"] == serving_base
        assert labels["org.opencontainers.image.created"].startswith("20")
        assert labels["org.opencontainers.image.revision"]
        assert labels["org.opencontainers.image.source"]
        config = image.attrs["Config"]
        assert config["Entrypoint"] == ["paddle-canary"] and config["User"] == "10001"
        assert f"PADDLE_CANARY_VERSION={version}" in config["Env"]


def test_a_second_version_reuses_every_dependency_layer(serving_images, docker_client):
    v1 = docker_client.images.get(serving_images["v1"].tag).attrs["RootFS"]["Layers"]
    v2 = docker_client.images.get(serving_images["v2"].tag).attrs["RootFS"]["Layers"]
    assert len(v1) == len(v2)
    assert v1[:-1] == v2[:-1]  # base, user, venv: shared
    assert v1[-1] != v2[-1]    # the model


def test_the_model_in_the_image_is_the_registered_export(serving_images, docker_client,
                                                         registry_root, tmp_path):
    image = serving_images["v2"].tag
    container = docker_client.containers.create(image)
    try:
        bits, _ = container.get_archive(f"/srv/model_registry/{MODEL}/v2/model.pdiparams")
        (tmp_path / "params.tar").write_bytes(b"".join(bits))
    finally:
        container.remove(force=True)
    with tarfile.open(tmp_path / "params.tar") as tar:
        baked = tar.extractfile("model.pdiparams").read()
    assert baked == (registry_root / MODEL / "v2" / "model.pdiparams").read_bytes()


def test_the_same_model_and_code_is_not_built_twice(serving_images, docker_client, registry_root,
                                                    serving_base):
    first = serving_images["v1"]
    again = build_serving_image(registry_root, MODEL, "v1", base=serving_base,
                                client=docker_client, push=False, log=lambda line: None)
    assert again.id == first.id
    assert again.skipped and "already built" in again.skipped and first.content_hash[:19] in \
        again.skipped


def test_a_version_from_another_registry_is_built_from_that_registry(serving_image,
                                                                     broken_registry_root,
                                                                     docker_client):
    ref = serving_image("bad-shift", broken_registry_root)
    card = Registry(broken_registry_root).card(MODEL, "bad-shift")
    assert docker_client.images.get(image_tag(MODEL, "bad-shift")).labels[CONTENT_HASH_LABEL] \
        == card.content_hash == ref.content_hash


def test_push_to_a_registry_and_a_push_that_fails(serving_images, docker_client, registry_root,
                                                  serving_base, image_registry):
    lines: list[str] = []
    ref = build_serving_image(registry_root, MODEL, "v1", base=serving_base, client=docker_client,
                              image_registry=image_registry, log=lines.append)
    assert ref.skipped  # built already: pushed all the same
    assert ref.pushed == f"{image_registry}/{MODEL}-serving:v1"
    assert ref.digest and ref.digest.startswith("sha256:")
    with urllib.request.urlopen(f"http://{image_registry}/v2/{MODEL}-serving/tags/list",
                                timeout=10) as resp:
        assert json.load(resp)["tags"] == ["v1"]

    closed = "127.0.0.1:1"
    with pytest.raises(ImageError, match=rf"pushing {closed}/{MODEL}-serving:v1 failed"):
        build_serving_image(registry_root, MODEL, "v1", base=serving_base, client=docker_client,
                            image_registry=closed, log=lines.append)
    with pytest.raises(ImageError, match="no image registry configured"):
        build_serving_image(registry_root, MODEL, "v1", base=serving_base, client=docker_client,
                            push=True, image_registry=None, log=lines.append)


def test_an_unknown_base_image_is_named(docker_client, registry_root, monkeypatch):
    monkeypatch.delenv("PADDLE_CANARY_IMAGE_REGISTRY", raising=False)
    before = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(ImageError, match=r"base image local/nothing:here is not in the Docker "
                                         r"engine and cannot be pulled"):
        build_serving_image(registry_root, MODEL, "v1", base="local/nothing:here",
                            client=docker_client, log=lambda line: None)
    assert {c.id for c in docker_client.containers.list(all=True)} == before


def test_a_failing_build_names_the_image_and_shows_the_end_of_its_log(docker_client, tmp_path,
                                                                      registry_root):
    # A base without /bin/sh: the first RUN of the Dockerfile cannot start.
    rootfs = tmp_path / "rootfs.tar"
    (tmp_path / "hello").write_text("no shell here\n")
    with tarfile.open(rootfs, "w") as tar:
        tar.add(tmp_path / "hello", arcname="hello")
    docker_client.api.import_image_from_file(str(rootfs), repository="local/empty", tag="test")
    export_as(registry_root / MODEL / "v1", tmp_path / "registry" / MODEL / "broken-build",
              "broken-build")
    before = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(ImageError) as err:
        build_serving_image(tmp_path / "registry", MODEL, "broken-build", base="local/empty:test",
                            client=docker_client, push=False, log=lambda line: None)
    message = str(err.value)
    assert message.startswith(f"building {MODEL}-serving:broken-build failed: ")
    assert "last lines of the build log" in message and "RUN command -v python3" in message
    assert "/bin/sh" in message  # the engine's reason: no shell in that base
    assert {c.id for c in docker_client.containers.list(all=True)} == before  # none left
    assert not docker_client.images.list(name=f"{MODEL}-serving", filters={
        "label": "io.paddle-canary.version=broken-build"})


def test_without_a_source_checkout_an_image_of_the_same_model_is_used(serving_images,
                                                                     docker_client,
                                                                     registry_root, tmp_path,
                                                                     monkeypatch):
    """What build_image does in the compose stack's Airflow image (the package installed, no
    checkout, no wheelhouse): an image built elsewhere from the very same model files is used
    as it is; without one the error says where to build it."""
    import shutil

    from paddle_canary.images import build

    def no_checkout():
        raise ImageError("building images needs the paddle-canary source checkout")
    monkeypatch.setattr(build, "source_root", no_checkout)
    monkeypatch.delenv("PADDLE_CANARY_IMAGE_REGISTRY", raising=False)
    lines: list[str] = []
    ref = build_serving_image(registry_root, MODEL, "v1", client=docker_client, log=lines.append)
    assert ref.id == serving_images["v1"].id and ref.build_s == 0.0
    assert "no source checkout here" in ref.skipped and ref.content_hash[:19] in ref.skipped
    registry = tmp_path / "registry"
    shutil.copytree(registry_root, registry)
    export_as(registry_root / MODEL / "v2", tmp_path / "exports" / "v7", "v7")
    Registry(registry).register(MODEL, "v7", tmp_path / "exports" / "v7")
    with pytest.raises(ImageError, match=r"the engine has no risk-score-serving:v7 built from "
                                         r"model sha256:.*paddle-canary image build risk-score v7"):
        build_serving_image(registry, MODEL, "v7", client=docker_client, log=lines.append)
