"""``docker-compose`` on the stack's file: up, wait until every service is healthy, down.

Debian's ``docker-compose`` 1.29 (the v2 plugin is not packaged here); the same file works with
``docker compose``. Health is read from the engine (the docker SDK), with a deadline: a service
that exits, or turns ``unhealthy``, fails the wait at once with its last log lines.

``down`` first removes the containers a release started on the stack's network (labelled
``io.paddle-canary.*`` by :class:`~paddle_canary.runtime.docker.DockerRuntime`; compose does not
know them and could not remove the network while they are attached), then runs
``docker-compose down -v --remove-orphans``: no container, network or volume is left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paddle_canary.errors import UserError
from paddle_canary.images.paths import source_root

#: every service of the default profile, and what "ready" means for it
ONE_SHOT = ("airflow-init",)
SERVICES = ("postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "stable", "gateway", "prometheus")
UP_TIMEOUT_S = 600.0
COMMAND_TIMEOUT_S = 900.0
RUNTIME_LABEL = "io.paddle-canary.namespace"


class ComposeError(UserError):
    """docker-compose failed or the stack did not become healthy (the message says which
    service and shows its last log lines)."""


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        raise ComposeError("docker-compose not found: apt-get install docker-compose "
                           "(`make os-deps` does)")
    return found


@dataclass
class ComposeStack:
    project: str = "paddle-canary"
    env_file: Path = field(default_factory=lambda: source_root() / ".env")
    docker_url: str | None = None
    compose_file: Path = field(default_factory=lambda: source_root() / "docker-compose.yaml")
    overrides: dict[str, str] = field(default_factory=dict)  # AIRFLOW_PORT, COMPOSE_NETWORK, ...

    @property
    def url(self) -> str:
        return self.docker_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.url, "COMPOSE_PROJECT_NAME": self.project,
                **self.overrides}

    def argv(self, *args: str) -> list[str]:
        return [compose_binary(), "--env-file", str(self.env_file), "-p", self.project,
                "-f", str(self.compose_file), *args]

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S,
            check: bool = True) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(self.argv(*args), env=self.env(), capture_output=True,
                                  text=True, timeout=timeout, cwd=self.compose_file.parent)
        except subprocess.TimeoutExpired:
            raise ComposeError(f"docker-compose {' '.join(args)} did not finish in "
                               f"{timeout:.0f}s") from None
        if check and proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
            raise ComposeError(f"docker-compose {' '.join(args)} failed "
                               f"(exit {proc.returncode}):\n{tail}")
        return proc

    def client(self):
        from paddle_canary.images.engine import docker_client

        return docker_client(self.url)

    def containers(self, client, *, all: bool = True) -> dict[str, object]:
        """``{service: container}`` of this project."""
        found = client.containers.list(
            all=all, filters={"label": f"com.docker.compose.project={self.project}"})
        return {c.labels.get("com.docker.compose.service"): c for c in found}

    def up(self, timeout: float = UP_TIMEOUT_S, log: Callable[[str], None] = print) -> dict:
        """``up -d`` and wait until every service is healthy (the init service: exited 0);
        the seconds each took from the start, ``{service: s}``."""
        started = time.monotonic()
        try:
            # docker-compose 1.29 itself waits for each depends_on condition here.
            self.run("up", "-d", "--no-build", timeout=timeout)
        except ComposeError as exc:
            raise ComposeError(f"{exc}\n{self._why_not_up()}") from None
        return self.wait_healthy(timeout - (time.monotonic() - started), started, log)

    def _why_not_up(self) -> str:
        """The log tails of this project's containers that exited non-zero or are unhealthy."""
        client = self.client()
        try:
            lines = []
            for service, container in self.containers(client).items():
                state = container.attrs.get("State", {})
                if state.get("Status") == "exited" and state.get("ExitCode") != 0:
                    lines.append(self._failed(container, service, f"exited {state['ExitCode']}"))
                elif (state.get("Health") or {}).get("Status") == "unhealthy":
                    lines.append(self._failed(container, service, "unhealthy"))
            return "\n".join(lines)
        finally:
            client.close()

    def wait_healthy(self, timeout: float, started: float | None = None,
                     log: Callable[[str], None] = print) -> dict:
        client = self.client()
        started = started or time.monotonic()
        deadline = time.monotonic() + timeout
        ready: dict[str, float] = {}
        try:
            while True:
                by_service = self.containers(client)
                for service in SERVICES:
                    if service in ready:
                        continue
                    container = by_service.get(service)
                    if container is None:
                        continue
                    state = container.attrs.get("State", {})
                    status = (state.get("Health") or {}).get("Status")
                    if service in ONE_SHOT:
                        if state.get("Status") == "exited":
                            if state.get("ExitCode") != 0:
                                raise ComposeError(self._failed(container, service,
                                                                f"exited {state.get('ExitCode')}"))
                            ready[service] = round(time.monotonic() - started, 1)
                    elif state.get("Status") in ("exited", "dead"):
                        raise ComposeError(self._failed(container, service,
                                                        f"exited {state.get('ExitCode')}"))
                    elif status == "unhealthy":
                        raise ComposeError(self._failed(container, service, "unhealthy"))
                    elif status == "healthy":
                        ready[service] = round(time.monotonic() - started, 1)
                    if service in ready:
                        log(f"{service}: ready after {ready[service]:.0f}s")
                if len(ready) == len(SERVICES):
                    return ready
                if time.monotonic() > deadline:
                    waiting = [s for s in SERVICES if s not in ready]
                    details = "\n".join(self._failed(by_service[s], s, "not ready")
                                        for s in waiting if s in by_service)
                    raise ComposeError(f"not ready after {timeout:.0f}s: {', '.join(waiting)}\n"
                                       f"{details}")
                time.sleep(2)
        finally:
            client.close()

    @staticmethod
    def _failed(container, service: str, what: str, lines: int = 15) -> str:
        try:
            logs = container.logs(tail=lines).decode(errors="replace").rstrip()
        except Exception as exc:  # noqa: BLE001 - the reason is reported, never hidden
            logs = f"(no logs: {exc})"
        health = (container.attrs.get("State", {}).get("Health") or {}).get("Log") or []
        probe = health[-1].get("Output", "").strip()[-300:] if health else ""
        return (f"{service} {what}; last health probe: {probe or '-'}\n"
                f"last log lines of {service}:\n{logs}")

    def down(self, timeout: float = 300.0) -> None:
        """Remove the release's containers on the stack's network, then ``down -v``."""
        client = self.client()
        try:
            network = self.overrides.get("COMPOSE_NETWORK") or "paddle-canary-compose"
            for container in client.containers.list(all=True, filters={
                    "label": RUNTIME_LABEL, "network": network}):
                container.remove(force=True)
        finally:
            client.close()
        self.run("down", "-v", "--remove-orphans", "--timeout", "20", timeout=timeout)
