"""The local Prometheus: a valid rendered config, start/stop by PID, targets found by file
discovery without a restart."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

import pytest
import yaml
from analysis_live import scraped_value, wait_scraped

from paddle_canary import process
from paddle_canary.localstack.prometheus import TEMPLATE, PrometheusServer, render_config
from paddle_canary.runtime.scrape_targets import write_target
from paddle_canary.analysis.provider import PrometheusProvider
from paddle_canary.errors import UserError


def test_template_and_rendered_config_pass_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    text = render_config(tmp_path / "targets", scrape_interval_s=1.0)
    config = yaml.safe_load(text)
    assert config["global"]["scrape_interval"] == "1000ms"
    job = config["scrape_configs"][0]
    assert job["honor_labels"] is True
    assert job["file_sd_configs"][0]["files"] == [str((tmp_path / "targets").resolve())
                                                  + "/*.json"]
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    for cfg in (path, TEMPLATE):
        done = subprocess.run([promtool, "check", "config", str(cfg)], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_target_files_are_checked_and_replaced_whole(tmp_path):
    path = write_target(tmp_path, "risk-score", "v2", ["127.0.0.1:8001"])
    assert path.name == "risk-score--v2.json"
    assert '"version": "v2"' in path.read_text()
    with pytest.raises(UserError):
        write_target(tmp_path, "risk-score", "v2", ["no-port"])
    with pytest.raises(UserError):
        write_target(tmp_path, "Bad Name", "v2", ["127.0.0.1:1"])
    assert [p.name for p in tmp_path.iterdir()] == ["risk-score--v2.json"]


def test_target_files_written_at_once_by_many_writers_stay_whole(tmp_path):
    """Two deploys of one version write its target at the same moment: each write must land
    whole (a fixed temporary name made one writer rename the other's file away)."""
    errors = []

    def write(i):
        try:
            for _ in range(50):
                write_target(tmp_path, "risk-score", "v2", [f"127.0.0.1:{8000 + i}"])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["risk-score--v2.json"]
    (entry,) = json.loads((tmp_path / "risk-score--v2.json").read_text())
    assert entry["labels"] == {"model": "risk-score", "version": "v2"}
    assert (tmp_path / "risk-score--v2.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.slow
def test_start_discover_new_target_without_restart_reload_and_stop(tmp_path, exporters):
    server = PrometheusServer(tmp_path / "prom", scrape_interval_s=1.0).start()
    try:
        pid = server.pid
        assert pid and process.pid_alive(pid) and server.is_ready()
        provider = PrometheusProvider(server.url)
        assert provider.is_online()
        with pytest.raises(UserError, match="already runs"):
            server.start()
        # a version started after Prometheus: found through its target file, no restart
        exp = exporters("risk-score", "v9")
        server.add_target("risk-score", "v9", [exp.address])
        wait_scraped(provider, 'up{model="risk-score",version="v9"}', 1.0)
        exp.scored([0.2, 0.7])
        wait_scraped(provider, 'sum(paddle_canary_decisions_total{version="v9"})', 2.0)
        server.reload()
        assert server.is_ready() and server.pid == pid
        # dropping the target stops the scrapes: `up` goes stale
        assert server.remove_target("risk-score", "v9")
        process.wait_until(lambda: scraped_value(provider, 'up{version="v9"}') is None, 20,
                           what="v9 target dropped")
    finally:
        server.stop()
    assert not process.pid_alive(pid)
    assert not process.port_open(server.port)
    assert server.pid is None
    assert not PrometheusProvider(server.url, retries=0).is_online()


def test_missing_binary_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        PrometheusServer(tmp_path, binary="no-such-prometheus").start()
