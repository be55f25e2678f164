"""Start, wait for and stop local processes (serving, nginx, Prometheus, Airflow) by PID.

Every wait is bounded by a deadline; nothing here sleeps and hopes.

Processes can be *marked* with an owner (a path, e.g. a stack's home): :func:`spawn` with
``owner=`` puts ``PADDLE_CANARY_OWNER=<owner>`` in the child's environment, which every
descendant inherits (Airflow's LocalExecutor workers, log servers, task processes), even after
its parent died or left its process group. :func:`marked` finds them again through
``/proc/<pid>/environ`` and :func:`stop_marked` stops them: SIGTERM, a deadline, SIGKILL. An
owner covers the owners below it: stopping ``var/stack`` stops ``var/stack/airflow/scheduler``.

A process that sets its title may overwrite ``/proc/<pid>/environ`` with it: Python's
setproctitle (Airflow's workers, api-server, task supervisors) does unless ``SPT_NOENV`` is set,
which spawn sets with the mark; nginx always does. For those, pass the session IDs of what you
spawned (the PIDs in your PID files: spawn makes each child a session leader) as ``sessions``:
a process in one of them with no readable mark is the owner's too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path


MARK_ENV = "PADDLE_CANARY_OWNER"


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


def owner_key(owner: Path | str) -> str:
    """The mark of ``owner``: its absolute path with symlinks resolved."""
    return os.path.realpath(os.fspath(owner))


def marked_env(owner: Path | str, env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) with the mark of ``owner``, for a child
    started some other way than :func:`spawn` (``subprocess.run``). ``SPT_NOENV=1`` keeps
    Python's setproctitle from overwriting the mark in ``/proc/<pid>/environ``."""
    return {**(os.environ if env is None else env), MARK_ENV: owner_key(owner), "SPT_NOENV": "1"}


def spawn(argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None, owner: Path | str | None = None,
          umask: int | None = None) -> subprocess.Popen:
    """Start ``argv`` in its own session with stdout+stderr appended to ``log_path``.

    ``owner``: mark the child and all its descendants as ``owner``'s (replacing a mark
    inherited from this process). Without it the child is unmarked, even when this process is
    marked: a serving process that an Airflow task starts must not be stopped as the
    scheduler's leftovers (pass its own owner to have it found).
    ``umask``: the child's umask (``0o077``: every file it creates is private to this user),
    which ``log_path`` (and a directory made for it) is created with too.
    """
    log_path = Path(log_path)
    mask = 0 if umask is None else umask  # the log is made as the child would make it
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o777 & ~mask)
    child_env = {**os.environ, **(env or {})}
    child_env.pop(MARK_ENV, None)
    if owner is not None:
        child_env = marked_env(owner, child_env)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666 & ~mask)
    with open(fd, "ab") as log:
        return subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env, cwd=cwd, start_new_session=True,
            umask=-1 if umask is None else umask,
        )


def _environ(pid: int) -> list[bytes] | None:
    """The ``NAME=value`` items of ``pid``'s environment as it started, ``None`` if unreadable
    (gone, another user's). Empty when a process title overwrote it."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return [item for item in data.split(b"\0") if b"=" in item[1:]]


def mark_of(pid: int) -> str | None:
    """The owner mark in ``pid``'s environment (as it was when the process started), or
    ``None``: unmarked, gone, another user's process, or overwritten by a process title."""
    prefix = MARK_ENV.encode() + b"="
    for item in _environ(pid) or ():
        if item.startswith(prefix):
            return os.fsdecode(item[len(prefix):])
    return None


def _ancestors() -> set[int]:
    """This process and every process above it: never stopped by :func:`stop_marked`, so
    that a marked process (an Airflow task) may stop its own owner's other processes."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[-1].split()[1])
    return found


def _owned_by(mark: str | None, key: str) -> bool:
    return mark is not None and (mark == key or mark.startswith(key.rstrip(os.sep) + os.sep))


def session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[-1].split()[3])


def _ours(pid: int, key: str, sessions: frozenset[int]) -> bool:
    """Marked as ``key``'s (or below it); or, in one of ``sessions``, with an environment that
    a process title overwrote (nginx): a readable environment without the mark is someone
    else's even there (a reused session ID), an unreadable one is another user's."""
    environ = _environ(pid)
    if environ is None:
        return False
    prefix = MARK_ENV.encode() + b"="
    for item in environ:
        if item.startswith(prefix):
            return _owned_by(os.fsdecode(item[len(prefix):]), key)
    return not environ and bool(sessions) and session_of(pid) in sessions


def marked(owner: Path | str, sessions: Iterable[int] = ()) -> list[int]:
    """PIDs of the live processes marked as ``owner``'s or as an owner's below it, and of the
    unmarked ones (mark overwritten by a process title) in one of ``sessions``; zombies, this
    process and its ancestors left out; in ascending order."""
    key, skip, sids = owner_key(owner), _ancestors(), frozenset(sessions)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        pid = int(entry)
        if _ours(pid, key, sids) and pid_alive(pid):
            found.append(pid)
    return sorted(found)


def stop_marked(owner: Path | str, timeout: float = 10.0, sessions: Iterable[int] = (),
                rounds: int = 3) -> list[int]:
    """Stop every process marked as ``owner``'s (see :func:`marked`), crash or not.

    SIGTERM to all of them at once, wait until they are gone or ``timeout`` s passed, then
    SIGKILL those still running (a PID is re-checked for the mark before each signal, so a
    reused PID is never hit). Processes that appear meanwhile (a dying parent respawning a
    worker) are found by the next of ``rounds`` scans and killed at once. Returns the PIDs
    signalled; raises :class:`Timeout` naming any that survive SIGKILL for 5 s.
    """
    key, sids = owner_key(owner), frozenset(sessions)
    signalled: list[int] = []

    def send(pids: list[int], sig: int) -> None:
        for pid in pids:
            if _ours(pid, key, sids):
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    continue
                if pid not in signalled:
                    signalled.append(pid)

    def gone(pids: list[int]) -> bool:
        return not any(pid_alive(p) for p in pids)

    for round_no in range(rounds):
        pids = marked(key, sids)
        if not pids:
            return signalled
        if round_no == 0:
            send(pids, signal.SIGTERM)
            try:
                wait_until(lambda: gone(pids), timeout, what=f"exit of {key}'s processes")
                continue
            except Timeout:
                pids = [p for p in pids if pid_alive(p)]
        send(pids, signal.SIGKILL)
        try:
            wait_until(lambda: gone(pids), 5.0, what=f"exit of {key}'s processes after SIGKILL")
        except Timeout:
            left = [p for p in pids if pid_alive(p)]
            raise Timeout(f"processes {left} of {key} still run 5 s after SIGKILL") from None
    left = marked(key, sids)
    if left:
        raise Timeout(f"processes {left} of {key} keep appearing after {rounds} rounds")
    return signalled
