"""Real serving processes and traffic for the analysis integration tests and the bench.

``paddle-canary serve`` is started with ``runtime.local.ServeProcess`` (no /deep_health gate, so
broken versions start too); traffic goes straight to the processes, split by our own loop, in
``/predict/batch`` requests of reference rows (many scored rows per request, so the row-based
gates see enough data in seconds).
"""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from paddle_canary.registry import export_as
from paddle_canary.runtime.local import ServeProcess

REPO = Path(__file__).resolve().parents[2]
REGISTRY = REPO / "model_registry"
BROKEN = REPO / "fixtures" / "broken_models"
MODEL = "risk-score"


class Serving(ServeProcess):
    """One ``paddle-canary serve`` process (any version, broken ones too); stopped by PID."""

    def __init__(self, logdir: Path, version: str, registry: Path = REGISTRY,
                 model: str = MODEL):
        super().__init__(model, version, logdir, registry_root=registry)


def copy_as_version(dest_root: Path, version: str = "v1", as_version: str = "v1-copy") -> Path:
    """A registry root holding ``version`` again under the name ``as_version`` (for A/A: two
    processes of the same model whose series carry different version labels)."""
    src = REGISTRY / MODEL
    dst = Path(dest_root) / MODEL
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "model.yaml", dst / "model.yaml")
    export_as(src / version, dst / as_version, as_version)
    return Path(dest_root)


class Traffic:
    """Background threads sending batches of reference rows, split between versions.

    ``split`` = {Serving: weight}; each request goes to one version, drawn by weight.
    """

    def __init__(self, split: dict[Serving, float], rows: np.ndarray, batch: int = 40,
                 threads: int = 3, seed: int = 0):
        self.targets = list(split)
        w = np.array([split[t] for t in self.targets], dtype=float)
        self.cum = np.cumsum(w / w.sum())
        rng = np.random.default_rng(seed)
        self.bodies = [json.dumps({"user_id": f"user-{i:06d}", "instances":
                                   rows[rng.integers(0, len(rows), batch)].tolist()}).encode()
                       for i in range(97)]
        self.sent = {t.version: 0 for t in self.targets}
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(seed + i,), daemon=True)
                        for i in range(threads)]

    def _loop(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        conns = {t: http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
                 for t in self.targets}
        i = 0
        try:
            while not self.stop_event.is_set():
                t = self.targets[int(np.searchsorted(self.cum, rng.random()))]
                try:
                    conns[t].request("POST", "/predict/batch", self.bodies[i % len(self.bodies)],
                                     {"Content-Type": "application/json"})
                    conns[t].getresponse().read()
                except (OSError, http.client.HTTPException):
                    conns[t].close()
                    conns[t] = http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
                    continue
                i += 1
                with self.lock:
                    self.sent[t.version] += 1
        finally:
            for c in conns.values():
                c.close()

    def __enter__(self) -> "Traffic":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(15)


def poll(look, until_s: float, every_s: float = 1.0, stop_on=("fail",)):
    """Call ``look()`` every ``every_s`` s until its status is in ``stop_on`` or time is up.

    Returns ``(last verdict, seconds until it, number of looks)``.
    """
    t0 = time.monotonic()
    looks = 0
    while True:
        verdict = look()
        looks += 1
        elapsed = time.monotonic() - t0
        if verdict.status in stop_on or elapsed >= until_s:
            return verdict, elapsed, looks
        time.sleep(max(0.0, every_s - (time.monotonic() - t0 - elapsed)))


class ShadowServing:
    """``paddle-canary serve VERSION --shadow SHADOW``: the candidate's process also scores
    every answered request with the stable version (paired series). Stopped by PID."""

    def __init__(self, logdir: Path, version: str, shadow: str, registry: Path = REGISTRY,
                 shadow_registry: Path = REGISTRY, model: str = MODEL):
        from paddle_canary.process import free_port, spawn
        from paddle_canary.runtime.local import serve_argv

        self.model, self.version = model, version
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = spawn([*serve_argv(model, version, self.port, registry), "--shadow", shadow,
                           "--shadow-registry", str(shadow_registry)],
                          Path(logdir) / f"serve-{version}-shadow-{self.port}.log")

    address = ServeProcess.address
    wait_ready = ServeProcess.wait_ready
    stop = ServeProcess.stop
