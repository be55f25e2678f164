"""The release journal: an append-only JSON-lines file per release run.

Every change a release makes (plan, deploy, weight set, verdicts, approvals, failure, rollback,
promotion, teardown) is appended here with its time. Rollback reads the failure reason from it
and the report draws weights and verdicts over time from it.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def journal_path(home: Path, model: str, run_id: str) -> Path:
    return Path(home) / "releases" / model / f"{_SAFE.sub('_', run_id) or 'run'}.jsonl"


def append(path: Path, event: str, **details: Any) -> dict[str, Any]:
    record = {"ts": time.time(), "event": event, **details}
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, default=str, sort_keys=True) + "\n"
    # O_APPEND writes of one line are atomic enough for our few writers on one machine.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return record


def read(path: Path) -> list[dict[str, Any]]:
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line after a crash; the rest stays readable
    return out


def plan_in(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The release plan a journal starts with (None when the request was refused)."""
    return next((e["plan"] for e in events if e["event"] == "plan"), None)
