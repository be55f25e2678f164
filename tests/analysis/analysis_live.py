"""Live-test helpers: stand-in serving processes and waits on what Prometheus has scraped."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from paddle_canary import process
from paddle_canary.analysis.provider import PrometheusProvider

HERE = Path(__file__).resolve().parent


class Exporter:
    """A stand-in serving process exposing the real ServingMetrics series."""

    def __init__(self, workdir: Path, model: str, version: str, port: int | None = None):
        self.model, self.version = model, version
        self.port = port or process.free_port()
        self.proc = process.spawn(
            [sys.executable, str(HERE / "analysis_exporter.py"), model, version, str(self.port)],
            workdir / f"exporter-{version}-{self.port}.log")
        process.wait_until(lambda: process.port_open(self.port), 15,
                           what=f"exporter {version} on port {self.port}")
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def scored(self, scores: list[float], seconds: float = 0.003) -> None:
        self.client.post("/observe", json={"scores": scores, "seconds": seconds}).raise_for_status()

    def failed(self, seconds: float = 0.003) -> None:
        self.client.post("/observe", json={"outcome": "error", "seconds": seconds}
                         ).raise_for_status()

    def refused(self) -> None:
        self.client.post("/observe", json={"outcome": "invalid_input"}).raise_for_status()

    def stop(self) -> None:
        self.client.close()
        process.stop_pid(self.proc.pid)



def scraped_value(provider: PrometheusProvider, query: str) -> float | None:
    """The single value of an instant query, or None when it has no result."""
    result = provider.query(query)
    return sum(v for _, v in result) if result else None


def wait_scraped(provider: PrometheusProvider, query: str, want: float,
                 timeout: float = 15.0) -> None:
    process.wait_until(lambda: scraped_value(provider, query) == want, timeout,
                       what=f"{query} == {want}")
