"""Shared by the registry tests: paths, export copies, tree snapshots."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REAL_ROOT = REPO / "model_registry"
FIXTURES_ROOT = REPO / "fixtures" / "broken_models"
MODEL = "risk-score"


def export_copy(src: Path, dest: Path, version: str, model: str = MODEL) -> Path:
    """Copy an export to ``dest`` with its card renamed to ``model``/``version``."""
    from paddle_canary.registry import export_as
    return export_as(src, dest, version, model)


def snapshot(path: Path) -> dict[str, str]:
    """Every file and directory under ``path`` with a hash of its bytes."""
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        if p.is_symlink():
            out[rel] = f"symlink to {os.readlink(p)}"
        else:
            out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def hammer(root: str, writer: int, rounds: int, start) -> None:
    """Worker for the two-writer test: promote back and forth and append ticks."""
    from paddle_canary.registry import Registry

    registry = Registry(root)
    start.wait(30)
    for i in range(rounds):
        registry.promote(MODEL, "v2" if (i + writer) % 2 else "v1", reason=f"w{writer}")
        registry.record(MODEL, "tick", None, writer=writer, i=i)
        time.sleep(0.001)  # outside the lock: gives the other writer its turn
