"""In-memory doubles of the router, the runtime and the metrics provider for controller tests.

They keep the interfaces' contracts (tests/contracts runs the same contract tests against them
and against the real nginx router and local runtime) and add knobs to inject faults: a router
that is down or refuses changes, a version that exits, restarts or fails /deep_health.
"""

from __future__ import annotations

import itertools

from paddle_canary.analysis.counts import NoData
from paddle_canary.analysis.provider import MetricsProvider
from paddle_canary.runtime.base import (FAILING, GONE, HEALTHY, DeployError, Endpoint, Runtime,
                                        VersionHealth)
from paddle_canary.traffic.base import (FEATURES, ModelRoute, RouterError, RouterHealth,
                                        TrafficRouter)

_ports = itertools.count(20000)
_instances = itertools.count(1)


class MemoryRouter(TrafficRouter):
    kind = "memory"

    def __init__(self, supports=FEATURES):
        self.supports = frozenset(supports)
        self.routes: dict[str, ModelRoute] = {}
        self.applied: list[ModelRoute] = []  # every change, in order
        self.down = False       # the data plane does not answer at all
        self.refuse = False     # it answers, but refuses changes
        self.out_of_sync = False

    def apply(self, route: ModelRoute) -> None:
        self.check_supported(route)
        if self.down:
            raise RouterError("memory gateway is down")
        if self.refuse:
            raise RouterError("memory gateway refuses the change")
        if self.routes.get(route.model) != route:
            self.routes[route.model] = route
            self.applied.append(route)

    def live(self, model: str) -> ModelRoute | None:
        if self.down:
            raise RouterError("memory gateway is down")
        return self.routes.get(model)

    def models(self) -> list[str]:
        if self.down:
            raise RouterError("memory gateway is down")
        return sorted(self.routes)

    def health(self) -> RouterHealth:
        if self.down:
            return RouterHealth(False, False, "memory gateway is down")
        if self.out_of_sync:
            return RouterHealth(True, False, "memory gateway serves an older generation")
        return RouterHealth(True, True, "ok")


class MemoryRuntime(Runtime):
    kind = "memory"

    def __init__(self, known_versions=None):
        self.known = known_versions  # None: every version deploys
        self.running: dict[tuple[str, str], Endpoint] = {}
        self.failing: dict[tuple[str, str], str] = {}
        self.deploys: list[tuple[str, str, str | None]] = []
        self.removed: list[tuple[str, str]] = []
        self.refuse_remove = False

    def _start(self, model: str, version: str) -> Endpoint:
        port = next(_ports)
        return Endpoint(model, version, f"http://127.0.0.1:{port}", port,
                        instance=f"mem-{next(_instances)}")

    def deploy(self, model: str, version: str, *, shadow: str | None = None) -> Endpoint:
        if self.known is not None and version not in self.known:
            raise DeployError(f"{model} {version} is not registered")
        key = (model, version)
        self.deploys.append((model, version, shadow))
        if key not in self.running:
            self.running[key] = self._start(model, version)
        return self.running[key]

    def remove(self, model: str, version: str) -> None:
        if self.refuse_remove:
            raise DeployError(f"cannot stop {model} {version}")
        if self.running.pop((model, version), None) is not None:
            self.removed.append((model, version))
        self.failing.pop((model, version), None)

    def endpoints(self, model: str | None = None) -> list[Endpoint]:
        return [e for (m, _), e in sorted(self.running.items()) if model in (None, m)]

    def probe(self, model: str, version: str) -> VersionHealth:
        endpoint = self.running.get((model, version))
        if endpoint is None:
            return VersionHealth(GONE, f"{model} {version} is not running")
        if (model, version) in self.failing:
            return VersionHealth(FAILING, self.failing[(model, version)], endpoint.instance)
        return VersionHealth(HEALTHY, "ok", endpoint.instance)

    # ---- faults ------------------------------------------------------------------------------

    def kill(self, model: str, version: str) -> None:
        self.running.pop((model, version), None)

    def restart(self, model: str, version: str) -> Endpoint:
        self.running[(model, version)] = self._start(model, version)
        return self.running[(model, version)]

    def fail_health(self, model: str, version: str, why: str = "503: scores not finite") -> None:
        self.failing[(model, version)] = why


class CountsProvider(MetricsProvider):
    """Window counts from a dict ``{version: WindowCounts | NoData}`` (NoData when absent)."""

    def __init__(self, counts=None):
        self.counts = dict(counts or {})

    def query(self, promql_text):  # pragma: no cover - the judge only asks window_counts
        raise NotImplementedError

    def samples(self, promql_text):  # pragma: no cover
        raise NotImplementedError

    def is_online(self) -> bool:
        return True

    def window_counts(self, model, version, *, start=None, end=None, window_s=None,
                      paired_with=None):
        found = self.counts.get(version)
        if found is None:
            return NoData(model, version, "no series (test)", start or 0.0, end or 0.0)
        return found
