"""A local Prometheus for the one-machine stack and the tests: its config and its process.

The scrape config comes from ``images/prometheus/prometheus.yml`` (file-based service
discovery); :func:`render_config` points it at a local targets directory and sets the scrape
interval. The targets themselves are files written by the runtimes
(:mod:`paddle_canary.runtime.scrape_targets`).

:class:`PrometheusServer` runs ``prometheus`` on 127.0.0.1 with its own storage directory and
``--web.enable-lifecycle`` (so ``POST /-/reload`` rereads the config), records its PID in
``<workdir>/prometheus.pid`` and is stopped by that PID.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from paddle_canary.errors import UserError
from paddle_canary.local_server import LocalServer
from paddle_canary.runtime.scrape_targets import remove_target, write_target
from paddle_canary.settings import REPO

TEMPLATE = REPO / "images" / "prometheus" / "prometheus.yml"
JOB = "paddle-canary-serving"


def _duration(seconds: float) -> str:
    return f"{max(1, int(round(seconds * 1000)))}ms"


def render_config(targets_dir: Path | str, scrape_interval_s: float = 1.0,
                  template: Path | str = TEMPLATE) -> str:
    """The template with its file_sd path set to ``targets_dir/*.json`` and the interval set."""
    if not scrape_interval_s > 0:
        raise UserError(f"scrape interval must be > 0 seconds, got {scrape_interval_s!r}")
    template = Path(template)
    if not template.is_file():
        raise UserError(f"Prometheus config template {template} is missing")
    config = yaml.safe_load(template.read_text(encoding="utf-8"))
    config.setdefault("global", {})
    config["global"]["scrape_interval"] = _duration(scrape_interval_s)
    config["global"]["scrape_timeout"] = _duration(scrape_interval_s * 0.8)
    # rule files are written relative to the template; the rendered config lives elsewhere
    config["rule_files"] = [str((template.parent / f).resolve())
                            for f in config.get("rule_files") or []]
    pattern = str(Path(targets_dir).resolve() / "*.json")
    for job in config.get("scrape_configs", []):
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [pattern]
            sd["refresh_interval"] = _duration(max(scrape_interval_s, 1.0))
    return yaml.safe_dump(config, sort_keys=False)


class PrometheusServer(LocalServer):
    """One local Prometheus process under ``workdir`` (config, data/, log, pidfile; targets/
    unless ``targets_dir`` is given). Another instance with the same ``workdir`` can stop it."""

    NAME = "Prometheus"

    def __init__(self, workdir: Path | str, port: int | None = None,
                 scrape_interval_s: float = 1.0, binary: str = "prometheus",
                 retention: str = "1d", targets_dir: Path | str | None = None) -> None:
        super().__init__(workdir, port)
        self.scrape_interval_s = scrape_interval_s
        self.binary = binary
        self.retention = retention
        self.config_path = self.workdir / "prometheus.yml"
        self.targets_dir = Path(targets_dir) if targets_dir else self.workdir / "targets"
        self.data_dir = self.workdir / "data"

    def start(self, timeout: float = 30.0) -> "PrometheusServer":
        """Render the config, start Prometheus and wait until ``/-/ready`` answers."""
        exe = shutil.which(self.binary)
        if exe is None:
            raise UserError(f"'{self.binary}' not found: install Prometheus "
                            "(Debian: apt-get install prometheus)")
        if self.running():
            raise UserError(f"Prometheus already runs from {self.workdir} "
                            f"(pid {self.pid}); stop it first")
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(self.targets_dir, self.scrape_interval_s))
        self._launch([
            exe, f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle", "--log.level=warn",
        ], timeout)
        return self

    def reload(self) -> None:
        """Reread the config file (``POST /-/reload``); an invalid one keeps the old config."""
        import requests

        self.config_path.write_text(render_config(self.targets_dir, self.scrape_interval_s))
        resp = requests.post(f"{self.url}/-/reload", timeout=10)
        if resp.status_code != 200:
            raise UserError(f"Prometheus refused the new config: {resp.text.strip()}")

    def add_target(self, model: str, version: str, addresses: list[str]) -> Path:
        return write_target(self.targets_dir, model, version, addresses)

    def remove_target(self, model: str, version: str) -> bool:
        return remove_target(self.targets_dir, model, version)
