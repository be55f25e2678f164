"""Run Airflow 3.3 on one machine as separate components, each stopped by its own PID.

``airflow standalone`` orphans its children on SIGTERM, so we start the api-server, scheduler,
dag-processor and triggerer ourselves, with SQLite, the LocalExecutor and low parallelism
(2 cores), a known admin password (written to a file outside the repo) and a shared JWT secret.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from paddle_canary import process

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
from paddle_canary.settings import REPO


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

    def password(self) -> str:
        return json.loads(self.passwords_file.read_text())[self.username]

    def env(self) -> dict[str, str]:
        secret_file = self.home / "jwt_secret"
        if not secret_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(secrets.token_hex(32))
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
            "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            "AIRFLOW__TRIGGERER__CAPACITY": "50",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **self.extra_env,
        }

    def init(self) -> None:
        """Create the home, the admin password and the database (idempotent)."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.passwords_file.exists():
            self.passwords_file.write_text(json.dumps({self.username: secrets.token_urlsafe(12)}))
            self.passwords_file.chmod(0o600)
        airflow = shutil.which("airflow", path=self.env()["PATH"])
        if airflow is None:
            raise RuntimeError("airflow is not installed in this environment (make venv)")
        subprocess.run([airflow, "db", "migrate"], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)

    def start(self, timeout: float = 120.0) -> None:
        self.init()
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        airflow = shutil.which("airflow", path=env["PATH"])
        for comp in COMPONENTS:
            if self._pid(comp):
                continue
            proc = process.spawn([airflow, comp], self.home / "logs" / f"{comp}.log", env=env)
            (self.pid_dir / f"{comp}.pid").write_text(str(proc.pid))
        process.wait_until(self.ready, timeout, interval=0.5, what="Airflow api-server and scheduler")

    def _pid(self, comp: str) -> int | None:
        pid = process.read_pidfile(self.pid_dir / f"{comp}.pid")
        return pid if pid and process.pid_alive(pid) else None

    def ready(self) -> bool:
        r = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2)
        if r.status_code != 200:
            return False
        body = r.json()
        return all((body.get(k) or {}).get("status") == "healthy"
                   for k in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

    def stop(self) -> None:
        """Stop every component by PID (SIGTERM, then SIGKILL after a bound)."""
        for comp in reversed(COMPONENTS):
            pid = process.read_pidfile(self.pid_dir / f"{comp}.pid")
            if pid:
                process.stop_pid(pid, timeout=20)
                _kill_children(pid)
                (self.pid_dir / f"{comp}.pid").unlink(missing_ok=True)

    def running(self) -> list[str]:
        return [c for c in COMPONENTS if self._pid(c)]


def _kill_children(pid: int) -> None:
    """Stop processes a component left behind in its session (gunicorn/uvicorn workers, task
    runners): they share the component's process group because spawn() starts a new session."""
    try:
        os.killpg(pid, 15)
    except (ProcessLookupError, PermissionError):
        pass
