"""The compose stack's gateway config, rendered on the Airflow side for the nginx container.

The nginx container (``images/nginx``) and the Airflow services share the volume
``/srv/paddle-canary/gateway`` (:attr:`StackPaths.gateway_dir` in the Airflow image); nginx runs
``nginx.conf`` from there. The config is the local gateway's (:mod:`paddle_canary.traffic.
nginx_template`) with one difference: it listens on every interface of the container (its
network), not on 127.0.0.1, so the published port and the Airflow services reach it; backends are
containers by name (``http://stable:8080``), resolved on the compose network.

:func:`init_gateway` (run by the init service) writes the first config, stable only, with the
``state.json`` the local gateway keeps, so a weight change renders from the same state.
"""

from __future__ import annotations

import os
from pathlib import Path

from paddle_canary.traffic.base import RouterError
from paddle_canary.traffic.nginx_config import GatewayState, render
from paddle_canary.traffic.nginx_template import TEMPLATE

PORT = 8000         # the gateway's port in its container (published on 127.0.0.1)
STATUS_PORT = 8081  # read-only status server, reached on the compose network only

COMPOSE_TEMPLATE = TEMPLATE.replace("listen 127.0.0.1:@{port};", "listen @{port};").replace(
    "listen 127.0.0.1:@{status_port};", "listen @{status_port};")
if COMPOSE_TEMPLATE.count("listen @{") != 2:  # the local template changed: fail at import
    raise RuntimeError("the gateway template's listen lines changed; update compose.gateway")


def compose_state(workdir: Path | str, stable_url: str) -> GatewayState:
    return GatewayState(workdir=str(workdir), port=PORT, status_port=STATUS_PORT,
                        stable_url=stable_url)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def init_gateway(workdir: Path | str, stable_url: str, *, force: bool = False) -> GatewayState:
    """``nginx.conf`` and ``state.json`` in ``workdir`` for stable alone (weight 0), unless a
    config is there already (a restarted stack keeps the weight a release set) or ``force``."""
    workdir = Path(workdir)
    state_path = workdir / "state.json"
    if state_path.is_file() and (workdir / "nginx.conf").is_file() and not force:
        state = GatewayState.from_json(state_path.read_text())
        if state.port != PORT or state.status_port != STATUS_PORT:
            raise RouterError(f"{state_path} is not a compose gateway's state "
                              f"(ports {state.port}/{state.status_port})")
        return state
    for sub in ("logs", "temp"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    state = compose_state(workdir, stable_url)
    _write(workdir / "nginx.conf", render(state, COMPOSE_TEMPLATE))
    _write(state_path, state.to_json())
    return state
