"""Docker fixtures shared by every test area (imported by ``tests/conftest.py``).

- ``dockerd`` (session): our own dockerd for this session (fresh data root under pytest's tmp
  directory; stopped by PID and its data deleted at the end, also when tests fail).
- ``docker_client`` (session): a ``docker.DockerClient`` on it.
- ``serving_base`` (session): ``local/debian:bookworm`` imported into it (made with debootstrap
  once per machine, then imported from ``var/cache/images/base/`` in seconds).
- ``serving_image`` (session): ``build(version, registry_root=None, model="risk-score") ->
  ImageRef``, each (registry, model, version) built once per session on ``serving_base``.
- ``serving_images`` (session): ``{"v1": ImageRef, "v2": ImageRef}`` of the committed registry.
- ``docker_runtime_factory``: ``make(**DockerRuntime kwargs) -> DockerRuntime`` on the session's
  engine and network, its own namespace, Prometheus targets in the test's tmp dir; every
  container it started is removed when the test ends.
- ``docker_runtime``: one of those on the committed registry, with v1 and v2 built.
- ``image_registry`` (session): Debian's ``docker-registry`` on a free 127.0.0.1 port,
  ``host:port``; stopped by PID at the end. ``private_image_registry``: one that wants the
  basic-auth login ``REGISTRY_LOGIN``.
"""

from __future__ import annotations

import logging
import shutil
import signal
import uuid
from pathlib import Path

import pytest

from paddle_canary.process import free_port, port_open, spawn, stop_pid, wait_until

log = logging.getLogger("tests.docker")
MODEL = "risk-score"


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory):
    from paddle_canary.localstack.dockerd import Dockerd

    engine = Dockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        yield engine.start()
    finally:
        engine.wipe()


@pytest.fixture(scope="session")
def docker_client(dockerd):
    client = dockerd.client(timeout=600)
    yield client
    client.close()


@pytest.fixture(scope="session")
def serving_base(docker_client) -> str:
    from paddle_canary.images.base import ensure_base

    return ensure_base(docker_client, log=log.info).tag


@pytest.fixture(scope="session")
def serving_image(docker_client, serving_base):
    from paddle_canary.images.build import build_serving_image

    built: dict = {}

    def build(version: str, registry_root: Path | None = None, model: str = MODEL):
        key = (str(registry_root), model, version)
        if key not in built:
            built[key] = build_serving_image(registry_root, model, version, base=serving_base,
                                             client=docker_client, push=False, log=log.info)
        return built[key]

    return build


@pytest.fixture(scope="session")
def serving_images(serving_image, registry_root) -> dict:
    return {v: serving_image(v, registry_root) for v in ("v1", "v2")}


@pytest.fixture
def docker_runtime_factory(dockerd, docker_client, tmp_path):
    from paddle_canary.runtime.docker import LABEL, DockerRuntime

    namespaces: list[str] = []

    def make(**kwargs) -> DockerRuntime:
        namespace = kwargs.pop("namespace", f"t{uuid.uuid4().hex[:8]}")
        namespaces.append(namespace)
        kwargs.setdefault("client", docker_client)
        kwargs.setdefault("network", dockerd.network)
        kwargs.setdefault("targets_dir", tmp_path / "targets")
        return DockerRuntime(namespace=namespace, **kwargs)

    yield make
    for namespace in namespaces:
        for container in docker_client.containers.list(
                all=True, filters={"label": f"{LABEL}.namespace={namespace}"}):
            container.remove(force=True)


@pytest.fixture
def docker_runtime(docker_runtime_factory, serving_images, registry_root):
    return docker_runtime_factory(registry_root=registry_root)


def _serve_registry(home: Path, htpasswd: Path | None = None):
    """Debian's docker-registry on a free 127.0.0.1 port (basic auth from ``htpasswd`` when
    given); yields ``host:port``, stopped by PID at the end."""
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry not found: apt-get install docker-registry (make os-deps)")
    port = free_port()
    config = home / "config.yml"
    auth = (f"auth:\n  htpasswd:\n    realm: paddle-canary-test\n    path: {htpasswd}\n"
            if htpasswd else "")
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {home / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
                      + auth)
    proc = spawn(["docker-registry", "serve", str(config)], home / "registry.log")
    try:
        wait_until(lambda: proc.poll() is None and port_open(port), 30,
                   what=f"docker-registry on {port}")
        yield f"127.0.0.1:{port}"
    finally:
        stop_pid(proc.pid, signal.SIGTERM, 10)


@pytest.fixture(scope="session")
def image_registry(tmp_path_factory) -> str:
    yield from _serve_registry(tmp_path_factory.mktemp("image-registry"))


#: The login of :func:`private_image_registry`.
REGISTRY_LOGIN = ("pusher", "s3cret-registry-pw")


@pytest.fixture(scope="session")
def private_image_registry(tmp_path_factory) -> str:
    """A docker-registry that wants the basic-auth login :data:`REGISTRY_LOGIN`."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt through libxcrypt; the registry takes $2b$ hashes
    home = tmp_path_factory.mktemp("private-image-registry")
    user, password = REGISTRY_LOGIN
    htpasswd = home / "htpasswd"
    htpasswd.write_text(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
    htpasswd.chmod(0o600)
    yield from _serve_registry(home, htpasswd)
