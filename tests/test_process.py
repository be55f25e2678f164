"""pid_alive / stop_pid decide when a stopped process is really gone; marked processes are
found and stopped however their parents died."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

from paddle_canary import process

# Starts a child that it never reaps, prints the child's PID, then sleeps.
NO_REAP = ("import subprocess, sys, time; c = subprocess.Popen(['sleep', '60']); "
           "print(c.pid, flush=True); time.sleep(60)")
# The main thread exits while another thread keeps running (and holds a socket open).
LEADER_EXITS = ("import ctypes, socket, threading, time; s = socket.socket();"
                "s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True);"
                "threading.Thread(target=lambda: time.sleep(60)).start();"
                "ctypes.CDLL(None).pthread_exit(None)")


def test_a_process_another_parent_never_reaps_counts_as_gone_once_stopped():
    parent = subprocess.Popen([sys.executable, "-c", NO_REAP], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert process.pid_alive(pid)
        process.stop_pid(pid, timeout=5)   # a zombie of its parent now: it has exited
        assert not process.pid_alive(pid)
    finally:
        parent.kill()
        parent.wait(5)


def test_a_process_whose_main_thread_exited_is_alive_while_a_thread_runs():
    proc = subprocess.Popen([sys.executable, "-c", LEADER_EXITS], stdout=subprocess.PIPE,
                            text=True)
    try:
        port = int(proc.stdout.readline())
        process.wait_until(lambda: _leader_zombie(proc.pid), 10, what="main thread exit")
        assert process.pid_alive(proc.pid)
        assert process.port_open(port)
    finally:
        process.stop_pid(proc.pid, sig=9, timeout=5)
    assert not process.pid_alive(proc.pid)


def _leader_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[-1].split()[0] == "Z"


# A marked parent whose child leaves its session and ignores SIGTERM (as Airflow's LocalExecutor
# workers outlive a SIGKILLed scheduler in its old process group); prints the child's PID.
ORPHAN_MAKER = ("import os, signal, subprocess, sys, time;"
                "c = subprocess.Popen([sys.executable, '-c', 'import os, signal, time;"
                "os.setsid(); signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                "print(1, flush=True); time.sleep(120)'], stdout=subprocess.PIPE);"
                "c.stdout.readline(); print(c.pid, flush=True); time.sleep(120)")


def _spawn_printing(argv, tmp_path, owner, name="p"):
    out = tmp_path / f"{name}.out"
    proc = process.spawn(argv, out, owner=owner)
    pid_line = process.wait_until(lambda: out.read_text().strip(), 20, what=f"{name} output")
    return proc, pid_line


def test_stop_marked_finds_and_stops_an_orphan_that_ignores_sigterm(tmp_path):
    home = tmp_path / "stack"
    parent, child = _spawn_printing([sys.executable, "-c", ORPHAN_MAKER], tmp_path,
                                    home / "scheduler")
    child = int(child)
    try:
        assert process.marked(home) == sorted([parent.pid, child])
        parent.kill()  # SIGKILL: the child lives on, in another session, reparented
        parent.wait(5)
        assert process.pid_alive(child) and process.mark_of(child) == str(home / "scheduler")
        assert process.marked(home) == [child]
        assert process.stop_marked(home, timeout=1.0) == [child]  # SIGTERM ignored: SIGKILL
        assert not process.pid_alive(child)
        assert process.marked(home) == []
    finally:
        if process.pid_alive(child):
            os.kill(child, signal.SIGKILL)


def test_an_owner_covers_the_owners_below_it_only(tmp_path):
    sleep = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); "
                                   "time.sleep(60)"]
    procs = {}
    for name in ("a", "a/b", "ab", "other"):
        proc, _ = _spawn_printing(sleep, tmp_path, tmp_path / name, name.replace("/", "-"))
        procs[name] = proc.pid
    try:
        assert process.marked(tmp_path / "a") == sorted([procs["a"], procs["a/b"]])
        assert process.stop_marked(tmp_path / "a" / "b") == [procs["a/b"]]
        assert process.marked(tmp_path / "a") == [procs["a"]]
        assert process.pid_alive(procs["ab"]) and process.pid_alive(procs["other"])
    finally:
        assert sorted(process.stop_marked(tmp_path)) == sorted(
            [procs["a"], procs["ab"], procs["other"]])
    assert process.marked(tmp_path) == []


def test_a_marked_process_stopping_its_owner_spares_itself(tmp_path):
    """An Airflow task (marked as the stack's) may stop the stack's other processes."""
    code = ("import subprocess, sys; from paddle_canary import process;"
            "s = subprocess.Popen(['sleep', '60']);"
            f"stopped = process.stop_marked({str(tmp_path)!r}, timeout=5);"
            "print(stopped == [s.pid], flush=True)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=process.marked_env(tmp_path / "task"))
    assert done.stdout == "True\n", done.stderr
    assert process.marked(tmp_path) == []


def test_spawn_with_a_private_umask_makes_private_files(tmp_path):
    old = os.umask(0o022)
    try:
        proc = process.spawn(["sh", "-c", "echo secret > f; mkdir d"], tmp_path / "log",
                             cwd=tmp_path, umask=0o077)
        proc.wait(10)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700


SET_TITLE = ("import os, time; from setproctitle import setproctitle;"
             "setproctitle('a title much longer than this command line ' * 8);"
             "print(os.getpid(), flush=True); time.sleep(60)")


def test_a_process_title_does_not_hide_the_mark_of_a_python_child(tmp_path):
    """Airflow's workers set their title with setproctitle, which overwrites
    /proc/<pid>/environ unless SPT_NOENV is set (spawn sets it with the mark)."""
    proc, pid = _spawn_printing([sys.executable, "-c", SET_TITLE], tmp_path, tmp_path / "x")
    try:
        assert int(pid) == proc.pid and process.marked(tmp_path) == [proc.pid]
    finally:
        process.stop_marked(tmp_path)
    assert not process.pid_alive(proc.pid)


def test_processes_with_an_overwritten_environment_are_found_by_their_session(tmp_path):
    """nginx overwrites its environment with its title: pass the session IDs (the PIDs that
    spawn started) and the leftovers of those sessions are found, never another session's."""
    code = ("import os, subprocess, time; from setproctitle import setproctitle;"
            f"c = subprocess.Popen([{sys.executable!r}, '-c', {SET_TITLE!r}],"
            "  env={**os.environ, 'SPT_NOENV': ''}, stdout=subprocess.PIPE);"
            "print(c.stdout.readline().decode().strip(), flush=True); time.sleep(60)")
    leader, child = _spawn_printing([sys.executable, "-c", code], tmp_path, tmp_path / "gw")
    child = int(child)
    stranger = subprocess.Popen(["sleep", "60"], env={})  # unmarked, not in the session
    try:
        process.wait_until(lambda: process.mark_of(child) is None, 10, what="title set")
        assert process.marked(tmp_path) == [leader.pid]
        leader.kill()
        leader.wait(5)
        assert process.marked(tmp_path) == []
        assert process.marked(tmp_path, sessions=[leader.pid]) == [child]
        assert process.stop_marked(tmp_path, sessions=[leader.pid]) == [child]
        assert not process.pid_alive(child) and stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait(5)
        if process.pid_alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_child_spawned_without_an_owner_does_not_inherit_its_parents_mark(tmp_path):
    """A serving process started by an Airflow task (marked as the scheduler's) must survive
    the cleanup of the scheduler's leftovers."""
    code = ("from paddle_canary import process;"
            f"p = process.spawn(['sleep', '60'], {str(tmp_path / 'log')!r});"
            f"q = process.spawn(['sleep', '60'], {str(tmp_path / 'log')!r},"
            f" owner={str(tmp_path / 'serve')!r});"
            "print(p.pid, q.pid, flush=True)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=process.marked_env(tmp_path / "scheduler"))
    plain, owned = map(int, done.stdout.split())
    try:
        assert process.mark_of(plain) is None
        assert process.mark_of(owned) == str(tmp_path / "serve")
        assert process.stop_marked(tmp_path / "scheduler") == []
        assert process.pid_alive(plain)
    finally:
        process.stop_pid(plain, timeout=5)
        assert process.stop_marked(tmp_path) == [owned]
