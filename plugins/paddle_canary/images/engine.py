"""The Docker engine we talk to, and the errors every image and container step raises."""

from __future__ import annotations

import os

from paddle_canary.errors import UserError

DEFAULT_URL = "unix:///var/run/docker.sock"


class ImageError(UserError):
    """An image could not be made, built or pushed; the message names the image and the cause."""


class EngineUnavailable(ImageError):
    """No Docker engine answers at the URL named in the message."""


def engine_url(url: str | None = None) -> str:
    """``url``, else ``$DOCKER_HOST``, else the default socket."""
    return url or os.environ.get("DOCKER_HOST") or DEFAULT_URL


def docker_client(url: str | None = None, timeout: float = 60.0):
    """A ``docker.DockerClient`` for the engine at ``url`` that has answered a ping.

    Raises :class:`EngineUnavailable` naming the URL when nothing answers there (no daemon, a
    stale socket, no permission), so a caller never fails later in the middle of a step.
    """
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise ImageError("the docker SDK is not installed: pip install -e '.[docker]'") from None
    url = engine_url(url)
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        raise EngineUnavailable(
            f"no Docker engine answers at {url} ({_short(exc)}); start one "
            "(`paddle-canary dockerd start` runs our own) or set DOCKER_HOST") from None
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__
