"""The traffic-router interface every data plane implements (nginx, Istio).

Modelled on Argo Rollouts' TrafficRoutingReconciler: which backends are routed travels with the
weight (``UpdateHash(canary, stable)`` + ``SetWeight``), the change is applied in one step, and it
is then read back from the data plane itself (``VerifyWeight``), never from our own bookkeeping.

A gateway hosts many models. Everything is per model: a :class:`ModelRoute` says, for one model,
which stable and candidate backends serve it, the candidate's sticky share of users, the share of
stable's requests mirrored to the candidate (answers discarded), and a header that sends a request
to the candidate at any weight. Changing one model's route never touches another's.

A router that cannot do something raises :class:`Unsupported` before anything changes.
"""

from __future__ import annotations

import abc
import dataclasses
import numbers
import re
from typing import Any

from paddle_canary.errors import UserError

MIRROR = "mirror"
HEADER_ROUTE = "header_route"
MANY_MODELS = "many_models"
FEATURES = (MIRROR, HEADER_ROUTE, MANY_MODELS)

_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_HEADER_VALUE = re.compile(r"^[A-Za-z0-9._~+/=-]{1,128}$")


class RouterError(UserError):
    """The data plane cannot do what was asked (bad backend, config or patch refused, router
    not running, API unreachable). Shared by every router."""


class Unsupported(RouterError):
    """This router cannot do that (a feature it does not implement); nothing was changed."""


class InvalidWeight(UserError, ValueError):
    """A weight that is not an integer percentage in 0..100."""


def check_weight(weight: object, what: str = "weight") -> int:
    """Return ``weight`` as an int in 0..100 or raise :class:`InvalidWeight`.

    ``True``/``False``, floats (even 5.0), strings and out-of-range numbers are refused:
    a typo must never move traffic.
    """
    if isinstance(weight, bool) or not isinstance(weight, numbers.Integral):
        raise InvalidWeight(f"{what} must be an integer percentage 0..100, got {weight!r}")
    if not 0 <= int(weight) <= 100:
        raise InvalidWeight(f"{what} must be between 0 and 100, got {weight}")
    return int(weight)


@dataclasses.dataclass(frozen=True)
class Backend:
    """A running version as the data plane reaches it.

    ``url`` is ``http://host:port`` for routers that address processes or containers (nginx);
    routers that address versions by label (Istio subsets) leave it None.
    """

    version: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "url": self.url}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Backend | None":
        return None if not d else cls(version=str(d["version"]), url=d.get("url"))


@dataclasses.dataclass(frozen=True)
class HeaderRoute:
    """Requests whose header ``name`` equals ``value`` go to the candidate at any weight
    (internal testers before the public steps)."""

    name: str
    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _HEADER_NAME.match(self.name):
            raise RouterError(f"header route name must be letters, digits and '-', got {self.name!r}")
        if self.name.lower() in ("x-user-id", "host", "content-length", "connection"):
            raise RouterError(f"header {self.name!r} cannot select the candidate")
        if not isinstance(self.value, str) or not _HEADER_VALUE.match(self.value):
            raise RouterError(f"header route value must be 1-128 URL-safe characters, "
                              f"got {self.value!r}")

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "HeaderRoute | None":
        return None if not d else cls(name=d["name"], value=d["value"])


@dataclasses.dataclass(frozen=True)
class ModelRoute:
    """How one model's traffic is routed. Invalid combinations are refused on construction."""

    model: str
    stable: Backend
    candidate: Backend | None = None
    weight: int = 0
    mirror: int = 0
    header: HeaderRoute | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", check_weight(self.weight))
        object.__setattr__(self, "mirror", check_weight(self.mirror, "mirror share"))
        if not isinstance(self.model, str) or not self.model:
            raise RouterError(f"a route needs a model name, got {self.model!r}")
        if not isinstance(self.stable, Backend):
            raise RouterError(f"{self.model}: a route needs a stable backend")
        if self.candidate is None:
            if self.weight or self.mirror or self.header:
                raise RouterError(f"{self.model}: weight {self.weight} %, mirror {self.mirror} % "
                                  "or a header route need a candidate backend; none is given")
        elif self.candidate.version == self.stable.version:
            raise RouterError(f"{self.model}: stable and candidate are the same version "
                              f"{self.stable.version!r}")

    def replace(self, **changes: Any) -> "ModelRoute":
        return dataclasses.replace(self, **changes)

    def without_candidate(self) -> "ModelRoute":
        """Every user on stable, nothing mirrored, no header route."""
        return self.replace(candidate=None, weight=0, mirror=0, header=None)

    def features(self) -> set[str]:
        """The optional router features this route needs."""
        return ({MIRROR} if self.mirror else set()) | ({HEADER_ROUTE} if self.header else set())

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "stable": self.stable.to_dict(),
                "candidate": self.candidate.to_dict() if self.candidate else None,
                "weight": self.weight, "mirror": self.mirror,
                "header": self.header.to_dict() if self.header else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelRoute":
        return cls(model=d["model"], stable=Backend.from_dict(d["stable"]),
                   candidate=Backend.from_dict(d.get("candidate")),
                   weight=d.get("weight", 0), mirror=d.get("mirror", 0),
                   header=HeaderRoute.from_dict(d.get("header")))


