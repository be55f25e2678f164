"""Start, wait for and stop local processes (serving, nginx, Prometheus) by PID.

Every wait is bounded by a deadline; nothing here sleeps and hopes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class Timeout(RuntimeError):
    """A condition did not become true before its deadline."""


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05,
               what: str = "condition") -> object:
    """Call ``condition`` until it returns something truthy; return that value.

    Exceptions from ``condition`` count as "not yet". Raises :class:`Timeout` naming ``what``
    (and the last exception, if any) once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - "not ready yet" takes many forms
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise Timeout(f"{what} not reached within {timeout:.1f}s{detail}")
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie counts as gone: it has exited and only waits for its
    parent to reap it (a process started by another process, e.g. a serving process that the
    CLI started and an Airflow task stops, stays a zombie until that parent reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
        if done:
            return False
    except ChildProcessError:
        pass
    # Zombie only when every thread is: a multi-threaded process whose main thread has exited
    # shows its leader as "Z" while its other threads still serve.
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] != "Z":
            return True
    return False


def stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Send ``sig`` to ``pid``, wait up to ``timeout`` s for it to exit, then SIGKILL it."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    try:
        wait_until(lambda: not pid_alive(pid), timeout, what=f"exit of pid {pid}")
    except Timeout:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_until(lambda: not pid_alive(pid), 5.0, what=f"exit of pid {pid} after SIGKILL")


def read_pidfile(path: Path) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def spawn(argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Start ``argv`` in its own session with stdout+stderr appended to ``log_path``."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
