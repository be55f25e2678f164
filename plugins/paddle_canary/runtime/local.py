"""Versions as local processes: one ``paddle-canary serve`` child per version, on a free port.

State lives in ``<workdir>/endpoints.json`` (``{"<model>/<version>": {model, version, url, port,
pid, instance, log, started_at}}``), replaced atomically under a file lock, so another process
(the CLI, an Airflow task) finds a version started here and stops it by PID. Logs go to
``<workdir>/logs/<model>--<version>.log``. A PID is only trusted while ``/proc/<pid>/cmdline`` is
still that ``serve`` command on that port (PIDs are reused). A version that is started is
added to Prometheus' file service discovery in ``targets_dir`` (when given) once it is healthy,
and dropped from it on ``remove``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from filelock import FileLock

from paddle_canary.process import (Timeout, free_port, pid_alive, spawn, stop_marked, stop_pid,
                                   wait_until)
from paddle_canary.registry import Registry
from paddle_canary.runtime.base import (FAILING, GONE, HEALTHY, DeployError, Endpoint, Runtime,
                                        VersionHealth)

STATE_FILE = "endpoints.json"
LOCK_FILE = "endpoints.json.lock"
STOP_TIMEOUT_S = 10.0
PORT_ATTEMPTS = 3  # a port taken between free_port() and the child's bind: try another


# /deep_health scores every reference row: about 3.5 s for a model 25 ms per row (bad-slow)
# on a loaded 2-core machine, so the probe waits longer than a plain liveness check would.
DEEP_HEALTH_TIMEOUT_S = 15.0


def deep_health(url: str, timeout: float = DEEP_HEALTH_TIMEOUT_S) -> tuple[int | None, str]:
    """``(HTTP status or None when not answering, detail)`` of ``GET <url>/deep_health``."""
    try:
        with urllib.request.urlopen(f"{url}/deep_health", timeout=timeout) as resp:
            return resp.status, "ok"
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read()).get("reason", f"HTTP {exc.code}")
        except ValueError:
            return exc.code, f"HTTP {exc.code}"
    except OSError as exc:
        return None, f"not answering ({exc})"


def log_tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def serve_argv(model: str, version: str, port: int, registry_root: Path | str | None = None,
               host: str = "127.0.0.1", device: str = "cpu", threads: int = 1,
               shadow: str | None = None) -> list[str]:
    """The ``paddle-canary serve`` command line for one version."""
    argv = [sys.executable, "-m", "paddle_canary.cli", "serve", "--model", model,
            "--version", version, "--host", host, "--port", str(port),
            "--device", device, "--threads", str(threads)]
    if registry_root:
        argv += ["--registry", str(registry_root)]
    if shadow:
        argv += ["--shadow", shadow]
    return argv


def http_ok(url: str, path: str = "/health", timeout: float = 1.0) -> bool:
    """True when ``GET url+path`` answers 200."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class ServeProcess:
    """One ``paddle-canary serve`` child on a free port, without LocalRuntime's state file or
    its /deep_health gate: for tests and benchmarks, which also start broken versions.
    Stopped by PID."""

    def __init__(self, model: str, version: str, log_dir: Path | str,
                 registry_root: Path | str | None = None, threads: int = 1):
        self.model, self.version = model, version
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = spawn(serve_argv(model, version, self.port, registry_root, threads=threads),
                          Path(log_dir) / f"serve-{version}-{self.port}.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0, path: str = "/health") -> "ServeProcess":
        """Wait until ``path`` answers 200; raise at once if the process exits."""
        def up() -> bool:
            if self.proc.poll() is not None:
                raise DeployError(f"serve {self.model} {self.version} exited with "
                                  f"{self.proc.returncode}")
            return http_ok(self.url, path)
        try:
            wait_until(up, timeout, what=f"serving {self.version} on {self.port}")
        except Timeout as exc:
            raise DeployError(str(exc)) from exc
        return self

    def kill(self) -> None:
        stop_pid(self.proc.pid, signal.SIGKILL, 5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_pid(self.proc.pid, signal.SIGTERM, 15)


class LocalRuntime(Runtime):
    kind = "local"

    def __init__(self, workdir: Path | str, registry_root: Path | str | None = None,
                 host: str = "127.0.0.1", device: str = "cpu", threads: int = 1,
                 start_timeout: float = 60.0, targets_dir: Path | str | None = None):
        self.workdir = Path(workdir)
        self.registry_root = Path(registry_root) if registry_root else None
        self.host, self.device, self.threads = host, device, threads
        self.start_timeout = start_timeout
        self.targets_dir = Path(targets_dir) if targets_dir else None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.workdir / STATE_FILE
        self._lock = FileLock(str(self.workdir / LOCK_FILE), timeout=STOP_TIMEOUT_S * 3)

    # --- state file ----------------------------------------------------------------------
    def _read(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}

    def _write(self, state: dict) -> None:
        tmp = self.state_path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(tmp, self.state_path)

    @staticmethod
    def _ours(entry: dict) -> bool:
        """The entry's PID is alive and still runs ``serve`` on the entry's port."""
        pid = entry.get("pid")
        if not pid or not pid_alive(pid):
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return False
        except OSError:  # no /proc here: trust the PID
            return True
        return b"serve" in argv and str(entry["port"]).encode() in argv

    @staticmethod
    def _endpoint(entry: dict) -> Endpoint:
        return Endpoint(entry["model"], entry["version"], entry["url"], entry["port"],
                        entry.get("pid"), entry.get("instance") or f"pid-{entry.get('pid')}")

    # --- Runtime -------------------------------------------------------------------------
    def deploy(self, model: str, version: str, *, shadow: str | None = None) -> Endpoint:
        reg = Registry(self.registry_root)
        reg.card(model, version)  # unknown version: refused here
        if shadow is not None:
            reg.card(model, shadow)
        key = f"{model}/{version}"
        for attempt in range(1, PORT_ATTEMPTS + 1):
            entry, proc = self._start(key, model, version, shadow)
            endpoint = self._endpoint(entry)
            log = Path(entry["log"])
            try:
                self._wait_healthy(endpoint, log, proc)
                self._scrape(endpoint)
                return endpoint
            except DeployError:
                if proc is None:  # someone else's process: not ours to stop
                    raise
                self._forget(key, proc.pid)
                # free_port() cannot reserve a port: another process may bind it first.
                with open(log, "rb") as fh:
                    fh.seek(entry.get("log_offset", 0))
                    this_run = fh.read().decode(errors="replace").lower()
                if attempt == PORT_ATTEMPTS or "address already in use" not in this_run:
                    raise
        raise AssertionError("unreachable")

    def owner(self, model: str, version: str) -> Path:
        """The process mark of ``version``'s serving process (see ``process.spawn``): found and
        stopped by it even when the state file lost its PID."""
        return self.workdir / "serve" / f"{model}--{version}"

    def _scrape(self, endpoint: Endpoint) -> None:
        if self.targets_dir is not None:
            from paddle_canary.runtime.scrape_targets import write_target
            write_target(self.targets_dir, endpoint.model, endpoint.version,
                         [urlsplit(endpoint.url).netloc])

    def _start(self, key: str, model: str, version: str,
               shadow: str | None = None) -> tuple[dict, object]:
        """The running entry for ``key`` (and None), or a new process and its entry."""
        with self._lock:
            state = self._read()
            entry = state.get(key)
            if entry and self._ours(entry):
                return entry, None
            port = free_port(self.host)
            log = self.workdir / "logs" / f"{model}--{version}.log"
            offset = log.stat().st_size if log.exists() else 0
            proc = spawn(serve_argv(model, version, port, self.registry_root, self.host,
                                    self.device, self.threads, shadow), log,
                         owner=self.owner(model, version))
            started = time.time()
            entry = {"model": model, "version": version, "port": port, "pid": proc.pid,
                     "url": f"http://{self.host}:{port}", "log": str(log), "shadow": shadow,
                     "log_offset": offset, "started_at": started,
                     "instance": f"pid-{proc.pid}-{started:.3f}"}
            state[key] = entry
            self._write(state)
            return entry, proc

    def _wait_healthy(self, endpoint: Endpoint, log: Path, proc) -> None:
        last = ["starting"]

        def ready():
            if (proc.poll() is not None) if proc is not None else not pid_alive(endpoint.pid):
                return "exited"
            status, last[0] = deep_health(endpoint.url)
            if status == 503:  # loaded, and scored its reference rows badly: waiting won't help
                return "failing"
            return status == 200

        what = f"{endpoint.model} {endpoint.version}"
        try:
            result = wait_until(ready, self.start_timeout, interval=0.1,
                                what=f"/deep_health of {what}")
        except Timeout:
            raise DeployError(f"{what} did not pass /deep_health within "
                              f"{self.start_timeout:.0f}s (last: {last[0]}); log {log}:\n"
                              f"{log_tail(log)}") from None
        if result == "failing":
            raise DeployError(f"{what} fails /deep_health: {last[0]}; log {log}")
        if result == "exited":
            code = proc.returncode if proc is not None else "?"
            raise DeployError(f"{what} exited (status {code}) before answering /deep_health; "
                              f"log {log}:\n{log_tail(log)}")

    def _forget(self, key: str, pid: int) -> None:
        with self._lock:
            state = self._read()
            entry = state.get(key)
            if entry and entry.get("pid") == pid:
                del state[key]
                self._write(state)
        stop_pid(pid, signal.SIGTERM, STOP_TIMEOUT_S)

    def remove(self, model: str, version: str) -> None:
        key = f"{model}/{version}"
        if self.targets_dir is not None:
            from paddle_canary.runtime.scrape_targets import remove_target
            remove_target(self.targets_dir, model, version)
        with self._lock:
            state = self._read()
            entry = state.pop(key, None)
            if entry is None:
                stop_marked(self.owner(model, version), timeout=STOP_TIMEOUT_S)
                return
            if self._ours(entry):
                stop_pid(entry["pid"], signal.SIGTERM, STOP_TIMEOUT_S)
            self._write(state)
        stop_marked(self.owner(model, version), timeout=STOP_TIMEOUT_S)

    def endpoints(self, model: str | None = None) -> list[Endpoint]:
        return [self._endpoint(e) for _, e in sorted(self._read().items())
                if (model is None or e["model"] == model) and self._ours(e)]

    def probe(self, model: str, version: str, timeout: float = 5.0) -> VersionHealth:
        entry = self._read().get(f"{model}/{version}")
        if not entry:
            return VersionHealth(GONE, f"{model} {version} was never started here (or removed)")
        instance = self._endpoint(entry).instance
        if not self._ours(entry):
            return VersionHealth(GONE, f"{model} {version} (pid {entry.get('pid')}) has exited")
        status, detail = deep_health(entry["url"], timeout=timeout)
        if status == 200:
            return VersionHealth(HEALTHY, "ok", instance)
        return VersionHealth(FAILING, f"/deep_health: {detail}", instance)
