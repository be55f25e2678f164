"""Our own dockerd: started beside the session's, found by another process, stopped by PID with
nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from paddle_canary.localstack.dockerd import Dockerd
from paddle_canary.process import pid_alive

pytestmark = pytest.mark.slow


def test_start_find_stop_leaves_nothing(tmp_path, dockerd):
    engine = Dockerd(tmp_path / "engine")
    try:
        engine.start()
        pid = engine.pid
        assert engine.running and pid_alive(pid)
        assert engine.start().pid == pid  # idempotent
        other = Dockerd(tmp_path / "engine")  # e.g. `paddle-canary dockerd stop` later
        assert other.running and other.url == engine.url
        client = engine.client()
        try:
            network = client.networks.get(engine.network)
            bridge = f"br-{network.id[:12]}"
            assert Path(f"/sys/class/net/{bridge}").exists()
            assert client.info()["Driver"] == engine.storage_driver
        finally:
            client.close()
        # The session's engine runs beside it, untouched.
        assert dockerd.running and dockerd.client().ping()
        other.stop()
        assert not engine.running and not pid_alive(pid)
        assert not Path(f"/sys/class/net/{bridge}").exists()
        assert engine._leftover_pids() == [] and not engine.exec_root.exists()
        # its state is this user's alone: the home 0700, its log and databases 0600
        assert engine.home.stat().st_mode & 0o777 == 0o700
        for path in [engine.log_path, *engine.data_root.rglob("*.db")]:
            assert path.stat().st_mode & 0o077 == 0, path
        assert dockerd.running
    finally:
        engine.wipe()
    assert not engine.data_root.exists()
