"""Where a model version runs: the interface every runtime (local, docker, kubernetes) keeps.

A runtime starts a version's serving process, says where it answers, and stops it. ``deploy``
is idempotent (a version already running is returned as it is) and returns only once the
version answers ``/deep_health`` (a real inference); ``remove`` of a version that is not running
does nothing.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Endpoint:
    """A running version: its base URL (``http://host:port``), port, and PID when local."""

    model: str
    version: str
    url: str
    port: int
    pid: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Runtime(abc.ABC):
    @abc.abstractmethod
    def deploy(self, model: str, version: str) -> Endpoint:
        """Start ``version`` (or find it running) and wait until it answers /deep_health."""

    @abc.abstractmethod
    def remove(self, model: str, version: str) -> None:
        """Stop ``version``; nothing happens when it is not running."""

    @abc.abstractmethod
    def endpoints(self) -> list[Endpoint]:
        """The versions running now."""

    @abc.abstractmethod
    def health(self, model: str, version: str) -> bool:
        """True when ``version`` runs and answers /deep_health with 200."""
