"""The nginx router: a local nginx that splits users between stable and candidate by bucket.

One gateway lives in one workdir::

    workdir/nginx.conf      the live config (replaced atomically, only after `nginx -t` passed)
    workdir/state.json      weight, backends, ports, generation: lets another process attach
    workdir/nginx.pid       the master's PID (nginx runs with `daemon off` under our spawn)
    workdir/logs/           error.log, access.json (one JSON object per request), nginx.out
    workdir/temp/           nginx's temp paths

A change (weight or backends) is: render -> `nginx -t` on a temp file -> rename over the live
config -> SIGHUP to the master -> wait until the status server (served by the live config)
reports the new generation and the old workers have drained. A config nginx refuses raises
:class:`RouterError` and the old config keeps serving.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from filelock import FileLock

from paddle_canary import process
from paddle_canary.traffic.base import RouterError, TrafficRouter, check_weight
from paddle_canary.traffic.nginx_config import GatewayState, render

NGINX = "nginx"
APPLY_TIMEOUT_S = 30.0


def nginx_binary() -> str:
    path = shutil.which(NGINX) or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        raise RouterError("nginx is not installed (Debian: apt-get install nginx)")
    return path


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _children(pid: int) -> set[int]:
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


def _holding(directory: Path) -> set[int]:
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


class NginxRouter(TrafficRouter):
    """A local nginx gateway on ``127.0.0.1:port`` with a status server on ``status_port``."""

    def __init__(self, workdir: Path | str, port: int, stable_url: str,
                 candidate_url: str | None = None, status_port: int | None = None, *,
                 read_timeout_s: int = 10, fail_timeout_s: int = 5, worker_processes: int = 1,
                 template: str | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.template = template
        self._proc: subprocess.Popen | None = None
        self._state = GatewayState(
            workdir=str(self.workdir), port=int(port),
            status_port=int(status_port) if status_port else process.free_port(),
            stable_url=stable_url, candidate_url=candidate_url,
            read_timeout_s=read_timeout_s, fail_timeout_s=fail_timeout_s,
            worker_processes=worker_processes)
        render(self._state, template)  # bad backends fail here, before anything is written

    # ---- paths -------------------------------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def state_path(self) -> Path:
        return self.workdir / "state.json"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "nginx.pid"

    @property
    def access_log(self) -> Path:
        return self.workdir / "logs" / "access.json"

    @property
    def error_log(self) -> Path:
        return self.workdir / "logs" / "error.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._state.port}"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self._state.status_port}"

    @property
    def state(self) -> GatewayState:
        """What this object last applied or read from the state file (not the live nginx)."""
        return self._state

    def _lock(self) -> FileLock:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.workdir / "router.lock"), timeout=APPLY_TIMEOUT_S + 15)

    # ---- attach / lifecycle ------------------------------------------------------------------

    @classmethod
    def attach(cls, workdir: Path | str, template: str | None = None) -> "NginxRouter":
        """The gateway another process started in ``workdir`` (read from its state file)."""
        workdir = Path(workdir).resolve()
        try:
            state = GatewayState.from_json((workdir / "state.json").read_text())
        except FileNotFoundError:
            raise RouterError(f"no gateway in {workdir} (no state.json); start one with "
                              "`paddle-canary gateway --port P --stable URL ...`") from None
        router = cls.__new__(cls)
        router.workdir = workdir
        router.template = template
        router._proc = None
        router._state = state
        return router

    def pid(self) -> int | None:
        """The nginx master's PID if it is running."""
        pid = process.read_pidfile(self.pid_path)
        return pid if pid and process.pid_alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None and process.port_open(self._state.status_port)

    def start(self, weight: int = 0, timeout: float = 15.0) -> "NginxRouter":
        """Render the config for ``weight``, check it, start nginx and wait until it serves it."""
        weight = check_weight(weight)
        with self._lock():
            if self.is_running():
                raise RouterError(f"a gateway is already running in {self.workdir} "
                                  f"(pid {self.pid()})")
            for sub in ("logs", "temp"):
                (self.workdir / sub).mkdir(parents=True, exist_ok=True)
            self.pid_path.unlink(missing_ok=True)
            state = self._state.replace(weight=weight, generation=self._state.generation + 1)
            self._install(render(state, self.template))
            self._proc = process.spawn(
                [nginx_binary(), "-p", str(self.workdir), "-c", str(self.conf_path),
                 "-e", str(self.error_log)],
                self.workdir / "logs" / "nginx.out")
            try:
                process.wait_until(
                    lambda: self._proc.poll() is not None or self._live_generation() == state.generation,
                    timeout, what="nginx to serve its config")
            except process.Timeout:
                self._proc.poll() is None and process.stop_pid(self._proc.pid, signal.SIGTERM, 5)
                raise RouterError(f"nginx did not start in {timeout:.0f}s:\n"
                                  f"{_tail(self.error_log)}") from None
            if self._proc.poll() is not None:
                raise RouterError(f"nginx exited at start (status {self._proc.returncode}):\n"
                                  f"{_tail(self.error_log)}{_tail(self.workdir / 'logs/nginx.out')}")
            self._write_state(state)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (QUIT: in-flight requests finish); SIGKILL after ``timeout``.

        Workers left behind by a master that was killed are found by the log files they hold
        open in this workdir and killed by PID.
        """
        pid = self.pid() or (self._proc.pid if self._proc and self._proc.poll() is None else None)
        if pid is not None:
            process.stop_pid(pid, signal.SIGQUIT, timeout)
        for leftover in _holding(self.workdir / "logs"):
            process.stop_pid(leftover, signal.SIGKILL, 5)
        if self._proc is not None:
            self._proc.poll()

    def __enter__(self) -> "NginxRouter":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- TrafficRouter -----------------------------------------------------------------------

    def set_weight(self, weight: int) -> None:
        """Send ``weight`` % of users (buckets 0..weight-1) to the candidate; verified live."""
        weight = check_weight(weight)
        with self._lock():
            self._refresh_state()
            self._apply(self._state.replace(weight=weight))

    def verify_weight(self, weight: int) -> bool:
        weight = check_weight(weight)
        try:
            return self.weight() == weight
        except RouterError:
            return False

    def weight(self) -> int:
        """The weight the live nginx serves, read from its status server."""
        return int(self.live_status()["weight"])

    def set_routes(self, stable_url: str, candidate_url: str | None, weight: int) -> None:
        """Backends and weight in one checked reload (OpenKruise's SetRoutes): promotion moves
        every user to the new stable without a moment back on the old one."""
        weight = check_weight(weight)
        with self._lock():
            self._refresh_state()
            self._apply(self._state.replace(stable_url=stable_url, candidate_url=candidate_url,
                                            weight=weight))

    def set_backends(self, stable_url: str, candidate_url: str | None) -> None:
        """Point the gateway at other backends, keeping the weight; verified live."""
        with self._lock():
            self._refresh_state()
            self._apply(self._state.replace(stable_url=stable_url, candidate_url=candidate_url))

    # ---- reading the live gateway ------------------------------------------------------------

    def live_status(self) -> dict:
        """``{"weight", "generation", "stable", "candidate"}`` as the running nginx serves it."""
        try:
            return json.loads(self._status_get("/canary/state"))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise RouterError(f"gateway in {self.workdir} is not answering on "
                              f"{self.status_url}: {exc}") from None

    def route_of(self, user_id: str | None) -> tuple[str, int | None]:
        """What the live nginx decides for ``user_id``: (route, bucket), no backend involved.

        route is ``candidate``, ``stable`` or ``no_user``; bucket is None without a user ID.
        """
        headers = {"X-User-ID": user_id} if user_id else {}
        route, bucket = self._status_get("/canary/route", headers).split()
        return route, (int(bucket) if user_id else None)

    def route_counts(self) -> Counter:
        """Requests in the access log by ``route`` (candidate / stable / no_user), plus
        ``fallback``: routed to the candidate but answered by stable."""
        counts: Counter = Counter()
        for entry in read_access_log(self.access_log):
            counts[entry["route"]] += 1
            if entry["route"] == "candidate" and entry["served_by"] == "stable":
                counts["fallback"] += 1
        return counts

    def _status_get(self, path: str, headers: dict | None = None) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self._state.status_port, timeout=2)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read().decode()
            if resp.status != 200:
                raise http.client.HTTPException(f"GET {path}: {resp.status}")
            return body
        finally:
            conn.close()

    def _live_generation(self) -> int | None:
        try:
            return int(json.loads(self._status_get("/canary/state"))["generation"])
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            return None

    # ---- applying a change -------------------------------------------------------------------

    def _refresh_state(self) -> None:
        if self.state_path.exists():
            self._state = GatewayState.from_json(self.state_path.read_text())

    def _write_state(self, state: GatewayState) -> None:
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(state.to_json())
        os.replace(tmp, self.state_path)
        self._state = state

    def _check(self, text: str) -> Path:
        """Write ``text`` to a temp file next to the live config and `nginx -t` it."""
        tmp = self.workdir / "nginx.conf.new"
        tmp.write_text(text)
        result = subprocess.run(
            [nginx_binary(), "-t", "-q", "-p", str(self.workdir), "-c", str(tmp),
             "-e", str(self.workdir / "logs" / "check.log")],
            capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            detail = (result.stderr.strip() or _tail(self.workdir / "logs" / "check.log"))
            tmp.unlink(missing_ok=True)
            raise RouterError(f"nginx refused the new config (the old one keeps serving):\n{detail}")
        return tmp

    def _install(self, text: str) -> None:
        os.replace(self._check(text), self.conf_path)

    def _apply(self, state: GatewayState) -> None:
        pid = self.pid()
        if pid is None:
            raise RouterError(f"no gateway running in {self.workdir}")
        state = state.replace(generation=self._state.generation + 1)
        new_text = render(state, self.template)  # RouterError for bad backends / no candidate
        old_text = self.conf_path.read_text()
        old_workers = _children(pid)
        self._install(new_text)
        os.kill(pid, signal.SIGHUP)
        try:
            process.wait_until(lambda: self._live_generation() == state.generation,
                               APPLY_TIMEOUT_S, what=f"nginx to load generation {state.generation}")
        except process.Timeout:
            # nginx kept its old config (e.g. a port it could not bind): put the file back too.
            self.conf_path.write_text(old_text)
            os.kill(pid, signal.SIGHUP)
            raise RouterError(f"nginx did not load the new config within {APPLY_TIMEOUT_S:.0f}s; "
                              f"the old one keeps serving:\n{_tail(self.error_log)}") from None
        self._write_state(state)
        # Old workers finish their in-flight requests at the old weight, then exit
        # (nginx closes what is left after worker_shutdown_timeout, 30 s).
        process.wait_until(lambda: not (old_workers & _children(pid)), 40.0,
                           what="old nginx workers to drain")


def read_access_log(path: Path | str) -> list[dict]:
    """The gateway's JSON access log, one dict per request (a half-written last line is skipped)."""
    entries = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.endswith("\n"):
                    entries.append(json.loads(line))
    except FileNotFoundError:
        pass
    return entries


def wait_for_log(path: Path | str, count: int, timeout: float = 10.0) -> list[dict]:
    """Wait until the access log holds at least ``count`` entries; return them."""
    return process.wait_until(
        lambda: (lambda e: e if len(e) >= count else None)(read_access_log(path)),
        timeout, what=f"{count} access-log entries")

