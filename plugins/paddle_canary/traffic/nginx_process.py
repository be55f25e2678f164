"""The nginx process behind the gateway: start, check, reload, stop, find what is left of it.

Only process supervision lives here; what the config says is :mod:`nginx_config`'s business and
routing is :class:`paddle_canary.traffic.nginx.NginxRouter`'s. One gateway lives in one workdir::

    workdir/nginx.conf      the live config (replaced atomically, only after `nginx -t` passed)
    workdir/nginx.pid       the master's PID (nginx runs with `daemon off` under our spawn)
    workdir/logs/           error.log, access.json (one JSON object per request), nginx.out
    workdir/temp/           nginx's temp paths

Workers orphaned by a killed master (they keep serving the old config on the old port) are
found by the files they hold open under the workdir, and stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from paddle_canary import process
from paddle_canary.traffic.base import RouterError

NGINX = "nginx"


def nginx_binary() -> str:
    path = shutil.which(NGINX) or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        raise RouterError("nginx is not installed (Debian: apt-get install nginx)")
    return path


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (nginx's workers), read from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: the ppid follows the last ')'
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.add(int(entry))
    return found


def holding(directory: Path) -> set[int]:
    """nginx PIDs with a file open under ``directory`` (this gateway's processes hold its logs).

    Finds workers orphaned by a killed master, which no longer have it as parent. Only
    processes named nginx count: someone tailing the log is left alone.
    """
    found = set()
    prefix = str(directory) + os.sep
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if Path(f"/proc/{entry}/comm").read_text().strip() != NGINX:
                continue
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(os.readlink(f"/proc/{entry}/fd/{fd}").startswith(prefix) for fd in fds):
                found.add(int(entry))
        except OSError:
            continue
    return found


class NginxProcess:
    """One nginx master (and its workers) serving ``workdir/nginx.conf``."""

    def __init__(self, workdir: Path | str):
        self.workdir = Path(workdir).resolve()
        self._proc: subprocess.Popen | None = None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.workdir / "logs" / "error.log"

    def pid(self) -> int | None:
        """The master's PID while it runs."""
        pid = process.read_pidfile(self.pid_path)
        return pid if pid and process.pid_alive(pid) else None

    def orphans(self) -> set[int]:
        """nginx processes of this workdir that are not the live master or its workers."""
        master = self.pid()
        ours = ({master} | children(master)) if master else set()
        return holding(self.workdir / "logs") - ours

    def check(self, text: str) -> Path:
        """Write ``text`` next to the live config and `nginx -t` it; return the checked file."""
        tmp = self.workdir / "nginx.conf.new"
        tmp.write_text(text)
        result = subprocess.run(
            [nginx_binary(), "-t", "-q", "-p", str(self.workdir), "-c", str(tmp),
             "-e", str(self.workdir / "logs" / "check.log")],
            capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            detail = result.stderr.strip() or tail(self.workdir / "logs" / "check.log")
            tmp.unlink(missing_ok=True)
            raise RouterError(f"nginx refused the new config (the old one keeps serving):\n{detail}")
        return tmp

    def install(self, text: str) -> None:
        os.replace(self.check(text), self.conf_path)

    def start(self, text: str, serving: Callable[[], bool], timeout: float = 15.0) -> None:
        """Check and install ``text``, start nginx and wait until ``serving()`` says it serves
        it. Orphaned workers of an earlier master (holding the port) are stopped first."""
        if self.pid() is not None:
            raise RouterError(f"a gateway is already running in {self.workdir} (pid {self.pid()})")
        for sub in ("logs", "temp"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self.stop_orphans()
        self.pid_path.unlink(missing_ok=True)
        self.install(text)
        self._proc = process.spawn(
            [nginx_binary(), "-p", str(self.workdir), "-c", str(self.conf_path),
             "-e", str(self.error_log)],
            self.workdir / "logs" / "nginx.out", owner=self.workdir)
        proc = self._proc
        try:
            process.wait_until(lambda: proc.poll() is not None or serving(), timeout,
                               what="nginx to serve its config")
        except process.Timeout:
            if proc.poll() is None:
                process.stop_pid(proc.pid, signal.SIGTERM, 5)
            raise RouterError(f"nginx did not start in {timeout:.0f}s:\n{tail(self.error_log)}") \
                from None
        if proc.poll() is not None:
            raise RouterError(f"nginx exited at start (status {proc.returncode}):\n"
                              f"{tail(self.error_log)}{tail(self.workdir / 'logs/nginx.out')}")

    def reload(self, text: str, serving: Callable[[], bool], timeout: float) -> None:
        """Install a checked ``text``, SIGHUP the master, wait until ``serving()``, then until
        the old workers have drained (nothing is served by the old config after return). If
        nginx does not take the config, the old file is put back and RouterError raised."""
        pid = self.pid()
        if pid is None:
            detail = (f"; {len(self.orphans())} orphaned nginx worker(s) still serve the old "
                      "config" if self.orphans() else "")
            raise RouterError(f"no gateway running in {self.workdir}{detail}")
        old_text = self.conf_path.read_text()
        old_workers = children(pid)
        self.install(text)
        os.kill(pid, signal.SIGHUP)
        try:
            process.wait_until(serving, timeout, what="nginx to load the new config")
        except process.Timeout:
            # nginx kept its old config (e.g. a port it could not bind): put the file back too.
            self.conf_path.write_text(old_text)
            os.kill(pid, signal.SIGHUP)
            raise RouterError(f"nginx did not load the new config within {timeout:.0f}s; "
                              f"the old one keeps serving:\n{tail(self.error_log)}") from None
        # Old workers finish their in-flight requests under the old config, then exit
        # (nginx closes what is left after worker_shutdown_timeout, 30 s).
        process.wait_until(lambda: not (old_workers & children(pid)), 40.0,
                           what="old nginx workers to drain")

    def stop_orphans(self) -> set[int]:
        found = self.orphans()
        for pid in found:
            process.stop_pid(pid, signal.SIGKILL, 5)
        return found

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (QUIT: in-flight requests finish); SIGKILL after ``timeout``; then any
        orphaned worker of this workdir."""
        pid = self.pid() or (self._proc.pid if self._proc and self._proc.poll() is None else None)
        if pid is not None:
            process.stop_pid(pid, signal.SIGQUIT, timeout)
        for leftover in holding(self.workdir / "logs"):
            process.stop_pid(leftover, signal.SIGKILL, 5)
        if self._proc is not None:
            self._proc.poll()
