"""One server process on 127.0.0.1 kept under a work directory: its pidfile, its log, its
readiness. The local Prometheus and Alertmanager are each one of these.

A subclass gives its ``NAME`` and, in ``start()``, the command line to :meth:`_launch`, which
starts it marked with the work directory as its owner (so ``stack down`` finds it even after a
crash), records its PID and waits until ``/-/ready`` answers; a process that exits or never
gets ready is stopped and the error names its log's last lines. Another instance with the same
work directory can stop it.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from paddle_canary import process


class LocalServer:
    NAME = "server"          # the program, as error messages name it
    READY_PATH = "/-/ready"  # answers 200 once the server serves

    def __init__(self, workdir: Path | str, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or process.free_port()
        stem = self.NAME.lower()
        self.log_path = self.workdir / f"{stem}.log"
        self.pid_path = self.workdir / f"{stem}.pid"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int | None:
        return process.read_pidfile(self.pid_path)

    def running(self) -> bool:
        pid = self.pid
        return pid is not None and process.pid_alive(pid)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}{self.READY_PATH}", timeout=1.0) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _launch(self, argv: Sequence[str], timeout: float) -> None:
        proc = process.spawn(argv, self.log_path, cwd=self.workdir, owner=self.workdir)
        self.pid_path.write_text(f"{proc.pid}\n")

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.NAME} exited with {proc.returncode}: "
                                   f"{self._log_tail()}")
            return self.is_ready()

        try:
            process.wait_until(ready, timeout, what=f"{self.NAME} ready at {self.url}")
        except (process.Timeout, RuntimeError):
            self.stop()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process recorded in the pidfile (SIGTERM, then SIGKILL after ``timeout``)."""
        pid = self.pid
        if pid is not None:
            process.stop_pid(pid, timeout=timeout)
        self.pid_path.unlink(missing_ok=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _log_tail(self, n: int = 800) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except FileNotFoundError:
            return "(no log)"
