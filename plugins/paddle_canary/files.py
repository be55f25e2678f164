"""Whole-file writes that a concurrent reader never sees half of."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to a temporary file of its own beside ``path``, then rename it over
    ``path``: a reader (Prometheus' file discovery, a browser, a report server) sees the old
    file or the new one, never half of one, and two writers at once each rename a whole file of
    their own instead of racing on one fixed temporary name. ``mode``: 0644 by default, for
    files another user (Prometheus, a web server) reads and that hold no secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
