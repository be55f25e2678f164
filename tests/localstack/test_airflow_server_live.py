"""A real Airflow 3.3 (api-server, scheduler, dag-processor, triggerer) started by AirflowServer:
it listens on loopback only, keeps its secrets and state from other users, and leaves no
process behind after a SIGKILLed scheduler, whether it is restarted or stopped."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path

import pytest
from localstack_helpers import in_sessions, listening, readable_by_nobody

from paddle_canary import process
from paddle_canary.airflow_rest import AirflowClient
from paddle_canary.cli import main
from paddle_canary.localstack.commands import summary
from paddle_canary.localstack.stack import LocalStack, StackPorts

pytestmark = pytest.mark.slow
DAGS = Path(__file__).with_name("dags")


@pytest.fixture(scope="module")
def stack():
    """A stack whose Airflow alone is started, under a directory any user may enter (so that
    only the stack's own modes keep user nobody out), with the everyday umask 022."""
    old = os.umask(0o022)
    base = Path(tempfile.mkdtemp(prefix="paddle-canary-live-"))
    base.chmod(0o755)
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    s = LocalStack(base / "stack", ports=ports)
    s.airflow.dags_folder = DAGS
    try:
        s.airflow.start(timeout=240)
        yield s
    finally:
        s.airflow.stop()
        os.umask(old)
        left = s.airflow.processes()
        shutil.rmtree(base, ignore_errors=True)
        assert left == []


def sessions(server) -> set[int]:
    """The components' sessions: every process they start stays in one of them."""
    return {process.read_pidfile(server.pid_dir / f"{c}.pid") for c in server.running()}


def test_every_socket_of_the_stack_listens_on_loopback_only(stack):
    pids = in_sessions(sessions(stack.airflow))
    sockets = listening(pids)
    assert (stack.airflow.port in {port for _, _, port in sockets}), sockets  # the api-server
    assert {address for _, address, _ in sockets} <= {"127.0.0.1", "::1"}, sockets
    assert not {port for _, _, port in sockets} & {8793, 8794}, sockets  # no log servers


def test_secrets_and_state_cannot_be_read_by_another_user(stack):
    if os.geteuid() != 0:
        pytest.skip("runs a command as user nobody")
    home = stack.airflow.home
    for name in ("jwt_secret", "passwords.json", "airflow.db"):
        assert not readable_by_nobody(home / name), name
    for path in [home, *home.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:04o}"


def test_stack_up_names_the_password_file_and_only_stack_password_prints_it(stack, capsys):
    password = stack.airflow.password()
    text = "\n".join(summary(stack))
    assert password not in text
    assert str(stack.airflow.passwords_file) in text and "paddle-canary stack password" in text
    assert main(["stack", "password", "--home", str(stack.home)]) == 0
    assert capsys.readouterr().out == f"{password}\n"


def test_a_killed_scheduler_leaves_nothing_after_a_restart_and_a_stop(stack):
    server = stack.airflow
    client = AirflowClient(server.url, server.username, server.password())
    try:
        process.wait_until(lambda: client.dag_exists("sleepy"), 120, interval=1,
                           what="sleepy parsed")
        client.unpause("sleepy")
        run = client.trigger({}, dag_id="sleepy")
        process.wait_until(lambda: client.task_instances(run, dag_id="sleepy").get("nap")
                           == "running", 120, interval=1, what="the task running")
    finally:
        client.close()
    scheduler = process.read_pidfile(server.pid_dir / "scheduler.pid")
    os.kill(scheduler, signal.SIGKILL)
    process.wait_until(lambda: not process.pid_alive(scheduler), 10, what="scheduler gone")
    orphans = in_sessions({scheduler})
    assert orphans  # its LocalExecutor workers and the task live on, out of its group

    server.start(timeout=240)  # `stack up` after the crash: the orphans go first
    assert not set(in_sessions({scheduler})) & set(orphans)
    assert process.read_pidfile(server.pid_dir / "scheduler.pid") != scheduler

    everything = in_sessions(sessions(server) | {scheduler})
    server.stop()
    assert not [p for p in everything if process.pid_alive(p)]
    assert server.processes() == [] and server.running() == []
