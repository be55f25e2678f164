"""Alertmanager for the local stack and the tests, and Prometheus' side of alerting.

:func:`render_config` fills ``images/prometheus/alertmanager.yml`` with the real receiver URLs
(and, for tests, short grouping intervals). :class:`AlertmanagerServer` runs Debian's
``prometheus-alertmanager`` on 127.0.0.1 with its own storage directory, clustering off,
records its PID and is stopped by it. :func:`with_alerting` adds the rule files and the
Alertmanager address to a rendered Prometheus config.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

import yaml

from paddle_canary.errors import UserError
from paddle_canary.local_server import LocalServer
from paddle_canary.ops.rules import RULES_DIR
from paddle_canary.settings import REPO

TEMPLATE = REPO / "images" / "prometheus" / "alertmanager.yml"
BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name
RECEIVER = "paddle-canary"

_HOST_PORT = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}")

SLACK_TITLE = ("[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} "
               "{{ .CommonLabels.model }}")
SLACK_TEXT = "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}"


def _url(url: str, what: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserError(f"{what} must be an http(s) URL, got {url!r}")
    return url


def _duration(seconds: float) -> str:
    if not seconds > 0:
        raise UserError(f"durations must be > 0 seconds, got {seconds!r}")
    return f"{max(1, int(round(seconds * 1000)))}ms"


def render_config(webhook_url: str, slack_url: str | None = None, *,
                  group_wait_s: float | None = None, group_interval_s: float | None = None,
                  repeat_interval_s: float | None = None,
                  template: Path | str = TEMPLATE) -> str:
    """The template with the JSON webhook at ``webhook_url`` and, if given, a Slack-compatible
    incoming webhook at ``slack_url``. Interval overrides apply to every route (tests)."""
    config = yaml.safe_load(Path(template).read_text(encoding="utf-8"))
    receiver = next(r for r in config["receivers"] if r["name"] == RECEIVER)
    receiver["webhook_configs"][0]["url"] = _url(webhook_url, "webhook URL")
    if slack_url is not None:
        receiver["slack_configs"] = [{
            "api_url": _url(slack_url, "Slack webhook URL"), "send_resolved": True,
            "title": SLACK_TITLE, "text": SLACK_TEXT}]
    routes = [config["route"], *config["route"].get("routes", [])]
    for key, value in (("group_wait", group_wait_s), ("group_interval", group_interval_s),
                       ("repeat_interval", repeat_interval_s)):
        if value is not None:
            for route in routes:
                route[key] = _duration(value)
    return yaml.safe_dump(config, sort_keys=False)


def with_alerting(prometheus_config: str, alertmanagers: Iterable[str],
                  rule_files: Iterable[str | Path] = (RULES_DIR / "*.yml",),
                  evaluation_interval_s: float | None = None) -> str:
    """A rendered Prometheus config that loads ``rule_files`` (absolute paths or globs) and
    sends alerts to ``alertmanagers`` (``host:port``)."""
    config = yaml.safe_load(prometheus_config)
    targets = list(alertmanagers)
    if not all(isinstance(t, str) and _HOST_PORT.fullmatch(t) for t in targets):
        raise UserError(f"Alertmanager addresses must be host:port, got {targets!r}")
    config["rule_files"] = [str(Path(f).resolve()) for f in rule_files]
    if targets:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": targets}]}]}
    if evaluation_interval_s is not None:
        config.setdefault("global", {})["evaluation_interval"] = _duration(evaluation_interval_s)
    return yaml.safe_dump(config, sort_keys=False)


def binary() -> str:
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    raise UserError("Alertmanager is not installed (Debian: apt-get install "
                    "prometheus-alertmanager)")


class AlertmanagerServer(LocalServer):
    """One local Alertmanager under ``workdir`` (alertmanager.yml 0600, data/, log, pidfile)."""

    NAME = "Alertmanager"

    def __init__(self, workdir: Path | str, config_text: str, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.config_text = config_text
        self.config_path = self.workdir / "alertmanager.yml"
        self.data_dir = self.workdir / "data"

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_name(f".{self.config_path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds webhook URLs
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.config_text)
        os.replace(tmp, self.config_path)

    def start(self, timeout: float = 30.0) -> "AlertmanagerServer":
        """Write the config, start Alertmanager and wait until ``/-/ready`` answers."""
        exe = binary()
        if self.running():
            raise UserError(f"Alertmanager already runs from {self.workdir} (pid {self.pid})")
        self._write_config()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._launch([
            exe, f"--config.file={self.config_path}", f"--storage.path={self.data_dir}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",  # a single instance: no gossip port
            "--log.level=warn",
        ], timeout)
        return self
