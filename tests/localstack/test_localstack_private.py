"""The local stack's secrets and state: private to this user from the moment they exist."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
from localstack_helpers import readable_by_nobody

from paddle_canary.errors import UserError
from paddle_canary.localstack import private
from paddle_canary.localstack.airflow_server import AirflowServer

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs a command as user nobody")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_base():
    """A directory any user may enter (pytest's tmp dirs are 0700: nobody could not even
    reach a leaked file there), made with the everyday umask 022."""
    old = os.umask(0o022)
    base = Path(tempfile.mkdtemp(prefix="paddle-canary-private-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        os.umask(old)
        import shutil
        shutil.rmtree(base)


@needs_root
def test_the_jwt_secret_is_made_private_and_another_user_cannot_read_it(open_base):
    server = AirflowServer(home=open_base / "stack" / "airflow")
    env = server.env()  # what every component is started with: makes the secret
    secret_file = server.home / "jwt_secret"
    assert secret_file.read_text().strip() == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert mode(server.home) == 0o700 and mode(secret_file) == 0o600
    assert not readable_by_nobody(secret_file)  # was 0644 in 0755 directories
    probe = open_base / "probe"
    probe.write_text("x")
    assert readable_by_nobody(probe)  # the check itself can see a readable file


def test_each_stack_gets_its_own_free_log_server_ports(open_base):
    a = AirflowServer(home=open_base / "a").env()
    b = AirflowServer(home=open_base / "b").env()
    ports = {int(env[f"AIRFLOW__LOGGING__{k}_LOG_SERVER_PORT"]) for env in (a, b)
             for k in ("WORKER", "TRIGGER")}
    assert len(ports) == 4 and not ports & {8793, 8794}
    again = AirflowServer(home=open_base / "a").env()  # kept: every component agrees
    assert again["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == a[
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
    assert mode(open_base / "a" / "log_ports.json") == 0o600


def test_a_secret_left_readable_by_an_older_version_is_replaced(open_base):
    home = private.private_dir(open_base / "old")
    (home / "jwt_secret").write_text("leaked")
    (home / "jwt_secret").chmod(0o644)
    fresh = private.secret(home / "jwt_secret", lambda: "new-secret")
    assert fresh == "new-secret" and mode(home / "jwt_secret") == 0o600
    (home / "jwt_secret").chmod(0o644)
    with pytest.raises(UserError, match=r"readable by other users \(mode 0644\).*make down"):
        private.secret(home / "jwt_secret", lambda: "x", in_use=True)


def test_private_files_are_created_private_not_chmod_ed_after(open_base, monkeypatch):
    def no_chmod(*_args, **_kwargs):
        raise AssertionError("chmod after creation: there was a moment it was readable")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    home = private.private_dir(open_base / "new" / "home")
    private.write_private(home / "passwords.json", json.dumps({"admin": "pw"}))
    assert mode(home) == 0o700 and mode(home / "passwords.json") == 0o600
    assert [p.name for p in home.iterdir()] == ["passwords.json"]  # no temp file left
