"""Helpers for the traffic tests: real `paddle-canary serve` processes and /predict calls."""

from __future__ import annotations

import http.client
import json
import sys
from pathlib import Path

from paddle_canary.runtime.local import ServeProcess
from paddle_canary.traffic.base import Backend, ModelRoute

MODEL = "risk-score"
STABLE, CANDIDATE = "v1", "v2"
PADDLE_CANARY = [sys.executable, "-m", "paddle_canary.cli"]


class Serving(ServeProcess):
    """One `paddle-canary serve` process of the risk-score model, up on return; stopped by PID."""

    def __init__(self, version: str, log_dir: Path) -> None:
        super().__init__(MODEL, version, log_dir)
        self.wait_ready()


def predict(url: str, user_id: str | None, features, conn: http.client.HTTPConnection | None = None):
    """POST /predict through ``url``; returns (status, X-Model-Version, body dict)."""
    host_port = url.split("//", 1)[1]
    own = conn is None
    conn = conn or http.client.HTTPConnection(host_port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if user_id:
            headers["X-User-ID"] = user_id
        body = json.dumps({"user_id": user_id or "anonymous", "features": [float(x) for x in features]})
        conn.request("POST", "/predict", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        is_json = (resp.getheader("Content-Type") or "").startswith("application/json")
        return resp.status, resp.getheader("X-Model-Version"), json.loads(data) if is_json else {}
    finally:
        if own:
            conn.close()


def route(stable_url: str, candidate_url: str | None = None, weight: int = 0,
          model: str = MODEL, **kwargs) -> ModelRoute:
    """risk-score's route: v1 stable at ``stable_url``, v2 candidate at ``candidate_url``."""
    return ModelRoute(model, stable=Backend(STABLE, stable_url),
                      candidate=Backend(CANDIDATE, candidate_url) if candidate_url else None,
                      weight=weight, **kwargs)
