"""The whole one-machine stack: Prometheus, every model's stable version, the nginx gateway,
Airflow and a load generator of synthetic users, each started as a process and stopped by PID.

``LocalStack.up()`` is idempotent (a part already running is left as it is) and writes
``$home/stack.json`` with the URLs, so ``make down`` (``LocalStack.attach(home).down()``) and the
CLI find everything again.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from paddle_canary import process
from paddle_canary.localstack.airflow_server import AirflowServer
from paddle_canary.localstack.private import PRIVATE_UMASK, private_dir, write_private
from paddle_canary.registry import Registry
from paddle_canary.settings import REPO, Settings


@dataclass
class StackPorts:
    gateway: int = 8000
    prometheus: int = 9090
    airflow: int = 8080


def image_env() -> dict[str, str]:
    """No registry can be pulled from on one machine: a release with runtime=docker builds its
    images on the offline base (``paddle-canary image base``) unless the caller chose one."""
    from paddle_canary.images.base import BASE_TAG
    from paddle_canary.images.build import ENV_BASE
    return {ENV_BASE: os.environ.get(ENV_BASE) or BASE_TAG}


class LocalStack:
    def __init__(self, home: Path | str, model: str = "risk-score",
                 ports: StackPorts | None = None, load_rate: float = 60.0,
                 source_registry: Path = REPO / "model_registry",
                 load_rates: dict[str, float] | None = None):
        self.home = Path(home).resolve()
        self.model = model
        self.ports = ports or StackPorts()
        #: synthetic requests/s sent to each model; ``load_rates`` overrides it per model
        self.load_rate = load_rate
        self.load_rates = dict(load_rates or {})
        self.source_registry = Path(source_registry)
        self.paths = Settings(home=self.home, registry_root=self.home / "registry",
                                prometheus_url=f"http://127.0.0.1:{self.ports.prometheus}")
        self.airflow = AirflowServer(home=self.home / "airflow", port=self.ports.airflow,
                                     extra_env={**self.paths.to_env(), **image_env()})

    # ---- parts -------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """What a client (CLI, demo, tests) sets to drive this stack."""
        return {**self.paths.to_env(),
                "PADDLE_CANARY_AIRFLOW_URL": self.airflow.url,
                "PADDLE_CANARY_AIRFLOW_PASSWORD": self.airflow.password()}

    def prometheus(self):
        from paddle_canary.localstack.prometheus import PrometheusServer
        return PrometheusServer(self.home / "prometheus", port=self.ports.prometheus,
                                targets_dir=self.paths.targets_dir)

    def runtime(self):
        from paddle_canary.runtime.factory import make_runtime
        return make_runtime("local", self.paths)

    def gateway(self):
        from paddle_canary.traffic.nginx import NginxRouter
        if (self.paths.gateway_dir / "state.json").exists():
            return NginxRouter.attach(self.paths.gateway_dir)
        return NginxRouter(self.paths.gateway_dir, port=self.ports.gateway)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    # ---- up / down ---------------------------------------------------------------------------

    def prepare_registry(self) -> Registry:
        """A working copy of the registry, so releases never edit the committed one."""
        root = self.paths.registry_root
        if not root.exists():
            shutil.copytree(self.source_registry, root,
                            ignore=shutil.ignore_patterns("release.lock", ".lock"))
        return Registry(root)

    def up(self, airflow: bool = True, load: bool = True) -> None:
        """Start what is not running (idempotent). Every registered model's stable version
        runs and is routed. A gateway that had to be (re)started routes every model to its
        stable version only; a running one keeps its routes, except that a stable version
        that was restarted (on another port) is re-pointed."""
        from paddle_canary.traffic.base import Backend, ModelRoute
        private_dir(self.home)
        reg = self.prepare_registry()
        prom = self.prometheus()
        if not prom.running():
            prom.start()
        rt = self.runtime()
        routes = []
        for model in reg.models():
            stable = reg.pointers(model).stable
            if stable is None:
                continue
            endpoint = rt.deploy(model, stable)
            routes.append(ModelRoute(model, stable=Backend(stable, endpoint.url)))
        gw = self.gateway()
        if not gw.is_running():
            gw.start([r for r in routes if r.model == self.model]
                     + [r for r in routes if r.model != self.model])
        else:
            for route in routes:
                live = gw.live(route.model)
                if live is None:
                    gw.apply_verified(route)
                elif live.stable != route.stable:
                    gw.apply_verified(live.replace(stable=route.stable))
        from paddle_canary.runtime.scrape_targets import write_gateway_target
        write_gateway_target(self.paths.targets_dir, gw.status_url.split("//", 1)[1])
        if airflow:
            self.airflow.start()
        if load:
            self.start_load()
        self._write_state()

    def start_load(self, duration_s: float = 24 * 3600) -> None:
        """One loadgen process sending synthetic users to every model with a stable version
        (through its gateway route), ``load_rate`` requests/s each unless ``load_rates`` says
        (0: no users for that model)."""
        pidfile = self.home / "loadgen.pid"
        pid = process.read_pidfile(pidfile)
        if pid and process.pid_alive(pid):
            return
        reg = Registry(self.paths.registry_root)
        models = [m for m in reg.models() if reg.pointers(m).stable]
        rates = {m: self.load_rates.get(m, self.load_rate) for m in models}
        per_model = [arg for m, rate in rates.items() if rate > 0
                     for arg in ("--model", f"{m}:{rate}")]
        if not per_model:
            return
        proc = process.spawn(
            [sys.executable, "-m", "paddle_canary.cli", "loadgen", "--gateway", self.gateway_url,
             *per_model, "--duration", str(duration_s), "--users", "5000",
             "--concurrency", "4", "--timeout", "5", "--registry",
             str(self.paths.registry_root), "--json-out", str(self.home / "loadgen.json")],
            self.home / "logs" / "loadgen.log", owner=self.home / "loadgen", umask=PRIVATE_UMASK)
        write_private(pidfile, str(proc.pid))

    def stop_load(self) -> None:
        pid = process.read_pidfile(self.home / "loadgen.pid")
        if pid:
            process.stop_pid(pid, timeout=15)
            (self.home / "loadgen.pid").unlink(missing_ok=True)

    def down(self) -> None:
        """Stop everything this stack started, by PID, in reverse order; then whatever is left
        of it (processes marked as this stack's, or in the sessions of its nginx, Prometheus
        and loadgen), crash or not."""
        sessions = [pid for pid in (process.read_pidfile(self.home / "loadgen.pid"),
                                    process.read_pidfile(self.paths.gateway_dir / "nginx.pid"),
                                    process.read_pidfile(self.home / "prometheus" /
                                                         "prometheus.pid")) if pid]
        self.stop_load()
        self.airflow.stop()
        rt = self.runtime()
        for ep in rt.endpoints():
            rt.remove(ep.model, ep.version)
        if (self.paths.gateway_dir / "state.json").exists():
            self.gateway().stop()
        self.prometheus().stop()
        process.stop_marked(self.home, sessions=sessions)

    def _write_state(self) -> None:
        state = {"home": str(self.home), "model": self.model, "ports": asdict(self.ports),
                 "gateway": self.gateway_url, "prometheus": self.paths.prometheus_url,
                 "airflow": self.airflow.url, "load_rate": self.load_rate,
                 "load_rates": self.load_rates}
        write_private(self.home / "stack.json", json.dumps(state, indent=2))

    @classmethod
    def attach(cls, home: Path | str) -> "LocalStack":
        state = json.loads((Path(home) / "stack.json").read_text())
        return cls(home, model=state["model"], ports=StackPorts(**state["ports"]),
                   load_rate=state.get("load_rate", 60.0), load_rates=state.get("load_rates"))
