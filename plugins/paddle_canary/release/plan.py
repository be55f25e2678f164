"""Resolve a release request into a :class:`ReleasePlan`, refusing bad requests before any change.

A request is what a person gives the ``model_release`` DAG (UI form, CLI or REST conf):
``{"model": ..., "version": ..., optional overrides}``. Everything is checked here, so a bad
request stops at the first task with a message that names the problem, and no weight moves.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from typing import Any

from paddle_canary.errors import UserError
from paddle_canary.runtime.factory import RUNTIMES

ENV_RUNTIME = "PADDLE_CANARY_RUNTIME"

# The DAG has this many step slots (task groups); a plan may use fewer.
MAX_STEPS = 12
DEFAULT_STEPS = (5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 100)
DEFAULT_PLAN = {
    "steps": list(DEFAULT_STEPS),
    "step_interval_s": 3600,
    "approvals_before": [50, 100],
    "teardown_delay_s": 86400,
    "poll_interval_s": 10,
    "max_extensions": 2,
    "runtime": "local",
    # The candidate's process also scores every request with the stable version (serve
    # --shadow): the judge compares the two on the same rows (docs/paired-analysis.md).
    "paired": True,
    # The shadow phase before the first step: for shadow_s seconds the gateway mirrors
    # shadow_mirror % of stable's requests to the candidate (answers discarded, no user on it)
    # and the judge looks at them as step 0. 0 = no shadow phase.
    "shadow_s": 0,
    "shadow_mirror": 100,
}
REQUEST_KEYS = {"model", "version", "gates", "header_route", *DEFAULT_PLAN}


class PlanError(UserError):
    """A release request that cannot be carried out; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class ReleasePlan:
    model: str
    candidate: str
    baseline: str
    steps: tuple[int, ...]
    step_interval_s: float
    approvals_before: tuple[int, ...]
    teardown_delay_s: float
    poll_interval_s: float
    max_extensions: int
    runtime: str
    gates: dict[str, Any]
    run_id: str = ""
    paired: bool = True   # plans recorded before the field existed: paired, the default
    shadow_s: float = 0.0
    shadow_mirror: int = 100

    @property
    def n_judged_steps(self) -> int:
        """The windows the release judges, over which its alpha is spent: the shadow phase
        (step 0, when planned) and one per step."""
        return len(self.steps) + (1 if self.shadow_s > 0 else 0)

    def step_alpha(self, total_alpha: float, step: int | None) -> float:
        """The alpha a look at step ``step`` (1-based; 0 = the shadow phase) judges the step's
        own window with: the step's share of half the release's ``total_alpha``
        (``analysis.spending.step_alpha``); the other half is the release window's
        (:meth:`release_alpha`), so an identical candidate fails the whole release with
        probability <= ``total_alpha``. A look outside the steps (``None``) gets
        ``total_alpha``."""
        if step is None:
            return float(total_alpha)
        from paddle_canary.analysis.spending import step_alpha
        index = int(step) - 1 + (1 if self.shadow_s > 0 else 0)
        return step_alpha(total_alpha / 2, index, self.n_judged_steps)

    @staticmethod
    def release_alpha(total_alpha: float) -> float:
        """The alpha of the release window (``analysis.release_window``): one confidence
        sequence from the candidate's deploy to the end, looked at from every step."""
        return float(total_alpha) / 2
    #: ``{"name": header, "value": value}``: requests carrying it go to the candidate from
    #: deploy until promotion or rollback, at any weight (internal testers); None = no such route
    header_route: dict[str, str] | None = None
    #: model.yaml's ``promotion_window`` (:mod:`paddle_canary.release.window`): steps move
    #: traffic only inside it; None = any time
    promotion_window: dict[str, Any] | None = None

    def window(self):
        """The promotion window as a :class:`~paddle_canary.release.window.PromotionWindow`,
        or None when the model has none."""
        if not self.promotion_window:
            return None
        from paddle_canary.release.window import PromotionWindow
        return PromotionWindow.parse(self.promotion_window)

    @property
    def nominal_s(self) -> float:
        """How long the run takes when every look is conclusive and nobody makes it wait: the
        shadow phase, each step's interval, and the old version's teardown delay. Approvals,
        extensions and promotion-window waits come on top (the deadline alert's margin)."""
        return float(self.shadow_s + len(self.steps) * self.step_interval_s
                     + self.teardown_delay_s)

    def step_at(self, slot: int) -> int | None:
        """The weight of step slot ``slot`` (0-based), or None when the plan has no such step."""
        return self.steps[slot] if 0 <= slot < len(self.steps) else None

    def needs_approval_before(self, weight: int) -> bool:
        """True when a person approves before the traffic moves to ``weight``.

        ``approvals_before: [50, 100]`` means: before the first step at or above 50 % and before
        the first step at or above 100 %.
        """
        for threshold in self.approvals_before:
            first = next((s for s in self.steps if s >= threshold), None)
            if first == weight:
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["steps"] = list(self.steps)
        d["approvals_before"] = list(self.approvals_before)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ReleasePlan":
        d = dict(d)
        d["steps"] = tuple(d["steps"])
        d["approvals_before"] = tuple(d["approvals_before"])
        return cls(**d)