@dataclasses.dataclass(frozen=True)
class RouterHealth:
    """Is the data plane up, and does it serve what it was last told?"""

    up: bool
    in_sync: bool
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.up and self.in_sync

    def to_dict(self) -> dict[str, Any]:
        return {"up": self.up, "in_sync": self.in_sync, "ok": self.ok, "detail": self.detail}


class TrafficRouter(abc.ABC):
    """Routes each model's users between its stable version and a candidate."""

    #: the data plane's name in messages and settings (``nginx``, ``istio``)
    kind: str = "router"
    #: optional features this router implements (see :data:`FEATURES`)
    supports: frozenset[str] = frozenset()
    #: True when backends are addressed by URL (nginx); False when by version label (Istio)
    routes_by_url: bool = True

    # ---- what each router implements -------------------------------------------------------

    @abc.abstractmethod
    def apply(self, route: ModelRoute) -> None:
        """Route ``route.model`` as ``route`` says (backends, weight, mirror and header in one
        change), then wait until the data plane serves it. Idempotent. On failure raises
        :class:`RouterError` and the previous route keeps serving."""

    @abc.abstractmethod
    def live(self, model: str) -> ModelRoute | None:
        """``model``'s route as the data plane serves it now, read back from it; None when it
        has no route for the model. Raises :class:`RouterError` when it cannot be read."""

    @abc.abstractmethod
    def health(self) -> RouterHealth:
        """Whether the data plane answers and serves the routes it was last given."""

    @abc.abstractmethod
    def models(self) -> list[str]:
        """The models the data plane routes now."""

    # ---- the same for every router ---------------------------------------------------------

    def backend(self, version: str, url: str | None) -> Backend:
        """How this router names a running version: by its URL, or by its version alone."""
        return Backend(version, url if self.routes_by_url else None)

    def check_supported(self, route: ModelRoute) -> None:
        missing = sorted(route.features() - set(self.supports))
        if missing:
            raise Unsupported(f"the {self.kind} router does not support {', '.join(missing)} "
                              f"(asked for {route.model})")

    def route(self, model: str) -> ModelRoute:
        """The live route of ``model``; :class:`RouterError` when there is none."""
        found = self.live(model)
        if found is None:
            raise RouterError(f"the {self.kind} gateway has no route for model {model!r}")
        return found

    def verify(self, route: ModelRoute) -> bool:
        """True when the data plane serves exactly ``route``."""
        try:
            return self.live(route.model) == route
        except RouterError:
            return False

    def apply_verified(self, route: ModelRoute) -> ModelRoute:
        """Apply ``route`` and read it back; :class:`RouterError` when the data plane disagrees."""
        self.apply(route)
        live = self.live(route.model)
        if live != route:
            raise RouterError(f"the {self.kind} gateway does not serve the route it was given for "
                              f"{route.model}: asked {route.to_dict()}, live "
                              f"{live.to_dict() if live else None}")
        return live

    def set_weight(self, model: str, weight: int) -> ModelRoute:
        """Send ``weight`` % of ``model``'s users (by sticky bucket) to its candidate; verified."""
        weight = check_weight(weight)
        return self.apply_verified(self.route(model).replace(weight=weight))

    def weight(self, model: str) -> int:
        """The candidate weight the live data plane serves for ``model`` (0 without a route)."""
        found = self.live(model)
        return found.weight if found else 0

    def verify_weight(self, model: str, weight: int) -> bool:
        weight = check_weight(weight)
        try:
            return self.weight(model) == weight
        except RouterError:
            return False
