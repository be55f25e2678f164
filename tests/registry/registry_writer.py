"""A registry writer run as its own process by the crash tests, to be SIGKILLed.

    python registry_writer.py ROOT loop
        prints "ready", then moves the pointers forever: set-candidate, clear-candidate,
        set-candidate, reject, set-candidate, promote (the other version each time)
    python registry_writer.py ROOT crash OP N
        does OP's setup, then OP (promote | set_candidate | clear_candidate | reject) with the
        N-th durable step (an fsync, a rename or a truncate) replaced by SIGKILL of itself;
        exits 3 when OP completed with fewer steps
"""

from __future__ import annotations

import os
import signal
import sys

from paddle_canary.registry import Registry, store

MODEL = "risk-score"


def other(registry: Registry) -> str:
    return "v2" if registry.pointers(MODEL).stable == "v1" else "v1"


def loop(registry: Registry) -> None:
    print("ready", flush=True)
    while True:
        version = other(registry)
        registry.set_candidate(MODEL, version)
        registry.clear_candidate(MODEL)
        registry.set_candidate(MODEL, version)
        registry.mark_rejected(MODEL, version, "killed at random")
        registry.set_candidate(MODEL, version)
        registry.promote(MODEL, version, reason="killed at random")


def crash(registry: Registry, op: str, n: int) -> None:
    if op in ("clear_candidate", "reject"):
        registry.set_candidate(MODEL, "v2")
    calls = 0

    def step(real):
        def wrapped(*args, **kwargs):
            nonlocal calls
            calls += 1
            if calls == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return wrapped

    for name in ("fsync", "replace", "rename", "truncate", "ftruncate"):
        setattr(store.os, name, step(getattr(os, name)))
    {"promote": lambda: registry.promote(MODEL, "v2", reason="crash test"),
     "set_candidate": lambda: registry.set_candidate(MODEL, "v2"),
     "clear_candidate": lambda: registry.clear_candidate(MODEL),
     "reject": lambda: registry.mark_rejected(MODEL, "v2", "crash test")}[op]()
    sys.exit(3)


if __name__ == "__main__":
    reg = Registry(sys.argv[1])
    if sys.argv[2] == "loop":
        loop(reg)
    else:
        crash(reg, sys.argv[3], int(sys.argv[4]))
