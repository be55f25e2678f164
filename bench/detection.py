"""Detection bench: does the judge catch broken candidates, fast, without failing good ones?

Real serving processes (Paddle Inference) behind the nginx router at a 5 % canary weight, a real
Prometheus scraping every second, and the load generator's synthetic users (stable IDs, feature
rows drawn from v1's reference data) at a fixed request rate. For each scenario the weight is
set, the window starts, and the judge is asked every second (as the Airflow trigger does):

* A/A: v1 against a copy of v1 under another version label, ``--aa-runs`` windows of
  ``--aa-seconds`` each (the same two processes, a fresh window per run: compressed steps);
* v2, the good retrain, for ``--v2-seconds``;
* each broken candidate (bad-shift, bad-reject, bad-slow, bad-nan) until it fails or
  ``--broken-seconds`` pass; bad-signature, which cannot even load, is reported as such.

Every candidate is served with ``--shadow v1`` (the stable version scores each of its requests
too, for paired analysis). Printed per scenario: verdict, time to verdict, canary requests
served before a fail or a pass, for three judges on the same counts at the same looks:

* ``paired``: the judge with the candidate's paired series (each look building on the last);
* ``cs``: the same judge without them (the unpaired statistics, its fallback);
* ``fixed``: a baseline with the unpaired gates' fixed-horizon intervals (z / chi-square
  quantiles, Wilson for proportions) at the same alpha split, i.e. what "compare an interval
  with the threshold at every poll" gives without a correction for looking again and again.

    .venv/bin/python bench/detection.py            # ~10 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from paddle_canary import process
from paddle_canary.analysis import GateConfig, PrometheusProvider, judge, stats
from paddle_canary.analysis.counts import NoData
from paddle_canary.localstack.prometheus import PrometheusServer
from paddle_canary.loadgen.runner import run_load
from paddle_canary.registry import Registry
from paddle_canary.traffic.base import Backend, ModelRoute
from paddle_canary.traffic.nginx import NginxRouter

REPO = Path(__file__).resolve().parents[1]
MODEL = "risk-score"
BROKEN = ("bad-shift", "bad-reject", "bad-slow", "bad-nan", "bad-signature")


# ---- set-up --------------------------------------------------------------------------------

def build_registry(dest: Path) -> Path:
    """v1, v2, the broken fixtures and v1 again as ``v1-copy`` (A/A) under one root."""
    src, broken, dst = REPO / "model_registry" / MODEL, REPO / "fixtures/broken_models" / MODEL, \
        dest / MODEL
    dst.mkdir(parents=True)
    shutil.copy2(src / "model.yaml", dst / "model.yaml")
    for v in ("v1", "v2"):
        shutil.copytree(src / v, dst / v)
    for v in BROKEN:
        shutil.copytree(broken / v, dst / v)
    shutil.copytree(src / "v1", dst / "v1-copy")
    card = dst / "v1-copy" / "card.yaml"
    card.write_text(card.read_text().replace("\nversion: v1\n", "\nversion: v1-copy\n"))
    return dest


class Serving:
    """``paddle-canary serve`` for one version, stopped by PID. (runtime.local refuses a version
    whose /deep_health fails, e.g. bad-nan; here broken versions must get traffic.)"""

    def __init__(self, workdir: Path, registry: Path, version: str, shadow: str | None = None):
        self.version = version
        self.port = process.free_port()
        self.log = workdir / f"serve-{version}.log"
        self.proc = process.spawn(
            [sys.executable, "-m", "paddle_canary.cli", "serve", "--model", MODEL, "--version",
             version, "--port", str(self.port), "--registry", str(registry)]
            + (["--shadow", shadow] if shadow else []), self.log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self, timeout: float = 60) -> bool:
        """True once /health answers; False if the process exited (cannot load)."""
        import urllib.request

        def up():
            if self.proc.poll() is not None:
                return "exited"
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        return process.wait_until(up, timeout, what=f"serve {self.version}") is True

    def stop(self) -> None:
        if self.proc.poll() is None:
            process.stop_pid(self.proc.pid)


# ---- the baseline judge: fixed-horizon intervals -------------------------------------------

@contextlib.contextmanager
def fixed_horizon():
    """Swap the confidence sequences for fixed-horizon intervals at the same alpha."""
    from scipy.stats import chi2, norm

    def radius(info, alpha, prior_sd, dim=1, iters=0):
        info = np.asarray(info, dtype=float)
        q = chi2.ppf(1 - alpha, dim) if np.ndim(dim) == 0 and dim > 1 else norm.ppf(
            1 - alpha / 2) ** 2
        r = np.where(info > 0, np.sqrt(q / np.where(info > 0, info, 1)), np.inf)
        return r if r.ndim else float(r)

    def wilson(k, n, alpha, a=0.5, b=0.5, iters=0):
        k, n = np.broadcast_arrays(np.asarray(k, float), np.asarray(n, float))
        z = norm.ppf(1 - alpha / 2)
        nn = np.where(n > 0, n, 1)
        p = np.clip(k / nn, 0, 1)
        centre = (p + z * z / (2 * nn)) / (1 + z * z / nn)
        half = z * np.sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / (1 + z * z / nn)
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), 0.0)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), 1.0)
        return (lo, hi) if lo.ndim else (float(lo), float(hi))

    saved = stats.normal_mixture_radius, stats.beta_binomial_cs
    stats.normal_mixture_radius, stats.beta_binomial_cs = radius, wilson
    try:
        yield
    finally:
        stats.normal_mixture_radius, stats.beta_binomial_cs = saved


# ---- one scenario ---------------------------------------------------------------------------

def run_window(provider, router, candidate: str, config: GateConfig, seconds: float,
               stop_on_fail: bool = True, weight: int = 5) -> dict:
    """Set the weight, start the window, look every second; the three judges on the same
    counts. Ends when both sequence judges failed (``stop_on_fail``) or time is up."""
    router.set_weight(MODEL, weight)                  # verified: read back from nginx
    if not router.verify_weight(MODEL, weight):
        raise RuntimeError(f"gateway does not serve {weight} %")
    t0 = time.time()
    out = {name: {"first_fail": None, "first_pass": None, "fail_requests": None,
                  "pass_requests": None} for name in ("paired", "cs", "fixed")}
    prev: dict = {"paired": None, "cs": None}
    looks = 0
    last = {}
    deadline = t0 + seconds
    while True:
        next_look = time.time() + 1.0
        now = time.time()
        base = provider.window_counts(MODEL, "v1", start=t0, end=now)
        cand = provider.window_counts(MODEL, candidate, start=t0, end=now, paired_with="v1")
        unpaired = (dataclasses.replace(cand, paired=None) if not isinstance(cand, NoData)
                    else cand)
        looks += 1
        verdicts = {"paired": judge(base, cand, config, previous=prev["paired"]),
                    "cs": judge(base, unpaired, config, previous=prev["cs"])}
        prev = {k: v.to_dict() for k, v in verdicts.items()}
        with fixed_horizon():
            verdicts["fixed"] = judge(base, unpaired, config)
        for name, v in verdicts.items():
            rec = out[name]
            if v.status == "fail" and rec["first_fail"] is None:
                rec["first_fail"] = now - t0
                rec["fail_requests"] = 0 if isinstance(cand, NoData) else cand.requests
                rec["fail_gates"] = v.failed_gates()
                rec["fail_reason"] = v.reason
            if v.status == "pass" and rec["first_pass"] is None:
                rec["first_pass"] = now - t0
                rec["pass_requests"] = 0 if isinstance(cand, NoData) else cand.requests
            last[name] = v
        both_failed = all(out[n]["first_fail"] is not None for n in ("paired", "cs"))
        if (stop_on_fail and both_failed) or time.time() >= deadline:
            break
        time.sleep(max(0.0, next_look - time.time()))
    router.set_weight(MODEL, 0)
    for name, v in last.items():
        out[name]["final"] = v.status
        out[name]["gates"] = {g.gate: g.status for g in v.gates}
    out["looks"] = looks
    out["seconds"] = time.time() - t0
    out["canary_requests"] = 0 if isinstance(cand, NoData) else cand.requests
    out["stable_requests"] = 0 if isinstance(base, NoData) else base.requests
    out["reason"] = last["paired"].reason
    out["paired_rows"] = (cand.paired.rows if not isinstance(cand, NoData) and cand.paired
                          else 0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=600, help="requests/s through the gateway")
    ap.add_argument("--aa-runs", type=int, default=20)
    ap.add_argument("--aa-seconds", type=float, default=20)
    ap.add_argument("--v2-seconds", type=float, default=120)
    ap.add_argument("--broken-seconds", type=float, default=60)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="detection-"))
    registry = build_registry(work / "registry")
    config = GateConfig.from_dict(Registry(registry).model_defaults(MODEL)["gates"])
    started: list = []
    results: dict = {"config": config.to_dict(), "rate": args.rate, "scenarios": []}
    stop_load = threading.Event()
    load_summary = {}
    loader = None
    t_bench = time.time()
    try:
        prom = PrometheusServer(work / "prometheus", scrape_interval_s=1.0).start()
        started.append(prom)
        provider = PrometheusProvider(prom.url)
        stable = Serving(work, registry, "v1")  # the stable version: no shadow
        started.append(stable)
        assert stable.ready(), "stable v1 did not start"
        prom.add_target(MODEL, "v1", [f"127.0.0.1:{stable.port}"])
        router = NginxRouter(work / "gateway", process.free_port())
        router.start([ModelRoute(MODEL, stable=Backend("v1", stable.url))])
        started.append(router)
        reference = Registry(registry).card(MODEL, "v1").reference_inputs()

        def load():
            load_summary["s"] = run_load(
                f"{router.url}/predict", users=5000, duration_s=3600, rate=args.rate,
                concurrency=16, reference=reference, seed=1, timeout_s=15, stop=stop_load)
        loader = threading.Thread(target=load, daemon=True)
        loader.start()

        def candidate(version: str) -> Serving | None:
            cand = Serving(work, registry, version, shadow="v1")
            started.append(cand)
            if not cand.ready():
                return None
            prom.add_target(MODEL, version, [f"127.0.0.1:{cand.port}"])
            process.wait_until(
                lambda: provider.query(f'up{{model="{MODEL}",version="{version}"}} == 1'), 20,
                what=f"{version} scraped")
            router.apply_verified(router.route(MODEL).replace(
                candidate=Backend(version, cand.url), weight=0))
            return cand

        def finish(cand: Serving, version: str) -> None:
            router.apply_verified(router.route(MODEL).without_candidate())
            prom.remove_target(MODEL, version)
            cand.stop()

        # broken candidates
        for version in BROKEN:
            cand = candidate(version)
            if cand is None:
                tail = cand_log_tail(work / f"serve-{version}.log")
                results["scenarios"].append({"scenario": version, "refused": tail})
                print(f"{version:<13} could not start (serve exited): {tail}", flush=True)
                continue
            r = run_window(provider, router, version, config, args.broken_seconds)
            r["scenario"] = version
            results["scenarios"].append(r)
            print(row(r), flush=True)
            finish(cand, version)

        # the good retrain
        cand = candidate("v2")
        r = run_window(provider, router, "v2", config, args.v2_seconds, stop_on_fail=False)
        r["scenario"] = "v2"
        results["scenarios"].append(r)
        print(row(r), flush=True)
        finish(cand, "v2")

        # A/A: the same two processes, a fresh window per run
        cand = candidate("v1-copy")
        for i in range(args.aa_runs):
            r = run_window(provider, router, "v1-copy", config, args.aa_seconds,
                           stop_on_fail=False)
            r["scenario"] = f"A/A #{i + 1}"
            results["scenarios"].append(r)
            print(row(r), flush=True)
        finish(cand, "v1-copy")
    finally:
        stop_load.set()
        if loader is not None:
            loader.join(30)
        for thing in reversed(started):
            with contextlib.suppress(Exception):
                thing.stop()
    results["bench_seconds"] = time.time() - t_bench
    s = load_summary.get("s")
    if s is not None:
        results["load"] = {k: v for k, v in s.to_dict().items() if k != "records"}
    print()
    print(summary(results))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=float))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def cand_log_tail(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "error" in ln.lower():
            return ln.strip()[-200:]
    return (lines[-1] if lines else "(no log)")[-200:]


def _t(x) -> str:
    return "-" if x is None else f"{x:.1f} s"


def _verdict(rec: dict) -> tuple[str, float | None, float | None]:
    if rec["first_fail"] is not None:
        return "fail", rec["first_fail"], rec["fail_requests"]
    if rec["first_pass"] is not None:
        return "pass", rec["first_pass"], rec["pass_requests"]
    return rec["final"], None, None


def row(r: dict) -> str:
    parts = []
    for name in ("paired", "cs", "fixed"):
        verdict, when, reqs = _verdict(r[name])
        parts.append(f"{name}: {verdict:<12} at {_t(when):>7} "
                     f"({'-' if reqs is None else f'{reqs:.0f}':>5} canary req)")
    gates = ",".join(r["paired"].get("fail_gates", [])) or ",".join(
        f"{g}={s[0]}" for g, s in r["paired"]["gates"].items())
    return (f"{r['scenario']:<13} " + "  ".join(parts) + f"  [{gates}]  ({r['looks']} looks, "
            f"{r['canary_requests']:.0f} canary / {r['stable_requests']:.0f} stable requests, "
            f"{r['paired_rows']:.0f} paired rows)")


def summary(results: dict) -> str:
    sc = [s for s in results["scenarios"] if "cs" in s]
    aa = [s for s in sc if s["scenario"].startswith("A/A")]
    lines = []
    for judge_name in ("paired", "cs", "fixed"):
        fails = sum(1 for s in aa if s[judge_name]["first_fail"] is not None)
        passes = sum(1 for s in aa if s[judge_name]["first_pass"] is not None)
        lines.append(f"A/A ({len(aa)} runs x {aa[0]['seconds']:.0f} s, polled every 1 s) "
                     f"[{judge_name}]: {fails} fail, {passes} reached pass" if aa else "")
    load = results.get("load", {})
    keys = ("requests", "failures", "throughput_rps", "by_version")
    lines.append(f"bench {results['bench_seconds']:.0f} s; load: "
                 f"{json.dumps({k: load.get(k) for k in keys})}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
