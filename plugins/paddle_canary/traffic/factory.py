"""Which data plane routes the users: chosen by the settings' ``router`` field.

The release controller asks here and never names a concrete router.
"""

from __future__ import annotations

from collections.abc import Callable

from paddle_canary.errors import UserError
from paddle_canary.settings import Settings
from paddle_canary.traffic.base import TrafficRouter


def _nginx(settings: Settings) -> TrafficRouter:
    from paddle_canary.traffic.nginx import NginxRouter
    return NginxRouter.attach(settings.gateway_dir)


def _istio(settings: Settings) -> TrafficRouter:
    from paddle_canary.kube.config import KubeSettings
    from paddle_canary.traffic.istio import IstioRouter
    return IstioRouter.from_settings(KubeSettings.from_env())


def _compose(settings: Settings) -> TrafficRouter:
    """The compose stack's nginx container, driven from an Airflow container (shared volume,
    the engine's socket)."""
    import docker

    from paddle_canary.compose.gateway import ComposeGateway
    return ComposeGateway(settings.gateway_dir, docker.from_env())


_FACTORIES: dict[str, Callable[[Settings], TrafficRouter]] = {
    "nginx": _nginx, "istio": _istio, "compose": _compose}

ROUTERS: tuple[str, ...] = tuple(_FACTORIES)


def make_router(settings: Settings | None = None) -> TrafficRouter:
    """The router the settings name (default: from the environment)."""
    settings = settings or Settings.from_env()
    factory = _FACTORIES.get(settings.router)
    if factory is None:
        raise UserError(f"router {settings.router!r} is not available here; "
                        f"choose one of {list(ROUTERS)} (PADDLE_CANARY_ROUTER)")
    return factory(settings)
