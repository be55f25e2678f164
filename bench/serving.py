"""Serving figures: /predict of `paddle-canary serve` against a bare uvicorn echo app.

    .venv/bin/python bench/serving.py [--model risk-score --version v1 --duration 10 --rounds 3]

Both servers run in this run with the same load (wrk, 2 threads, 16 connections, the same JSON
body: a reference row of the model), in alternating rounds so that load from elsewhere on the
machine hits both; medians are printed, with each server's CPU time per request (steadier than
req/s on a shared machine). Then the predictor alone: median µs per call at batch 1 and 16,
oneDNN off and on. Prints tables; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from paddle_canary.process import free_port, spawn, stop_pid, wait_until
from paddle_canary.registry import Registry

BENCH = Path(__file__).resolve().parent
LUA = """wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def wrk(url: str, lua: Path, duration: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(lua), url],
        capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    m = re.search(r"^RESULT (.*)$", out, re.M)
    n, dur_us, p50, p95, p99, bad_status, sock_err = (int(v) for v in m.group(1).split())
    return {"requests": n, "rps": n / (dur_us / 1e6), "p50_ms": p50 / 1000,
            "p95_ms": p95 / 1000, "p99_ms": p99 / 1000, "failed": bad_status + sock_err}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def measure(pid: int, url: str, lua: Path, args) -> dict:
    """One wrk run, plus the server's CPU µs per request during it."""
    cpu0 = cpu_seconds(pid)
    result = wrk(url, lua, args.duration, args.connections)
    result["cpu_us_per_req"] = (cpu_seconds(pid) - cpu0) / max(result["requests"], 1) * 1e6
    return result


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def predictor_us(card, mkldnn: bool, batch: int, calls: int = 2000, repeats: int = 7) -> float:
    from paddle_canary.serving.predictor import Predictor

    p = Predictor(card, device="cpu", threads=1, mkldnn=mkldnn)
    rows = np.resize(card.reference_inputs(), (batch, card.n_features)).astype(np.float32)
    for _ in range(200):
        p.predict(rows)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            p.predict(rows)
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="risk-score")
    ap.add_argument("--version", default="v1")
    ap.add_argument("--registry", default=None)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    card = Registry(args.registry).card(args.model, args.version)
    body = json.dumps({"user_id": "bench-user-1",
                       "features": [float(v) for v in card.reference_inputs()[0]]})
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    lua = work / "post.lua"
    lua.write_text(LUA.format(body=json.dumps(body)))

    servers = {}
    port = free_port()
    servers["echo"] = (
        [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "echo_app:app",
         "--port", str(port), "--no-access-log", "--no-proxy-headers", "--no-server-header",
         "--log-level", "warning"],  # the same uvicorn settings as `serve`
        f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{port}/predict")
    port = free_port()
    serve = [sys.executable, "-m", "paddle_canary.cli", "serve", "--model", args.model,
             "--version", args.version, "--port", str(port), "--device", "cpu"]
    if args.registry:
        serve += ["--registry", args.registry]
    servers["serve"] = (serve, f"http://127.0.0.1:{port}/deep_health",
                        f"http://127.0.0.1:{port}/predict")
    procs = {}
    runs: dict[str, list[dict]] = {"echo": [], "serve": []}
    load_before = os.getloadavg()[0]
    try:
        for name, (argv, ready_url, _) in servers.items():
            procs[name] = spawn(argv, work / f"{name}.log")
            wait_until(lambda: procs[name].poll() is None and ready(ready_url), 60,
                       what=f"{name} ready (log: {work / name}.log)")
        for name, (_, _, url) in servers.items():
            wrk(url, lua, 2, args.connections)  # warm-up
        for _ in range(args.rounds):  # alternate, so that load from elsewhere hits both
            for name, (_, _, url) in servers.items():
                runs[name].append(measure(procs[name].pid, url, lua, args))
    finally:
        for proc in procs.values():
            stop_pid(proc.pid)
    results = {name: median_of(r) for name, r in runs.items()}
    stopping = [json.loads(ln) for ln in (work / "serve.log").read_text().splitlines()
                if '"stopping"' in ln]
    rows_per_call = (stopping[-1]["rows_scored"] / max(stopping[-1]["predictor_calls"], 1)
                     if stopping else float("nan"))

    print(f"wrk -t2 -c{args.connections} -d{args.duration}s x {args.rounds} alternating rounds "
          f"(medians), POST one reference row ({len(body)} bytes), {args.model} {args.version}; "
          f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':22}{'req/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
          f"{'server CPU µs/req':>19}{'failed':>8}")
    for name, label in (("echo", "bare uvicorn echo"), ("serve", "paddle-canary serve")):
        r = results[name]
        print(f"{label:22}{r['rps']:9.0f}{r['p50_ms']:8.2f}{r['p95_ms']:8.2f}{r['p99_ms']:8.2f}"
              f"{r['cpu_us_per_req']:19.1f}{int(r['failed']):8d}")
    print(f"serve/echo: throughput {results['serve']['rps'] / results['echo']['rps']:.2f} "
          f"(goal >= 0.70); per-request CPU echo/serve "
          f"{results['echo']['cpu_us_per_req'] / results['serve']['cpu_us_per_req']:.2f}")
    print("per round req/s  echo: " + " ".join(f"{r['rps']:.0f}" for r in runs["echo"])
          + "   serve: " + " ".join(f"{r['rps']:.0f}" for r in runs["serve"]))
    print(f"serve: {rows_per_call:.1f} rows per Paddle call on average (micro-batching)")

    print("\npredictor alone, 1 math thread, median of 7 x 2000 calls (µs per call)")
    print(f"{'':14}{'batch 1':>10}{'batch 16':>10}")
    for mkldnn in (False, True):
        b1, b16 = predictor_us(card, mkldnn, 1), predictor_us(card, mkldnn, 16)
        print(f"{'oneDNN ' + ('on' if mkldnn else 'off'):14}{b1:10.1f}{b16:10.1f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
