"""The nginx router: a local nginx gateway that splits each model's users between its stable
version and a candidate by sticky bucket, mirrors a share of stable's requests, and sends a
chosen header to the candidate.

A change (any model's route) is: render the whole config -> `nginx -t` on a temp file -> rename
over the live config -> SIGHUP -> wait until the status server (served by the live config)
reports the new generation and the old workers have drained. A config nginx refuses raises
:class:`RouterError` and the old config keeps serving. Other models' routes are rendered as they
were, so their users see no change (a graceful reload drops no request).

``workdir/state.json`` holds the last applied :class:`GatewayState`, so another process can
attach; what is *served* is always read back from the status server, never from that file.
"""

from __future__ import annotations

import http.client
import json
import os
from collections import Counter
from pathlib import Path

from filelock import FileLock

from paddle_canary import process
from paddle_canary.traffic.base import (HEADER_ROUTE, MANY_MODELS, MIRROR, ModelRoute,
                                        RouterError, RouterHealth, TrafficRouter)
from paddle_canary.traffic.nginx_config import GatewayState, render, status_document
from paddle_canary.traffic.nginx_process import NginxProcess

APPLY_TIMEOUT_S = 30.0


class NginxRouter(TrafficRouter):
    """A local nginx gateway on ``127.0.0.1:port`` with a status server on ``status_port``."""

    kind = "nginx"
    supports = frozenset({MIRROR, HEADER_ROUTE, MANY_MODELS})

    def __init__(self, workdir: Path | str, port: int, status_port: int | None = None, *,
                 read_timeout_s: int = 10, fail_timeout_s: int = 5, mirror_timeout_ms: int = 500,
                 worker_processes: int = 1, template: str | None = None) -> None:
        self.nginx = NginxProcess(workdir)
        self.template = template
        self._state = GatewayState(
            workdir=str(self.workdir), port=int(port),
            status_port=int(status_port) if status_port else process.free_port(),
            read_timeout_s=read_timeout_s, fail_timeout_s=fail_timeout_s,
            mirror_timeout_ms=mirror_timeout_ms, worker_processes=worker_processes)

    @classmethod
    def attach(cls, workdir: Path | str, template: str | None = None) -> "NginxRouter":
        """The gateway another process started in ``workdir`` (read from its state file)."""
        workdir = Path(workdir).resolve()
        try:
            state = GatewayState.from_json((workdir / "state.json").read_text())
        except FileNotFoundError:
            raise RouterError(f"no gateway in {workdir} (no state.json); start one with "
                              "`paddle-canary gateway --port P --model M --stable URL`") from None
        router = cls.__new__(cls)
        router.nginx = NginxProcess(workdir)
        router.template = template
        router._state = state
        return router

    # ---- where things are --------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        return self.nginx.workdir

    @property
    def state_path(self) -> Path:
        return self.workdir / "state.json"

    @property
    def access_log(self) -> Path:
        return self.workdir / "logs" / "access.json"

    @property
    def error_log(self) -> Path:
        return self.nginx.error_log

    @property
    def url(self) -> str:
        """Base URL of user traffic; the default model answers here, every model under
        :meth:`model_url`."""
        return f"http://127.0.0.1:{self._state.port}"

    def model_url(self, model: str) -> str:
        return f"{self.url}/models/{model}"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self._state.status_port}"

    @property
    def state(self) -> GatewayState:
        """What this object last applied or read from the state file (not the live nginx)."""
        return self._state

    def _lock(self) -> FileLock:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.workdir / "router.lock"), timeout=APPLY_TIMEOUT_S + 60)

    # ---- lifecycle ---------------------------------------------------------------------------

    def pid(self) -> int | None:
        return self.nginx.pid()

    def is_running(self) -> bool:
        return self.pid() is not None and process.port_open(self._state.status_port)

    def start(self, routes: list[ModelRoute] | tuple[ModelRoute, ...] = (),
              timeout: float = 15.0) -> "NginxRouter":
        """Start nginx serving ``routes`` (or the routes of the state file, when attached)."""
        with self._lock():
            state = self._state
            for route in routes:
                self.check_supported(route)
                state = state.with_route(route)
            state = state.replace(generation=state.generation + 1)
            text = render(state, self.template)  # bad backends fail here, before anything runs
            self.nginx.start(text, lambda: self._live_generation() == state.generation, timeout)
            self._write_state(state)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.nginx.stop(timeout)

    def __enter__(self) -> "NginxRouter":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- TrafficRouter -----------------------------------------------------------------------

    def apply(self, route: ModelRoute) -> None:
        self.check_supported(route)
        with self._lock():
            self._refresh_state()
            if self._state.route(route.model) == route and self._live_in_sync():
                return  # idempotent: nothing to reload
            state = self._state.with_route(route)
            state = state.replace(generation=self._state.generation + 1)
            text = render(state, self.template)  # RouterError for bad backends
            self.nginx.reload(text, lambda: self._live_generation() == state.generation,
                              APPLY_TIMEOUT_S)
            self._write_state(state)

    def live(self, model: str) -> ModelRoute | None:
        found = self.live_status()["routes"].get(model)
        return ModelRoute.from_dict(found) if found else None

    def models(self) -> list[str]:
        return sorted(self.live_status()["routes"])

    def health(self) -> RouterHealth:
        pid = self.pid()
        orphans = self.nginx.orphans()
        if pid is None:
            detail = "nginx is not running"
            if orphans:
                detail += (f"; {len(orphans)} orphaned worker(s) (pid "
                           f"{', '.join(map(str, sorted(orphans)))}) still serve an old config")
            return RouterHealth(up=False, in_sync=False, detail=detail)
        live = self._live_generation()
        if live is None:
            return RouterHealth(up=False, in_sync=False,
                                detail=f"nginx (pid {pid}) does not answer on {self.status_url}")
        self._refresh_state()
        if live != self._state.generation:
            return RouterHealth(up=True, in_sync=False,
                                detail=f"nginx serves generation {live}, state file says "
                                       f"{self._state.generation}")
        return RouterHealth(up=True, in_sync=True, detail=f"nginx pid {pid}, generation {live}")

    # ---- reading the live gateway ------------------------------------------------------------

    def live_status(self) -> dict:
        """``{"generation", "default_model", "routes": {model: route dict}}`` as served."""
        try:
            return status_document(self._status_get("/canary/state"))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise RouterError(f"gateway in {self.workdir} is not answering on "
                              f"{self.status_url}: {exc}") from None

    def route_of(self, model: str, user_id: str | None,
                 headers: dict[str, str] | None = None) -> tuple[str, int | None]:
        """What the live nginx decides for ``user_id`` (and extra headers) on ``model``:
        (route, bucket), no backend involved. route is ``candidate``, ``stable``, ``header`` or
        ``no_user``; bucket is None without a user ID."""
        sent = dict(headers or {})
        if user_id:
            sent["X-User-ID"] = user_id
        route, bucket = self._status_get(f"/canary/route/{model}", sent).split()
        return route, (int(bucket) if user_id else None)

    def route_counts(self, model: str | None = None) -> Counter:
        """Requests in the access log by ``route`` (candidate / stable / header / no_user), plus
        ``fallback``: routed to the candidate but answered by stable."""
        counts: Counter = Counter()
        for entry in read_access_log(self.access_log):
            if model is not None and entry.get("model") != model:
                continue
            counts[entry["route"]] += 1
            if entry["route"] in ("candidate", "header") and entry["served_by"] == "stable":
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
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
            return None

    def _live_in_sync(self) -> bool:
        return self._live_generation() == self._state.generation

    # ---- state file --------------------------------------------------------------------------

    def _refresh_state(self) -> None:
        if self.state_path.exists():
            self._state = GatewayState.from_json(self.state_path.read_text())

    def _write_state(self, state: GatewayState) -> None:
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(state.to_json())
        os.replace(tmp, self.state_path)
        self._state = state


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