def _int_list(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise PlanError(f"{name} must be a non-empty list of integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise PlanError(f"{name} must hold integers, got {v!r}")
        if not 1 <= int(v) <= 100:
            raise PlanError(f"{name} values must be between 1 and 100, got {v}")
        out.append(int(v))
    return tuple(out)


def _number(name: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise PlanError(f"{name} must be a number, got {value!r}")
    if value < minimum:
        raise PlanError(f"{name} must be at least {minimum}, got {value}")
    return float(value)


def check_steps(steps: Any) -> tuple[int, ...]:
    steps = _int_list("steps", steps)
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise PlanError(f"steps must be strictly increasing, got {list(steps)}")
    if steps[-1] != 100:
        raise PlanError(f"steps must end at 100 (full promotion), got {list(steps)}")
    if len(steps) > MAX_STEPS:
        raise PlanError(f"at most {MAX_STEPS} steps, got {len(steps)}")
    return steps


def check_header_route(value: Any) -> dict[str, str] | None:
    """``{"name": ..., "value": ...}`` checked by the traffic layer's rules, or None."""
    from paddle_canary.traffic.base import HeaderRoute, RouterError
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"name", "value"}:
        raise PlanError('header_route must be an object {"name": HEADER, "value": VALUE}, '
                        f"got {value!r}")
    try:
        return HeaderRoute(name=value["name"], value=value["value"]).to_dict()
    except RouterError as exc:
        raise PlanError(str(exc)) from None


def resolve_plan(registry, request: dict[str, Any], check_gates=None, run_id: str = "") -> ReleasePlan:
    """Check ``request`` against the registry and the model's defaults; return the plan.

    ``check_gates(defaults: dict, overrides: dict) -> dict`` validates and merges gate
    thresholds (the analysis package's); it raises a UserError on an unknown gate or a
    nonsense threshold.
    """
    if not isinstance(request, dict):
        raise PlanError(f"a release request is a JSON object, got {type(request).__name__}")
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise PlanError(f"unknown request field(s) {unknown}; allowed: {sorted(REQUEST_KEYS)}")
    model, version = request.get("model"), request.get("version")
    if not model or not isinstance(model, str):
        raise PlanError("model is required (a registered model name)")
    if not version or not isinstance(version, str):
        raise PlanError("version is required (a registered version of the model)")
    versions = registry.versions(model)  # raises for an unknown or malformed model name
    if version not in versions:
        raise PlanError(f"unknown version {version!r} of model {model!r}; registered: {versions}")
    pointers = registry.pointers(model)
    if pointers.stable is None:
        raise PlanError(f"model {model!r} has no stable version to compare with; "
                        "promote one first (paddle-canary registry promote)")
    if version == pointers.stable:
        raise PlanError(f"{model} {version} is already the stable version")
    status = registry.status(model, version)
    if status == "rejected":
        raise PlanError(f"{model} {version} was rejected by an earlier release; "
                        "register a new version instead")

    defaults = registry.model_defaults(model)
    # The stack's own runtime (PADDLE_CANARY_RUNTIME: docker on the compose stack) replaces the
    # built-in default; a model.yaml or the request still chooses over it.
    stack_default = {"runtime": os.environ.get(ENV_RUNTIME)} if os.environ.get(ENV_RUNTIME) \
        else {}
    merged = {**DEFAULT_PLAN, **stack_default, **(defaults.get("plan") or {})}
    merged.update({k: v for k, v in request.items() if k in DEFAULT_PLAN and v is not None})

    steps = check_steps(merged["steps"])
    approvals = _int_list("approvals_before", merged["approvals_before"]) \
        if merged["approvals_before"] else ()
    runtime = merged["runtime"]
    if runtime not in RUNTIMES:
        raise PlanError(f"runtime {runtime!r} is not available here; choose one of {list(RUNTIMES)}")
    paired = merged["paired"]
    if not isinstance(paired, bool):
        raise PlanError(f"paired must be true or false, got {paired!r}")
    mirror = merged["shadow_mirror"]
    if isinstance(mirror, bool) or not isinstance(mirror, numbers.Integral) or \
            not 1 <= mirror <= 100:
        raise PlanError(f"shadow_mirror must be an integer percentage 1..100, got {mirror!r}")
    max_ext = merged["max_extensions"]
    if isinstance(max_ext, bool) or not isinstance(max_ext, numbers.Integral) or max_ext < 0:
        raise PlanError(f"max_extensions must be a non-negative integer, got {max_ext!r}")

    gate_defaults = defaults.get("gates") or {}
    overrides = request.get("gates") or {}
    if not isinstance(overrides, dict):
        raise PlanError(f"gates must be an object of gate -> thresholds, got {overrides!r}")
    gates = check_gates(gate_defaults, overrides) if check_gates else {**gate_defaults, **overrides}
    window = None
    if defaults.get("promotion_window") is not None:
        from paddle_canary.release.window import PromotionWindow, WindowError
        try:
            window = PromotionWindow.parse(defaults["promotion_window"]).to_dict()
        except WindowError as exc:
            raise PlanError(f"{model}'s model.yaml: {exc}") from None

    return ReleasePlan(
        model=model,
        candidate=version,
        baseline=pointers.stable,
        steps=steps,
        step_interval_s=_number("step_interval_s", merged["step_interval_s"], 1),
        approvals_before=approvals,
        teardown_delay_s=_number("teardown_delay_s", merged["teardown_delay_s"], 0),
        poll_interval_s=_number("poll_interval_s", merged["poll_interval_s"], 0.5),
        max_extensions=int(max_ext),
        runtime=runtime,
        gates=gates,
        run_id=run_id,
        paired=paired,
        shadow_s=_number("shadow_s", merged["shadow_s"], 0),
        shadow_mirror=int(mirror),
        header_route=check_header_route(request.get("header_route")),
        promotion_window=window,
    )
