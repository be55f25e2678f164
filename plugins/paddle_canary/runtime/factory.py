"""Which runtime runs a release's versions: chosen by the plan's ``runtime`` field.

The release controller asks here and never names a concrete runtime. Each runtime module is
imported only when it is chosen (docker and kubernetes need their client libraries).
"""

from __future__ import annotations

from collections.abc import Callable

from paddle_canary.errors import UserError
from paddle_canary.runtime.base import Runtime
from paddle_canary.settings import Settings


def _local(settings: Settings) -> Runtime:
    from paddle_canary.runtime.local import LocalRuntime
    return LocalRuntime(settings.runtime_dir, registry_root=settings.registry_root,
                        targets_dir=settings.targets_dir)


def _docker(settings: Settings) -> Runtime:
    """Containers on the engine at ``$DOCKER_HOST`` (:mod:`paddle_canary.runtime.docker` lists
    the variables), scraped through the stack's file_sd targets like local processes."""
    from paddle_canary.runtime.docker import DockerRuntime
    return DockerRuntime.from_env(registry_root=settings.registry_root,
                                  targets_dir=settings.targets_dir)


def _kubernetes(settings: Settings) -> Runtime:
    from paddle_canary.kube.config import KubeSettings
    from paddle_canary.registry import Registry
    from paddle_canary.runtime.kubernetes import KubernetesRuntime
    return KubernetesRuntime.from_settings(KubeSettings.from_env(),
                                           registry=Registry(settings.registry_root))


_FACTORIES: dict[str, Callable[[Settings], Runtime]] = {"local": _local, "docker": _docker,
                                                         "kubernetes": _kubernetes}

#: Runtime names a plan may choose, in the order the UI form lists them.
RUNTIMES: tuple[str, ...] = tuple(_FACTORIES)


def make_runtime(kind: str, settings: Settings | None = None) -> Runtime:
    """The runtime named ``kind`` for ``settings`` (default: from the environment)."""
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise UserError(f"runtime {kind!r} is not available here; choose one of {list(RUNTIMES)}")
    return factory(settings or Settings.from_env())
