"""Verdicts: per check, per gate and per step; JSON round-trip (XCom, logs, the report).

Status words are ``pass``, ``fail`` and ``inconclusive``. Combining: fail if any part fails;
pass only when every part passes; otherwise inconclusive (an empty list is inconclusive).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
STATUSES = (PASS, FAIL, INCONCLUSIVE)


def combine(statuses: Iterable[str]) -> str:
    statuses = list(statuses)
    if FAIL in statuses:
        return FAIL
    if statuses and all(s == PASS for s in statuses):
        return PASS
    return INCONCLUSIVE


def status_and_reason(gates: Iterable["GateResult"], why: str = "",
                      passed: str = "all gates pass") -> tuple[str, str]:
    """A step's status from its gates, and its reason: the failing gates' reasons on a fail,
    ``passed`` on a pass, else ``why`` when given, or the inconclusive gates' reasons."""
    gates = list(gates)
    status = combine(g.status for g in gates)
    if status == FAIL:
        return status, " | ".join(g.reason for g in gates if g.status == FAIL)
    if status == PASS:
        return status, passed
    return status, why or " | ".join(g.reason for g in gates if g.status == INCONCLUSIVE)


def _num(x: Any) -> Any:
    """A plain float for JSON (numpy scalars are not serialisable by Airflow's triggerer or
    json); JSON has no NaN/inf: write them as null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _unnum(x: Any) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class Check:
    """One statistical or hard check inside a gate.

    ``effect`` and ``interval`` (a confidence sequence, ``(lo, hi)``) are in ``unit``; ``limit``
    is the threshold they are compared with, in the same unit.
    """

    name: str
    status: str
    effect: float
    interval: tuple[float, float]
    limit: float
    unit: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["effect"] = _num(self.effect)
        d["interval"] = [_num(v) for v in self.interval]
        d["limit"] = _num(self.limit)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Check":
        return cls(name=d["name"], status=d["status"], effect=_unnum(d["effect"]),
                   interval=tuple(_unnum(v) for v in d["interval"]), limit=_unnum(d["limit"]),
                   unit=d["unit"], reason=d["reason"])


@dataclass(frozen=True)
class GateResult:
    """One gate: its status, the deciding check's effect and interval, and a one-line reason.

    ``samples`` = (baseline n, candidate n) in the unit the gate counts (rows or requests);
    ``thresholds`` = the gate's configuration; ``details`` = supporting numbers (means, rates,
    P95s) for the report.
    """

    gate: str
    status: str
    effect: float
    interval: tuple[float, float]
    samples: tuple[float, float]
    reason: str
    thresholds: dict[str, float]
    checks: tuple[Check, ...] = ()
    details: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate, "status": self.status, "effect": _num(self.effect),
            "interval": [_num(v) for v in self.interval],
            "samples": {"baseline": _num(self.samples[0]), "candidate": _num(self.samples[1])},
            "reason": self.reason, "thresholds": dict(self.thresholds),
            "checks": [c.to_dict() for c in self.checks],
            "details": {k: _num(v) for k, v in self.details.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GateResult":
        return cls(
            gate=d["gate"], status=d["status"], effect=_unnum(d["effect"]),
            interval=tuple(_unnum(v) for v in d["interval"]),
            samples=(d["samples"]["baseline"], d["samples"]["candidate"]),
            reason=d["reason"], thresholds=dict(d["thresholds"]),
            checks=tuple(Check.from_dict(c) for c in d.get("checks", [])),
            details={k: _unnum(v) for k, v in d.get("details", {}).items()},
        )


@dataclass(frozen=True)
class Verdict:
    """The judge's answer for one step: candidate vs baseline over the window
    ``[window_start, window_end]`` (Unix seconds), evaluated at ``evaluated_at``."""

    status: str
    model: str
    baseline: str
    candidate: str
    window_start: float
    window_end: float
    evaluated_at: float
    reason: str
    gates: tuple[GateResult, ...] = ()
    #: how this look used the previous one, when it did not as asked (``analyze``: "previous
    #: look not built on: <why>"); "" otherwise
    note: str = ""

    def gate(self, name: str) -> GateResult:
        for g in self.gates:
            if g.gate == name:
                return g
        raise KeyError(name)

    def failed_gates(self) -> list[str]:
        return [g.gate for g in self.gates if g.status == FAIL]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "model": self.model, "baseline": self.baseline,
            "candidate": self.candidate,
            "window": {"start": self.window_start, "end": self.window_end,
                       "seconds": self.window_end - self.window_start},
            "evaluated_at": self.evaluated_at, "reason": self.reason,
            "gates": [g.to_dict() for g in self.gates], "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Verdict":
        if d.get("status") not in STATUSES:
            raise ValueError(f"not a verdict: status {d.get('status')!r}")
        return cls(
            status=d["status"], model=d["model"], baseline=d["baseline"],
            candidate=d["candidate"], window_start=float(d["window"]["start"]),
            window_end=float(d["window"]["end"]), evaluated_at=float(d["evaluated_at"]),
            reason=d["reason"], gates=tuple(GateResult.from_dict(g) for g in d["gates"]),
            note=str(d.get("note") or ""),
        )

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "Verdict":
        return cls.from_dict(json.loads(text))
