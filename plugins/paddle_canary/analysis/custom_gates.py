"""Custom gates: a model's own PromQL queries, judged as plain threshold checks beside the
statistical gates (Flagger's metric templates, Argo Rollouts' AnalysisTemplates).

``model.yaml``::

    custom_gates:
      - name: p99_latency_ms
        query: 1000 * histogram_quantile(0.99, sum by (le) (rate(
                 paddle_canary_request_seconds_bucket{model="{model}",version="{version}"}[{window}s])))
        max: 120              # or min: ...; the candidate's value must stay at/below (above) it
        failure_limit: 2      # consecutive failing looks before the gate fails (default 2)

``{model}``, ``{version}`` (the candidate's) and ``{window}`` (seconds since the step's window
began, at least 60) are filled in; the query must return one value. No value, or a value that
is not finite, makes the gate inconclusive, never a pass. A breach below ``failure_limit`` is
inconclusive too ("breach 1 of 2"); the count lives in the verdict and carries over from the
previous look. The statistical gates' intervals are not involved: a custom gate is a point
check, as in Flagger.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import Any

from paddle_canary.errors import UserError

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
DEFAULT_FAILURE_LIMIT = 2
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class CustomGateError(UserError):
    """A custom gate in model.yaml cannot be used (the message names it and why)."""


@dataclasses.dataclass(frozen=True)
class CustomGate:
    name: str
    query: str
    threshold: float
    direction: str  # "max" (value <= threshold passes) or "min" (value >= threshold)
    failure_limit: int = DEFAULT_FAILURE_LIMIT

    def render(self, model: str, version: str, window_s: float) -> str:
        return (self.query.replace("{model}", model).replace("{version}", version)
                .replace("{window}", str(max(60, int(window_s)))))

    def breached(self, value: float) -> bool:
        return value > self.threshold if self.direction == "max" else value < self.threshold


def from_model_card(card: dict[str, Any]) -> list[CustomGate]:
    raw = card.get("custom_gates") or []
    if not isinstance(raw, list):
        raise CustomGateError("model.yaml: custom_gates must be a list")
    gates, names = [], set()
    for i, item in enumerate(raw):
        where = f"model.yaml: custom_gates[{i}]"
        if not isinstance(item, dict):
            raise CustomGateError(f"{where} must be a mapping")
        unknown = set(item) - {"name", "query", "max", "min", "failure_limit"}
        if unknown:
            raise CustomGateError(f"{where}: unknown field(s) {sorted(unknown)}")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name in names:
            raise CustomGateError(f"{where}: name must be a unique lower_snake_case word, "
                                  f"got {name!r}")
        query = item.get("query")
        if not isinstance(query, str) or "{version}" not in query:
            raise CustomGateError(f"{where} ({name}): query must be PromQL naming {{version}}")
        if ("max" in item) == ("min" in item):
            raise CustomGateError(f"{where} ({name}): give exactly one of max or min")
        direction = "max" if "max" in item else "min"
        threshold = item[direction]
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or \
                not math.isfinite(threshold):
            raise CustomGateError(f"{where} ({name}): {direction} must be a number")
        limit = item.get("failure_limit", DEFAULT_FAILURE_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CustomGateError(f"{where} ({name}): failure_limit must be an integer >= 1")
        names.add(name)
        gates.append(CustomGate(name, query, float(threshold), direction, limit))
    return gates


def _previous_failures(previous: dict[str, Any] | None, name: str) -> int:
    for g in (previous or {}).get("gates") or []:
        if g.get("gate") == f"custom:{name}":
            return int((g.get("details") or {}).get("consecutive_failures") or 0)
    return 0


def evaluate(provider, gates: list[CustomGate], model: str, version: str, window_s: float,
             previous: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One look at every custom gate: gate entries in the judge's verdict shape."""
    out = []
    for gate in gates:
        query = gate.render(model, version, window_s)
        failures = _previous_failures(previous, gate.name)
        value, why = None, ""
        try:
            result = provider.query(query)
        except Exception as exc:  # noqa: BLE001 - an unanswered query is no evidence
            result, why = [], f"query failed: {exc}"
        if len(result) == 1 and isinstance(result[0][1], (int, float)) and \
                math.isfinite(result[0][1]):
            value = float(result[0][1])
        elif not why:
            why = ("no value" if not result else f"{len(result)} series, expected one"
                   if len(result) > 1 else "value not finite")
        bound = f"{'<=' if gate.direction == 'max' else '>='} {gate.threshold:g}"
        if value is None:
            status, reason = INCONCLUSIVE, f"{gate.name}: {why}"
        elif gate.breached(value):
            failures += 1
            status = FAIL if failures >= gate.failure_limit else INCONCLUSIVE
            reason = (f"{gate.name} {value:.4g}, not {bound} (breach {failures} of "
                      f"{gate.failure_limit})")
        else:
            failures = 0
            status, reason = PASS, f"{gate.name} {value:.4g} {bound}"
        out.append({"gate": f"custom:{gate.name}", "status": status, "effect": value,
                    "interval": [None, None], "samples": {"baseline": None, "candidate": None},
                    "reason": reason,
                    "thresholds": {gate.direction: gate.threshold,
                                   "failure_limit": gate.failure_limit},
                    "checks": [], "details": {"query": query, "consecutive_failures": failures}})
    return out
