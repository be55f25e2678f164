"""Serving figures: /predict of `paddle-canary serve` against a bare uvicorn echo app.

    .venv/bin/python bench/serving.py [--model risk-score --version v1 --duration 10]

Both servers run in this run, one after the other, with the same load (wrk, 2 threads,
16 connections, the same JSON body: a reference row of the model). Then the predictor alone:
median µs per call at batch 1 and 16, oneDNN off and on. Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
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
    return {"rps": n / (dur_us / 1e6), "p50_ms": p50 / 1000, "p95_ms": p95 / 1000,
            "p99_ms": p99 / 1000, "non_2xx": bad_status, "socket_errors": sock_err}


def ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def run_server(argv, log: Path, ready_url: str, lua: Path, url: str, args) -> dict:
    proc = spawn(argv, log)
    try:
        wait_until(lambda: proc.poll() is None and ready(ready_url), 60,
                   what=f"{' '.join(argv[1:4])} ready (log: {log})")
        wrk(url, lua, 2, args.connections)  # warm-up
        return wrk(url, lua, args.duration, args.connections)
    finally:
        stop_pid(proc.pid)


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
    ap.add_argument("--duration", type=int, default=10)
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

    results = {}
    port = free_port()
    results["echo"] = run_server(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "echo_app:app",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        work / "echo.log", f"http://127.0.0.1:{port}/health", lua,
        f"http://127.0.0.1:{port}/predict", args)
    port = free_port()
    serve = [sys.executable, "-m", "paddle_canary.cli", "serve", "--model", args.model,
             "--version", args.version, "--port", str(port), "--device", "cpu"]
    if args.registry:
        serve += ["--registry", args.registry]
    results["serve"] = run_server(serve, work / "serve.log",
                                  f"http://127.0.0.1:{port}/deep_health", lua,
                                  f"http://127.0.0.1:{port}/predict", args)
    # The echo route answers any path; check that the served answers were all 200.
    print(f"wrk -t2 -c{args.connections} -d{args.duration}s, POST one reference row "
          f"({len(body)} bytes), {args.model} {args.version}")
    print(f"{'':22}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, label in (("echo", "bare uvicorn echo"), ("serve", "paddle-canary serve")):
        r = results[name]
        print(f"{label:22}{r['rps']:10.0f}{r['p50_ms']:9.2f}{r['p95_ms']:9.2f}"
              f"{r['p99_ms']:9.2f}{r['non_2xx'] + r['socket_errors']:9d}")
    ratio = results["serve"]["rps"] / results["echo"]["rps"]
    print(f"throughput ratio serve/echo: {ratio:.2f} (goal >= 0.70)")

    print("\npredictor alone, 1 math thread, median of 7 x 2000 calls (µs per call)")
    print(f"{'':14}{'batch 1':>10}{'batch 16':>10}")
    for mkldnn in (False, True):
        b1, b16 = predictor_us(card, mkldnn, 1), predictor_us(card, mkldnn, 16)
        print(f"{'oneDNN ' + ('on' if mkldnn else 'off'):14}{b1:10.1f}{b16:10.1f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
