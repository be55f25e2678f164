"""Where the parts of a release deployment are, read from the environment in one place.

The Airflow components, the CLI, the demo and the tests all find the same registry, state
directory, gateway and Prometheus through these variables, so a task started by the scheduler
drives the nginx and serving processes that ``make up`` started.

- ``PADDLE_CANARY_HOME``: state directory (default ``<repo>/var/stack``): release journals,
  reports, the local runtime's and the gateway's state
- ``PADDLE_CANARY_REGISTRY``: model registry root (default: the stack's working copy
  ``$PADDLE_CANARY_HOME/registry`` when ``make up`` made one, else ``<repo>/model_registry``).
  Inside Airflow the Variable ``paddle_canary_registry`` comes first
  (:mod:`paddle_canary.settings_sources`).
- ``PADDLE_CANARY_PROMETHEUS_URL``: Prometheus base URL (default ``http://127.0.0.1:9090``)
- ``PADDLE_CANARY_ROUTER``: the data plane, ``nginx`` (default), ``istio`` or ``compose`` (the
  compose stack's nginx container)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

#: The repository this package runs from (images/, dags/, model_registry/ live there).
REPO = Path(__file__).resolve().parents[2]


def _home(env) -> Path:
    return Path(env.get("PADDLE_CANARY_HOME") or REPO / "var" / "stack")


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path
    registry_root: Path
    prometheus_url: str
    router: str = "nginx"

    @property
    def runtime_dir(self) -> Path:
        return self.home / "runtime"

    @property
    def gateway_dir(self) -> Path:
        return self.home / "gateway"

    @property
    def targets_dir(self) -> Path:
        """Prometheus file service discovery: one JSON file per running version."""
        return self.home / "prometheus" / "targets"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def releases_dir(self) -> Path:
        """The release journals: ``<releases_dir>/<model>/<run>.jsonl``."""
        return self.home / "releases"

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *,
                 registry_root: Path | str | None = None) -> "Settings":
        """From ``env`` (default: the environment); the registry after the registered sources
        (inside Airflow: its Variable), or ``registry_root`` when given (no source asked)."""
        from paddle_canary import settings_sources

        env = os.environ if env is None else env
        return cls(
            home=_home(env),
            registry_root=Path(registry_root or settings_sources.first("registry")
                               or cls.env_registry_root(env)),
            prometheus_url=env.get("PADDLE_CANARY_PROMETHEUS_URL") or "http://127.0.0.1:9090",
            router=env.get("PADDLE_CANARY_ROUTER") or "nginx",
        )

    @staticmethod
    def env_registry_root(env: dict[str, str] | None = None) -> Path:
        """The registry the environment names (no source asked): ``PADDLE_CANARY_REGISTRY``,
        else the stack's working copy, else the repository's ``model_registry``."""
        env = os.environ if env is None else env
        copy = _home(env) / "registry"
        return Path(env.get("PADDLE_CANARY_REGISTRY")
                    or (copy if copy.is_dir() else REPO / "model_registry"))

    def to_env(self) -> dict[str, str]:
        return {
            "PADDLE_CANARY_HOME": str(self.home),
            "PADDLE_CANARY_REGISTRY": str(self.registry_root),
            "PADDLE_CANARY_PROMETHEUS_URL": self.prometheus_url,
            "PADDLE_CANARY_ROUTER": self.router,
        }
