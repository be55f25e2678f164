"""The release journal's contract: every event kind a release records, with its fields.

A release appends one JSON object per event to its journal (:mod:`paddle_canary.release.journal`):
``{"ts": <unix time>, "event": <kind>, <fields>...}``. The controller, the Airflow tasks, the
report, the local-stack driver, the benches and the CLI all write and read these records through
the classes below, so a field is named in one place.

Compatibility: a record written by an earlier version still reads (missing optional fields take
their defaults, unknown fields are kept in ``extra``, an unknown kind becomes :class:`Unknown`);
``tests/release/journal_samples/`` holds journals written by earlier versions.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

# ---- kinds ------------------------------------------------------------------------------------

PLAN = "plan"
VALIDATED = "validated"
DEPLOYED = "deployed"
WEIGHT = "weight"
MIRROR = "mirror"
LOOK = "look"
VERDICT = "verdict"
APPROVAL_REQUESTED = "approval_requested"
APPROVAL_ANSWERED = "approval_answered"
FAILURE = "failure"
CUT = "cut"
ROLLED_BACK = "rolled_back"
PROMOTED = "promoted"
TEARDOWN_SCHEDULED = "teardown_scheduled"
TORN_DOWN = "torn_down"
TEARDOWN_SKIPPED = "teardown_skipped"
FINISHED = "finished"
PAUSED = "paused"
RESUMED = "resumed"
FULL_PROMOTION = "full_promotion"
UNDONE = "undone"
WINDOW_WAIT = "window_wait"

# ---- outcomes ---------------------------------------------------------------------------------

PROMOTED_OUTCOME = "promoted"
ROLLED_BACK_OUTCOME = "rolled_back"
REFUSED = "refused"
FAILED = "failed"
UNFINISHED = "unfinished"
OUTCOMES = (PROMOTED_OUTCOME, ROLLED_BACK_OUTCOME, REFUSED, FAILED, UNFINISHED)

_KINDS: dict[str, type["Event"]] = {}


def _kind(name: str):
    def register(cls):
        cls.kind = name
        _KINDS[name] = cls
        return cls
    return register


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """One journal record. ``ts`` is when it happened (unix seconds)."""

    kind: ClassVar[str] = ""
    ts: float = dataclasses.field(default_factory=time.time)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def to_record(self) -> dict[str, Any]:
        out = {**self.extra, "ts": self.ts, "event": self.kind}
        for f in dataclasses.fields(self):
            if f.name not in ("ts", "extra"):
                out[f.name] = getattr(self, f.name)
        return out


@_kind(PLAN)
@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanRecorded(Event):
    """The resolved plan (``ReleasePlan.to_dict()``); the first record of a release."""
    plan: dict[str, Any]


@_kind(VALIDATED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Validated(Event):
    """The offline validation's report (``passed``, ``problems``, figures, suite results)."""
    report: dict[str, Any]


