"""One release per model at a time: a lock file held from plan resolution to the report.

The lock names the run that holds it, so a retried task of the same run passes and a second
release of the same model is refused with the holder's name instead of racing it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from paddle_canary.errors import UserError


class ReleaseInProgress(UserError):
    """Another release of this model is still running."""


def lock_path(registry_root: Path, model: str) -> Path:
    return Path(registry_root) / model / "release.lock"


def holder(registry_root: Path, model: str) -> dict | None:
    try:
        return json.loads(lock_path(registry_root, model).read_text())
    except FileNotFoundError:
        return None


def acquire(registry_root: Path, model: str, run_id: str, candidate: str) -> None:
    """Take the lock for ``run_id``; idempotent for the same run; refuse another run."""
    path = lock_path(registry_root, model)
    record = {"run_id": run_id, "candidate": candidate,
              "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        current = holder(registry_root, model) or {}
        if current.get("run_id") == run_id:
            return
        raise ReleaseInProgress(
            f"a release of {model} is still running (run {current.get('run_id')!r}, candidate "
            f"{current.get('candidate')!r}, since {current.get('since')}); wait for it to end, "
            f"or run 'paddle-canary unlock {model}' if that run is gone") from None
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())


def release(registry_root: Path, model: str, run_id: str | None = None) -> bool:
    """Drop the lock if ``run_id`` holds it (any holder when ``run_id`` is None)."""
    current = holder(registry_root, model)
    if current is None or (run_id is not None and current.get("run_id") != run_id):
        return False
    lock_path(registry_root, model).unlink(missing_ok=True)
    return True
