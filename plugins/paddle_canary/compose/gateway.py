"""The compose stack's gateway config, rendered on the Airflow side for the nginx container.

The nginx container (``images/nginx``) and the Airflow services share the volume
``/srv/paddle-canary/gateway`` (:attr:`Settings.gateway_dir` in the Airflow image); nginx runs
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

from paddle_canary.traffic.base import (HEADER_ROUTE, MANY_MODELS, MIRROR, Backend, ModelRoute,
                                        RouterError, RouterHealth, TrafficRouter)
from paddle_canary.traffic.nginx_config import GatewayState, render, status_document
from paddle_canary.traffic.nginx_template import TEMPLATE

PORT = 8000         # the gateway's port in its container (published on 127.0.0.1)
STATUS_PORT = 8081  # read-only status server, reached on the compose network only

COMPOSE_TEMPLATE = TEMPLATE.replace("listen 127.0.0.1:@{port};", "listen @{port};").replace(
    "listen 127.0.0.1:@{status_port};", "listen @{status_port};")
if COMPOSE_TEMPLATE.count("listen @{") != 2:  # the local template changed: fail at import
    raise RuntimeError("the gateway template's listen lines changed; update compose.gateway")


def compose_state(workdir: Path | str, model: str, version: str, stable_url: str
                  ) -> GatewayState:
    """The first state: ``model`` served by its stable ``version`` alone."""
    state = GatewayState(workdir=str(workdir), port=PORT, status_port=STATUS_PORT)
    return state.with_route(ModelRoute(model, stable=Backend(version, stable_url)))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def init_gateway(workdir: Path | str, model: str, version: str, stable_url: str, *,
                 force: bool = False) -> GatewayState:
    """``nginx.conf`` and ``state.json`` in ``workdir`` for ``model``'s stable alone, unless a
    config is there already (a restarted stack keeps the routes a release set) or ``force``."""
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
    state = compose_state(workdir, model, version, stable_url)
    _write(workdir / "nginx.conf", render(state, COMPOSE_TEMPLATE))
    _write(state_path, state.to_json())
    return state


# --- changing the live gateway (from an Airflow container: the volume and the engine's socket) --

APPLY_TIMEOUT_S = 20.0
DRAIN_TIMEOUT_S = 40.0  # nginx closes what old workers still hold after 30 s


def gateway_container(client, service: str = "gateway"):
    """The compose project's ``service`` container, found from the labels of the container this
    runs in (``$HOSTNAME`` is its id)."""
    import socket

    me = client.containers.get(os.environ.get("HOSTNAME") or socket.gethostname())
    project = me.labels.get("com.docker.compose.project")
    if not project:
        raise RouterError(f"this container ({me.name}) is not part of a compose project")
    found = client.containers.list(filters={"label": [
        f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]})
    if len(found) != 1:
        raise RouterError(f"expected one running {service} container in compose project "
                          f"{project}, found {len(found)}")
    return found[0]


class ComposeGateway(TrafficRouter):
    """The nginx container's gateway, as a :class:`TrafficRouter`: config on the shared volume
    ``workdir``, checked with ``nginx -t`` and reloaded with ``nginx -s reload`` in that
    container (Docker API), the live routes read from its status server on the compose
    network. Backends are containers by name (``http://<container>:8080``)."""

    kind = "nginx"
    supports = frozenset({MIRROR, HEADER_ROUTE, MANY_MODELS})

    def __init__(self, workdir: Path | str, client, container=None,
                 status_url: str = f"http://gateway:{STATUS_PORT}"):
        self.workdir = Path(workdir)
        self.client = client
        self.container = container or gateway_container(client)
        self.status_url = status_url

    @property
    def conf_path(self) -> Path:
        return self.workdir / "nginx.conf"

    def state(self) -> GatewayState:
        return GatewayState.from_json((self.workdir / "state.json").read_text())

    def live_status(self) -> dict:
        """``{"generation", "default_model", "routes": {model: route dict}}`` as served."""
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.status_url}/canary/state", timeout=3) as answer:
                return status_document(answer.read().decode())
        except (OSError, ValueError) as exc:
            raise RouterError(f"the compose gateway does not answer on {self.status_url}: "
                              f"{exc}") from None

    def live(self, model: str) -> ModelRoute | None:
        found = self.live_status()["routes"].get(model)
        return ModelRoute.from_dict(found) if found else None

    def models(self) -> list[str]:
        return sorted(self.live_status()["routes"])

    def health(self) -> RouterHealth:
        try:
            live = self.live_status().get("generation")
        except RouterError as exc:
            return RouterHealth(up=False, in_sync=False, detail=str(exc))
        expected = self.state().generation
        if live != expected:
            return RouterHealth(up=True, in_sync=False, detail=f"nginx serves generation {live}, "
                                                               f"state file says {expected}")
        return RouterHealth(up=True, in_sync=True, detail=f"generation {live}")

    def apply(self, route: ModelRoute) -> None:
        self.check_supported(route)
        old = self.state()
        if old.route(route.model) == route and self.health().ok:
            return  # idempotent: nothing to reload
        self._install(old.with_route(route).replace(generation=old.generation + 1))

    def _nginx(self, *args: str) -> tuple[int, str]:
        code, out = self.container.exec_run(
            ["nginx", *args, "-e", str(self.workdir / "logs" / "check.log")])
        return code, out.decode(errors="replace").strip()

    def _install(self, new: GatewayState) -> GatewayState:
        """``new`` in one checked reload; the old config keeps serving when nginx refuses the
        new one or does not load it in time (RouterError either way)."""
        from paddle_canary.process import Timeout, wait_until

        text = render(new, COMPOSE_TEMPLATE)  # RouterError for a bad backend or weight
        candidate = self.workdir / "nginx.conf.new"
        _write(candidate, text)
        code, out = self._nginx("-t", "-q", "-c", str(candidate))
        if code != 0:
            candidate.unlink(missing_ok=True)
            raise RouterError(f"nginx refused the new config (the old one keeps serving): {out}")
        old_text = self.conf_path.read_text()
        os.replace(candidate, self.conf_path)
        code, out = self._nginx("-s", "reload", "-c", str(self.conf_path))
        try:
            if code != 0:
                raise Timeout(out)
            wait_until(lambda: self.live_status().get("generation") == new.generation,
                       APPLY_TIMEOUT_S, interval=0.2,
                       what=f"nginx to load generation {new.generation}")
        except Timeout as exc:
            _write(self.conf_path, old_text)
            self._nginx("-s", "reload", "-c", str(self.conf_path))
            raise RouterError(f"nginx did not load the new config ({exc}); the old one keeps "
                              "serving") from None
        _write(self.workdir / "state.json", new.to_json())
        # Old workers may still take a connection or two right after the reload: the change is
        # done when they are gone (what the local gateway waits for too).
        wait_until(lambda: not self._draining(), DRAIN_TIMEOUT_S, interval=0.3,
                   what="old nginx workers to drain")
        return new

    def _draining(self) -> bool:
        """Any ``nginx: worker process is shutting down`` left in the container."""
        code, out = self.container.exec_run(
            ["sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'"])
        return code != 0 or b"is shutting down" in out