@_kind(DEPLOYED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Deployed(Event):
    """Both versions run and the gateway routes them (candidate at 0 %). The instances name
    these starts of the versions: a later look that finds another instance saw a restart."""
    stable_url: str | None
    candidate_url: str | None
    stable_instance: str = ""
    candidate_instance: str = ""


@_kind(WEIGHT)
@dataclasses.dataclass(frozen=True, kw_only=True)
class WeightSet(Event):
    """The candidate's share of users, set and read back from the data plane. ``step`` is the
    1-based step number of the plan (None for a weight set outside the steps)."""
    weight: int
    step: int | None = None


@_kind(MIRROR)
@dataclasses.dataclass(frozen=True, kw_only=True)
class MirrorSet(Event):
    """The shadow phase: ``share`` % of stable's requests mirrored to the candidate (answers
    discarded, no user routed to it), read back from the data plane; 0 when it ends."""
    share: int


@_kind(LOOK)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Look(Event):
    """One look of the judge during a step (``Verdict.to_dict()``), at ``weight`` in ``step``,
    with what the look saw of the candidate's and the gateway's health."""
    verdict: dict[str, Any]
    step: int | None = None
    weight: int | None = None
    health: dict[str, Any] | None = None


@_kind(VERDICT)
@dataclasses.dataclass(frozen=True, kw_only=True)
class StepVerdict(Event):
    """A step's final verdict, as the analysis task ``task`` ended with it."""
    task: str
    verdict: dict[str, Any]
    step: int | None = None
    weight: int | None = None


@_kind(APPROVAL_REQUESTED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class ApprovalRequested(Event):
    """A person is asked before the candidate moves to ``weight``. ``assigned_users``: who may
    answer (empty: anyone allowed to); ``timeout_s``: unanswered after this, Reject."""
    task: str
    weight: int
    assigned_users: list[str] = dataclasses.field(default_factory=list)
    timeout_s: float | None = None


@_kind(APPROVAL_ANSWERED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class ApprovalAnswered(Event):
    task: str
    answer: str
    by: str


@_kind(FAILURE)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Failure(Event):
    """Why the release cannot go on (a failed gate, a task error, a Reject, a person's rollback).
    The first one is the release's reason. ``blame``: ``candidate`` (the rollback rejects it) or
    ``gateway`` (the data plane failed: the candidate is released, not rejected)."""
    task: str
    reason: str
    blame: str = "candidate"


@_kind(CUT)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Cut(Event):
    """The candidate's weight went to 0 because of ``reason``."""
    reason: str
    weight: int = 0


@_kind(ROLLED_BACK)
@dataclasses.dataclass(frozen=True, kw_only=True)
class RolledBack(Event):
    """The rollback finished. ``incomplete`` names the parts it could not do (each with why);
    empty when it did everything."""
    reason: str
    incomplete: list[str] = dataclasses.field(default_factory=list)


@_kind(PROMOTED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Promoted(Event):
    """The candidate is the model's stable version; ``previous`` was."""
    previous: str


@_kind(TEARDOWN_SCHEDULED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class TeardownScheduled(Event):
    """The previous version is stopped at ``at`` (ISO time, UTC)."""
    at: str


@_kind(TORN_DOWN)
@dataclasses.dataclass(frozen=True, kw_only=True)
class TornDown(Event):
    version: str


@_kind(TEARDOWN_SKIPPED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class TeardownSkipped(Event):
    reason: str


@_kind(FINISHED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Finished(Event):
    """The release ended with ``outcome`` (one of :data:`OUTCOMES`)."""
    outcome: str


@_kind(PAUSED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Paused(Event):
    """A person holds the weight (``paddle-canary pause``): the step's timer stops until
    :class:`Resumed`; the judge keeps looking and a failed gate still cuts."""
    by: str
    reason: str = ""


@_kind(RESUMED)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Resumed(Event):
    """The hold ends; the step's remaining time runs on from here."""
    by: str


@_kind(FULL_PROMOTION)
@dataclasses.dataclass(frozen=True, kw_only=True)
class FullPromotionRequested(Event):
    """``paddle-canary promote --full``: the steps below 100 % that remain are skipped (a
    hotfix); the 100 % step, its approval and promotion run as planned."""
    by: str
    reason: str


@_kind(UNDONE)
@dataclasses.dataclass(frozen=True, kw_only=True)
class Undone(Event):
    """During the bake period traffic went back to ``restored`` (the previous stable version),
    ``version`` was rejected and the teardown of ``restored`` is cancelled."""
    by: str
    reason: str
    restored: str
    version: str
    incomplete: list[str] = dataclasses.field(default_factory=list)


@_kind(WINDOW_WAIT)
@dataclasses.dataclass(frozen=True, kw_only=True)
class WindowWait(Event):
    """Step ``step`` (to ``weight`` %) became due outside the model's promotion window
    (``window``, as :meth:`PromotionWindow.describe` says it) and waits until ``until``."""
    step: int
    weight: int
    until: float
    window: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Unknown(Event):
    """A record of a kind this version does not know (written by a newer one): kept as is."""
    record: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        return dict(self.record)


def parse(record: dict[str, Any]) -> Event:
    """The typed event of a journal record. Raises ValueError for a record that is not one
    (not an object, no kind, a known kind missing a required field)."""
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        raise ValueError(f"not a journal record: {record!r:.200}")
    cls = _KINDS.get(record["event"])
    if cls is None:
        return Unknown(ts=_ts(record), record=dict(record))
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    values = {k: v for k, v in record.items() if k in names}
    values["ts"] = _ts(record)
    extra = {k: v for k, v in record.items() if k not in names and k not in ("event", "ts")}
    try:
        return cls(**values, extra=extra)
    except TypeError as exc:
        raise ValueError(f"{record['event']} record missing a field: {exc}") from None


def _ts(record: dict[str, Any]) -> float:
    try:
        return float(record.get("ts"))
    except (TypeError, ValueError):
        return float("nan")


# ---- what a journal says ------------------------------------------------------------------------

def of_kind(events: list[Event], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def first(events: list[Event], cls: type):
    return next((e for e in events if isinstance(e, cls)), None)


def plan_in(events: list[Event]) -> dict[str, Any] | None:
    """The release plan a journal starts with (None when the request was refused)."""
    found = first(events, PlanRecorded)
    return found.plan if found else None


def failure_reason(events: list[Event]) -> str | None:
    """The release's reason to stop: its first recorded failure."""
    found = first(events, Failure)
    return found.reason if found else None


def outcome(events: list[Event]) -> str:
    """How the release ended: promoted, rolled_back, refused (no plan, or said so), failed (a
    failure that was not rolled back), or unfinished."""
    if first(events, Promoted):
        return PROMOTED_OUTCOME
    if first(events, RolledBack):
        return ROLLED_BACK_OUTCOME
    said = [e.outcome for e in of_kind(events, Finished)]
    if plan_in(events) is None or (said and said[-1] == REFUSED):
        return REFUSED if events or said else UNFINISHED
    if first(events, Failure):
        return FAILED
    return UNFINISHED
