"""Gate thresholds: the model card's defaults, overridable per release, checked before use.

The model-level card (``model.yaml``) holds ``gates``; a release may override any of them
(merged key by key). Keys missing from both take the built-in :data:`DEFAULTS`. An unknown gate
or key, a value that is not a finite number, or a value outside its range is refused with a
:class:`ThresholdError` naming the key, before anything is judged.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from paddle_canary.errors import UserError

GATES = ("score_distribution", "rejection_rate", "latency_p95", "errors")

DEFAULTS: dict[str, Any] = {
    "score_distribution": {"max_mean_rel_diff": 0.05, "max_psi": 0.1},
    "rejection_rate": {"max_abs_diff_pp": 1.0},
    # The ratio is not held against differences under min_delta_ms: below that, P95s differ by
    # scheduling noise (a 5 % canary process is "colder" than a busy stable one) and by the
    # histogram's resolution (buckets 0.5-1 ms wide under 5 ms), not by the model.
    "latency_p95": {"max_ms": 80.0, "max_ratio": 1.2, "min_delta_ms": 2.0},
    # A burst: at least burst_min_errors errors making up at least burst_min_rate_pp percent of
    # the candidate's requests (while stable stays below that rate) fails at once.
    "errors": {"max_abs_diff_pp": 0.5, "burst_min_errors": 5, "burst_min_rate_pp": 20.0},
    "min_samples": 200,
    # Family-wise bound on a false fail per step, split evenly over the statistical checks.
    "alpha": 0.05,
}

# (key, check, what it must be) per gate; a check returns True when the value is acceptable.
_RULES: dict[str, dict[str, tuple]] = {
    "score_distribution": {
        "max_mean_rel_diff": (lambda v: 0 < v < 1, "a fraction between 0 and 1 (0.05 = 5 %)"),
        "max_psi": (lambda v: v > 0, "greater than 0"),
    },
    "rejection_rate": {
        "max_abs_diff_pp": (lambda v: 0 < v <= 100, "percentage points in (0, 100]"),
    },
    "latency_p95": {
        "max_ms": (lambda v: v > 0, "milliseconds, greater than 0"),
        "max_ratio": (lambda v: v >= 1, "a ratio of at least 1"),
        "min_delta_ms": (lambda v: v >= 0, "milliseconds, 0 or more"),
    },
    "errors": {
        "max_abs_diff_pp": (lambda v: 0 < v <= 100, "percentage points in (0, 100]"),
        "burst_min_errors": (lambda v: v >= 1 and float(v).is_integer(), "an integer >= 1"),
        "burst_min_rate_pp": (lambda v: 0 < v <= 100, "percentage points in (0, 100]"),
    },
}
_TOP_RULES = {
    "min_samples": (lambda v: v >= 1 and float(v).is_integer(), "an integer >= 1"),
    "alpha": (lambda v: 0 < v < 0.5, "a probability in (0, 0.5)"),
}


class ThresholdError(UserError):
    """A gate threshold that cannot be used (unknown name, not a number, out of range)."""


@dataclass(frozen=True)
class ScoreGate:
    max_mean_rel_diff: float
    max_psi: float


@dataclass(frozen=True)
class RejectionGate:
    max_abs_diff_pp: float


@dataclass(frozen=True)
class LatencyGate:
    max_ms: float
    max_ratio: float
    min_delta_ms: float


@dataclass(frozen=True)
class ErrorsGate:
    max_abs_diff_pp: float
    burst_min_errors: int
    burst_min_rate_pp: float


@dataclass(frozen=True)
class GateConfig:
    score_distribution: ScoreGate
    rejection_rate: RejectionGate
    latency_p95: LatencyGate
    errors: ErrorsGate
    min_samples: int
    alpha: float

    @classmethod
    def from_dict(cls, gates: Mapping[str, Any] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> "GateConfig":
        """Check and build: :data:`DEFAULTS` <- ``gates`` (the card's) <- ``overrides``."""
        merged = merge(merge(DEFAULTS, gates, "gates"), overrides, "gates")
        for gate in GATES:
            for key, (ok, what) in _RULES[gate].items():
                _check(f"gates.{gate}.{key}", merged[gate][key], ok, what)
        for key, (ok, what) in _TOP_RULES.items():
            _check(f"gates.{key}", merged[key], ok, what)
        e = merged["errors"]
        return cls(
            score_distribution=ScoreGate(**{k: float(v) for k, v in
                                            merged["score_distribution"].items()}),
            rejection_rate=RejectionGate(float(merged["rejection_rate"]["max_abs_diff_pp"])),
            latency_p95=LatencyGate(**{k: float(v) for k, v in merged["latency_p95"].items()}),
            errors=ErrorsGate(float(e["max_abs_diff_pp"]), int(e["burst_min_errors"]),
                              float(e["burst_min_rate_pp"])),
            min_samples=int(merged["min_samples"]),
            alpha=float(merged["alpha"]),
        )

    def with_alpha(self, alpha: float) -> "GateConfig":
        """The same thresholds with another error budget (checked like ``gates.alpha``)."""
        ok, what = _TOP_RULES["alpha"]
        _check("alpha", alpha, ok, what)
        return dataclasses.replace(self, alpha=float(alpha))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {g: dict(vars(getattr(self, g))) for g in GATES}
        out["min_samples"] = self.min_samples
        out["alpha"] = self.alpha
        return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any] | None,
          where: str = "gates") -> dict[str, Any]:
    """``base`` with ``override`` applied gate by gate and key by key; unknown names refused."""
    out = copy.deepcopy(dict(base))
    if override is None:
        return out
    if not isinstance(override, Mapping):
        raise ThresholdError(f"{where}: must be a mapping of gate name to thresholds, "
                             f"got {type(override).__name__}")
    for name, value in override.items():
        if name in _TOP_RULES:
            out[name] = value
            continue
        if name not in _RULES:
            raise ThresholdError(f"{where}.{name}: unknown gate (known: "
                                 f"{', '.join(GATES)}; also min_samples, alpha)")
        if not isinstance(value, Mapping):
            raise ThresholdError(f"{where}.{name}: must be a mapping of thresholds, "
                                 f"got {value!r}")
        for key, v in value.items():
            if key not in _RULES[name]:
                raise ThresholdError(f"{where}.{name}.{key}: unknown threshold (known: "
                                     f"{', '.join(_RULES[name])})")
            out[name][key] = v
    return out


def _check(key: str, value: Any, ok, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ThresholdError(f"{key}: must be a number ({what}), got {value!r}")
    if not math.isfinite(value) or not ok(value):
        raise ThresholdError(f"{key}: must be {what}, got {value!r}")
