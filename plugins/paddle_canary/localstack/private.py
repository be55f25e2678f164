"""Files and directories only this user may read: a stack's home, its secrets, its state.

Created private from the start (``mkdir`` mode 0700, ``open`` mode 0600 with ``O_EXCL``), never
made private by a ``chmod`` after the fact, so there is no moment at which another user of the
host can read them. A child process that writes state gets ``umask=PRIVATE_UMASK``
(:func:`paddle_canary.process.spawn`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from paddle_canary.errors import UserError

PRIVATE_UMASK = 0o077


def loose(path: Path) -> bool:
    """True when ``path`` exists and its group or others have any permission on it."""
    try:
        return bool(stat.S_IMODE(os.lstat(path).st_mode) & 0o077)
    except FileNotFoundError:
        return False


def private_dir(path: Path | str) -> Path:
    """``path`` as a directory (parents made as needed) that only this user can enter: made
    with mode 0700; an existing one (from an older version) is closed to group and others."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if loose(path):
        path.chmod(0o700)
    return path


def write_private(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically as a file of mode 0600 (created so, never
    chmod-ed): a temp file opened with O_EXCL and mode 0600, fsynced, renamed over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def secret(path: Path | str, make: Callable[[], str], in_use: bool = False) -> str:
    """The secret stored in ``path``; made with ``make()`` (mode 0600) when there is none.

    A secret that group or others could read (left by an older version) may have leaked: it is
    replaced by a new one, unless ``in_use`` (the processes holding it still run), which is
    refused with what to do.
    """
    path = Path(path)
    if loose(path):
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if in_use:
            raise UserError(f"{path} is readable by other users (mode {mode:04o}) and may have "
                            "leaked; stop the stack (make down) and start it again: a new one "
                            "is made")
        path.unlink()
    if not path.exists():
        write_private(path, make())
    return path.read_text(encoding="utf-8")
