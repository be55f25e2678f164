"""Where a model version runs: the interface every runtime (local, docker, kubernetes) keeps.

A runtime starts a version's serving process, says where it answers, tells whether it is still
the same healthy instance, and stops it. ``deploy`` is idempotent (a version already running is
returned as it is) and returns only once the version answers ``/deep_health`` (a real
inference); ``remove`` of a version that is not running does nothing. The runtime that starts a
version also makes it visible to Prometheus (file service discovery for local processes and
containers, pod annotations on Kubernetes) and hides it again on ``remove``.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass

from paddle_canary.errors import UserError

HEALTHY, FAILING, GONE = "healthy", "failing", "gone"


class DeployError(UserError):
    """A version did not start, or did not pass /deep_health in time (the message says why)."""


@dataclass(frozen=True)
class Endpoint:
    """A running version: its base URL (``http://host:port``), port, PID when local, and
    ``instance``, which names this start of it (a restart gives another instance)."""

    model: str
    version: str
    url: str
    port: int
    pid: int | None = None
    instance: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class VersionHealth:
    """One look at a running version.

    ``state``: ``healthy`` (answers /deep_health with 200), ``failing`` (runs, but /deep_health
    fails or does not answer), ``gone`` (not running). ``instance`` is the instance found (None
    when gone), so a caller holding an earlier Endpoint sees a restart.
    """

    state: str
    detail: str = ""
    instance: str | None = None

    @property
    def healthy(self) -> bool:
        return self.state == HEALTHY

    def restarted_since(self, instance: str | None) -> bool:
        """True when a running instance is found and it is not ``instance`` (an earlier
        :attr:`Endpoint.instance`)."""
        return bool(instance and self.instance and self.instance != instance)

    def to_dict(self) -> dict:
        return {"state": self.state, "detail": self.detail, "instance": self.instance}


class Runtime(abc.ABC):
    #: the name plans and settings use (``local``, ``docker``, ``kubernetes``)
    kind: str = "runtime"

    @abc.abstractmethod
    def deploy(self, model: str, version: str, *, shadow: str | None = None) -> Endpoint:
        """Start ``version`` (or find it running) and wait until it answers /deep_health.

        ``shadow``: another version of the model the serving process also scores every request
        with (paired analysis); its answers are never returned. ``None`` asks for no shadow
        but takes a running process that has one as it is (a promoted candidate deployed as
        the next release's stable: it serves users, so it is not restarted here).
        """

    @abc.abstractmethod
    def remove(self, model: str, version: str) -> None:
        """Stop ``version``; nothing happens when it is not running."""

    @abc.abstractmethod
    def endpoints(self, model: str | None = None) -> list[Endpoint]:
        """The versions running now (of ``model`` when given)."""

    @abc.abstractmethod
    def probe(self, model: str, version: str) -> VersionHealth:
        """One look: is ``version`` running, which instance, and does /deep_health answer 200."""

    def endpoint(self, model: str, version: str) -> Endpoint | None:
        return next((e for e in self.endpoints(model) if e.version == version), None)

    def health(self, model: str, version: str) -> bool:
        """True when ``version`` runs and answers /deep_health with 200."""
        return self.probe(model, version).healthy
