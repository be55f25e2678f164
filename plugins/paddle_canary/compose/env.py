"""The stack's ``.env``: its secrets, made once with random values, and where the Docker engine
is. docker-compose reads it (``--env-file``); ``docker-compose.yaml`` only names the variables.

Secrets are made once and kept (the database volume holds the password it was initialised
with); the engine's socket and group are rewritten on every call. The file is written 0600,
replaced atomically, and git-ignored.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from paddle_canary.errors import UserError

SECRETS = ("POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET")


def read_env(path: Path | str) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return values
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def docker_socket(url: str | None = None) -> Path:
    """The unix socket of the engine (``url``, ``$DOCKER_HOST`` or the default): the Airflow
    services that start versions get it mounted."""
    url = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    parts = urlsplit(url)
    if parts.scheme != "unix" or not parts.path:
        raise UserError(f"the compose stack needs a local engine's unix socket, got {url!r}")
    return Path(parts.path)


def write_env(path: Path | str, docker_url: str | None = None,
              extra: dict[str, str] | None = None) -> dict[str, str]:
    """Create or update ``path``; the values it holds."""
    path = Path(path)
    values = read_env(path)
    for key in SECRETS:
        if not values.get(key):
            values[key] = secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: nothing to quote
    socket = docker_socket(docker_url)
    values["DOCKER_SOCKET"] = str(socket)
    try:
        values["DOCKER_GID"] = str(socket.stat().st_gid)
    except OSError:
        raise UserError(f"no Docker engine socket at {socket}") from None
    values.update(extra or {})
    text = "# Written by `make compose-up` (python -m paddle_canary.compose env): secrets, keep private.\n"
    text += "".join(f"{k}={v}\n" for k, v in values.items())
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return values
