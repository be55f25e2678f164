"""``paddle-canary serve`` with extra flags (``--shadow``, header limits), for tests: started
with the runtime's own command line, waited on with a deadline, stopped by PID."""

from __future__ import annotations

from pathlib import Path

from paddle_canary.process import free_port, spawn, stop_pid, wait_until
from paddle_canary.runtime.local import http_ok, serve_argv


class Serve:
    def __init__(self, log_dir: Path, model: str, version: str, *extra: str,
                 registry_root: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(log_dir) / f"serve-{version}-{self.port}.log"
        self.proc = spawn([*serve_argv(model, version, self.port, registry_root), *extra],
                          self.log)

    def ready(self, timeout: float = 60.0) -> "Serve":
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: "
                                     f"{self.log.read_text()[-2000:]}")
            return http_ok(self.url, "/health")
        wait_until(up, timeout, what=f"serve on {self.port}")
        return self

    def exit_code(self, timeout: float = 60.0) -> int:
        """For a serve that must refuse to start: its exit status."""
        wait_until(lambda: self.proc.poll() is not None, timeout, what="serve to exit")
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_pid(self.proc.pid)

