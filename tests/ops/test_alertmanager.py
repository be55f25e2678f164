"""Alertmanager's config and Prometheus' alerting section: valid, secrets kept private."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest
import yaml


from paddle_canary.errors import UserError
from paddle_canary.ops import alertmanager
from paddle_canary.ops.rules import RULES_FILE


@pytest.fixture(scope="module")
def amtool() -> str:
    exe = shutil.which("amtool")
    if exe is None:
        pytest.fail("amtool is not installed (Debian: apt-get install prometheus-alertmanager; "
                    "`make os-deps` does it)")
    return exe


def _check(amtool: str, path) -> None:
    done = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shipped_template_and_rendered_config_pass_amtool(amtool, tmp_path):
    _check(amtool, alertmanager.TEMPLATE)
    text = alertmanager.render_config("http://127.0.0.1:5001/alerts",
                                      slack_url="https://hooks.example.com/services/T/B/X",
                                      group_wait_s=1, group_interval_s=2, repeat_interval_s=60)
    path = tmp_path / "am.yml"
    path.write_text(text)
    _check(amtool, path)
    config = yaml.safe_load(text)
    (receiver,) = config["receivers"]
    assert receiver["webhook_configs"][0]["url"] == "http://127.0.0.1:5001/alerts"
    assert receiver["webhook_configs"][0]["send_resolved"] is True
    assert receiver["slack_configs"][0]["api_url"] == "https://hooks.example.com/services/T/B/X"
    for route in (config["route"], *config["route"]["routes"]):
        assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
            "1000ms", "2000ms", "60000ms")


def test_receiver_urls_must_be_http():
    for bad in ("", "127.0.0.1:5001/alerts", "file:///etc/passwd", "http://"):
        with pytest.raises(UserError, match="must be an http"):
            alertmanager.render_config(bad)
    with pytest.raises(UserError, match="Slack webhook URL"):
        alertmanager.render_config("http://127.0.0.1:1/a", slack_url="ftp://x")


def test_config_file_holding_webhook_urls_is_private(tmp_path):
    server = alertmanager.AlertmanagerServer(
        tmp_path, alertmanager.render_config("https://hooks.example.com/secret-token"))
    server._write_config()
    assert stat.S_IMODE(server.config_path.stat().st_mode) == 0o600


def test_with_alerting_adds_rules_and_alertmanager(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed")
    from paddle_canary.localstack.prometheus import render_config

    text = alertmanager.with_alerting(render_config(tmp_path / "targets"), ["127.0.0.1:9093"],
                                      evaluation_interval_s=1)
    config = yaml.safe_load(text)
    assert config["rule_files"] == [str(RULES_FILE.parent / "*.yml")]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:9093"]
    assert config["global"]["evaluation_interval"] == "1000ms"
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = yaml.safe_load(RULES_FILE.read_text())
    count = sum(len(g["rules"]) for g in shipped["groups"])
    assert f"SUCCESS: {count} rules found" in done.stdout + done.stderr
    for bad in ("127.0.0.1", "http://127.0.0.1:9093", "127.0.0.1:9093/api"):
        with pytest.raises(UserError, match="host:port"):
            alertmanager.with_alerting(text, [bad])
