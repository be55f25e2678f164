"""pid_alive / stop_pid decide when a stopped process is really gone."""

from __future__ import annotations

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
