"""The release journal: an append-only JSON-lines file per release run.

Every change a release makes (plan, deploy, weight set, verdicts, approvals, failure, rollback,
promotion, teardown) is appended with its time, as the records :mod:`events` declares. Rollback
reads the failure reason from it and the report draws weights and verdicts over time from it.

``<home>/releases/<model>/<run>.jsonl``, mode 0600. One ``write`` per record with O_APPEND: a
record is never interleaved with another writer's. A line torn by a crash is skipped on read and
fenced off (a newline first) before the next record is appended, so it never swallows one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from paddle_canary.release import events as ev

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def journal_path(home: Path, model: str, run_id: str) -> Path:
    return Path(home) / "releases" / model / f"{_SAFE.sub('_', run_id) or 'run'}.jsonl"


class Journal:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    @classmethod
    def of_run(cls, home: Path, model: str, run_id: str) -> "Journal":
        return cls(journal_path(home, model, run_id))

    def append(self, event: ev.Event) -> ev.Event:
        line = (json.dumps(event.to_record(), default=str, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # fence off a torn last line
            os.write(fd, line)
        finally:
            os.close(fd)
        return event

    def records(self) -> list[dict[str, Any]]:
        """Every whole, parseable record as its dict (torn or foreign lines skipped)."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line after a crash; the rest stays readable
            if isinstance(record, dict) and isinstance(record.get("event"), str):
                out.append(record)
        return out

    def read(self) -> list[ev.Event]:
        """The typed events (records that do not parse are skipped)."""
        out = []
        for record in self.records():
            try:
                out.append(ev.parse(record))
            except ValueError:
                continue
        return out
