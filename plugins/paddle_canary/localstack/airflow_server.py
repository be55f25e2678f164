"""Run Airflow 3.3 on one machine as separate components, each stopped by its own PID.

``airflow standalone`` orphans its children on SIGTERM, so we start the api-server, scheduler,
dag-processor and triggerer ourselves, with SQLite, the LocalExecutor and low parallelism
(2 cores), a known admin password (written to a file outside the repo) and a shared JWT secret.

- Private: the home is 0700 and every file in it is created 0600 (the JWT secret and the
  password file by :mod:`paddle_canary.localstack.private`, the rest by the components, which run
  with umask 077): a token signed with the JWT secret is an admin's.
- Loopback only: the api-server listens on 127.0.0.1. Airflow 3.3's log servers (the
  scheduler's for LocalExecutor workers, the triggerer's) bind every interface with no setting
  to change it (``host=""`` in ``airflow/utils/serve_logs/core.py``), so they are not started
  (``--skip-serve-logs``): on one machine the api-server reads every log from
  ``$AIRFLOW_HOME/logs``. Their ports are still set to free ones kept in the home, so that the
  api-server never asks another stack's log server.
- Found again, crash or not: each component runs marked with ``<home>/<component>`` (see
  :func:`paddle_canary.process.spawn`); :meth:`AirflowServer.stop` stops the components by PID,
  then every process still marked as the home's (LocalExecutor workers and task processes
  orphaned by a killed scheduler), and :meth:`start` clears a dead component's orphans before
  starting it again.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from paddle_canary import process
from paddle_canary.localstack.private import PRIVATE_UMASK, private_dir, secret, write_private

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
from paddle_canary.settings import REPO

# Components that would start a log server listening on every interface.
SKIP_SERVE_LOGS = ("scheduler", "triggerer")


@dataclass
class AirflowServer:
    home: Path
    port: int = 8080
    dags_folder: Path = REPO / "dags"
    plugins_folder: Path = REPO / "plugins"
    parallelism: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    username: str = "admin"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def passwords_file(self) -> Path:
        return self.home / "passwords.json"

    @property
    def pid_dir(self) -> Path:
        return self.home / "pids"

    @property
    def jwt_secret_file(self) -> Path:
        return self.home / "jwt_secret"

    @property
    def log_ports_file(self) -> Path:
        return self.home / "log_ports.json"

    def password(self) -> str:
        return json.loads(self.passwords_file.read_text())[self.username]

    def _secrets(self) -> tuple[str, dict[str, int]]:
        """The JWT secret and the log-server ports, made on first use (home 0700, files 0600)."""
        private_dir(self.home)
        in_use = bool(self.running())
        jwt = secret(self.jwt_secret_file, lambda: secrets.token_hex(32), in_use).strip()
        ports = json.loads(secret(self.log_ports_file, lambda: json.dumps(
            {"worker": process.free_port(), "trigger": process.free_port()}), in_use))
        return jwt, ports

    def env(self) -> dict[str, str]:
        jwt, log_ports = self._secrets()
        venv_bin = str(Path(sys.executable).parent)
        return {
            **os.environ,
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_ports["worker"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_ports["trigger"]),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            "AIRFLOW__TRIGGERER__CAPACITY": "50",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS": "0o700",
            "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS": "0o600",
            **self.extra_env,
        }

    def init(self) -> None:
        """Create the home, the admin password and the database (idempotent)."""
        env = self.env()  # makes the home (0700) and the JWT secret (0600)
        secret(self.passwords_file, lambda: json.dumps(
            {self.username: secrets.token_urlsafe(12)}), in_use=bool(self.running()))
        database = self.home / "airflow.db"
        if database.exists() and database.stat().st_mode & 0o077:  # made by an older version
            database.chmod(0o600)
        airflow = shutil.which("airflow", path=env["PATH"])
        if airflow is None:
            raise RuntimeError("airflow is not installed in this environment (make venv)")
        subprocess.run([airflow, "db", "migrate"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=300, umask=PRIVATE_UMASK,
                       env=process.marked_env(self.home / "db-migrate", env))

    def start(self, timeout: float = 120.0) -> None:
        self.init()
        private_dir(self.pid_dir)
        env = self.env()
        airflow = shutil.which("airflow", path=env["PATH"])
        for comp in COMPONENTS:
            if self._pid(comp):
                continue
            # what a crashed one left (its LocalExecutor workers hold slots and ports)
            process.stop_marked(self.home / comp, sessions=self._sessions(comp))
            argv = [airflow, comp] + (["--skip-serve-logs"] if comp in SKIP_SERVE_LOGS else [])
            proc = process.spawn(argv, self.home / "logs" / f"{comp}.log", env=env,
                                 owner=self.home / comp, umask=PRIVATE_UMASK)
            write_private(self.pid_dir / f"{comp}.pid", str(proc.pid))
        process.wait_until(self.ready, timeout, interval=0.5,
                           what="Airflow api-server and scheduler")

    def _pid(self, comp: str) -> int | None:
        """The PID of ``comp`` while it runs: its PID file names a live process marked as this
        component (or, started by an older version, unmarked and running airflow)."""
        pid = process.read_pidfile(self.pid_dir / f"{comp}.pid")
        if not pid or not process.pid_alive(pid):
            return None
        mark = process.mark_of(pid)
        if mark == process.owner_key(self.home / comp):
            return pid
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if mark is None and b"airflow" in cmdline else None

    def ready(self) -> bool:
        r = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2)
        if r.status_code != 200:
            return False
        body = r.json()
        return all((body.get(k) or {}).get("status") == "healthy"
                   for k in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

    def stop(self) -> None:
        """Stop every component by PID (SIGTERM, then SIGKILL after a bound), then every process
        still marked as this home's: what a component left behind, crashed or not (gunicorn /
        uvicorn workers, LocalExecutor workers, task runners)."""
        sessions = [sid for comp in COMPONENTS for sid in self._sessions(comp)]
        for comp in reversed(COMPONENTS):
            pid = self._pid(comp)
            if pid:
                process.stop_pid(pid, timeout=20)
                _kill_group(pid)  # an older version's component: its children share its group
            (self.pid_dir / f"{comp}.pid").unlink(missing_ok=True)
        process.stop_marked(self.home, sessions=sessions)

    def _sessions(self, comp: str) -> list[int]:
        """The session ``comp`` was started in (spawn makes it a session leader)."""
        pid = process.read_pidfile(self.pid_dir / f"{comp}.pid")
        return [pid] if pid else []

    def running(self) -> list[str]:
        return [c for c in COMPONENTS if self._pid(c)]

    def processes(self) -> list[int]:
        """Every live process this server started, directly or not (see process.marked)."""
        return process.marked(self.home)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
