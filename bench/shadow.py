"""Shadow scoring's cost per request: `paddle-canary serve v2` against the same with
`--shadow v1`, in the same run.

    .venv/bin/python bench/shadow.py [--duration 10 --rounds 3 --rate 300]

Two real serving processes of risk-score v2 (Paddle Inference, CPU, 1 math thread), one with
the stable v1 loaded as its shadow. The same loads hit both in alternating rounds (so load
from elsewhere on the shared machine hits both):

* saturated: wrk, 2 threads, 16 connections, one reference row per request: req/s, client
  latency, and each server's CPU time per request (the steadiest figure here); the shadow's
  cost is the difference;
* paced: the load generator at ``--rate`` requests/s (reference rows, 8 connections): client
  latency, and the P95 of the server's own latency histogram (what the latency gate sees).

Also read from the shadowed server's /metrics: the shadow's own inference time per paired row
and the requests it skipped. Prints tables; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
from serving import LUA, measure, median_of, ready, wrk

from paddle_canary import telemetry
from paddle_canary.loadgen.runner import run_load
from paddle_canary.process import free_port, spawn, stop_pid, wait_until
from paddle_canary.registry import Registry
from paddle_canary.runtime.local import serve_argv

REPO = Path(__file__).resolve().parents[1]
MODEL = "risk-score"


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def total(m: dict, name: str, **labels) -> float:
    return sum(v for k, v in m.items() if k.startswith(name + "{")
               and all(f'{a}="{b}"' in k for a, b in labels.items()))


def histogram_p95(before: dict, after: dict) -> float:
    """P95 (ms) of the server's latency histogram over what happened between two scrapes."""
    from paddle_canary.analysis import stats

    name = telemetry.REQUEST_LATENCY + "_bucket"
    cum = [total(after, name, le=le) - total(before, name, le=le)
           for le in [*(f"{e:g}" for e in telemetry.LATENCY_BUCKETS), "+Inf"]]
    counts = np.diff(np.concatenate([[0.0], cum]))
    return stats.quantile(counts, telemetry.LATENCY_BUCKETS, 0.95) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rate", type=float, default=300.0, help="paced requests/s")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    registry = REPO / "model_registry"
    card = Registry(registry).card(MODEL, "v2")
    reference = card.reference_inputs()
    body = json.dumps({"user_id": "bench-user-1", "features": [float(v) for v in reference[0]]})
    work = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    lua = work / "post.lua"
    lua.write_text(LUA.format(body=json.dumps(body)))

    servers: dict[str, tuple] = {}
    for name, extra in (("v2", []), ("v2 --shadow v1", ["--shadow", "v1"])):
        port = free_port()
        servers[name] = (serve_argv(MODEL, "v2", port, registry) + extra,
                         f"http://127.0.0.1:{port}")
    procs = {}
    sat: dict[str, list[dict]] = {n: [] for n in servers}
    paced: dict[str, list[dict]] = {n: [] for n in servers}
    load_before = os.getloadavg()[0]
    try:
        for name, (argv, url) in servers.items():
            procs[name] = spawn(argv, work / f"{name.replace(' ', '_')}.log")
            wait_until(lambda: procs[name].poll() is None and ready(f"{url}/deep_health"), 60,
                       what=f"{name} ready")
        for name, (_, url) in servers.items():
            wrk(f"{url}/predict", lua, 2, args.connections)  # warm-up
        for _ in range(args.rounds):
            for name, (_, url) in servers.items():
                sat[name].append(measure(procs[name].pid, f"{url}/predict", lua, args))
            for name, (_, url) in servers.items():
                before = metrics(url)
                s = run_load(f"{url}/predict", users=1000, duration_s=args.duration,
                             rate=args.rate, concurrency=8, reference=reference, seed=3)
                after = metrics(url)
                paced[name].append({"p50_ms": s.latency_ms["p50"], "p99_ms": s.latency_ms["p99"],
                                    "server_p95_ms": histogram_p95(before, after),
                                    "rps": s.throughput_rps, "failed": float(s.failures)})
        shadowed = metrics(servers["v2 --shadow v1"][1])
    finally:
        for proc in procs.values():
            stop_pid(proc.pid)
    lab = {"model": MODEL, "version": "v2", telemetry.SHADOW_LABEL: "v1"}
    rows = total(shadowed, telemetry.PAIRED_ROWS, **lab)
    shadow_s = total(shadowed, telemetry.SHADOW_SECONDS, **lab)
    skipped = {r: total(shadowed, telemetry.SHADOW_SKIPPED, reason=r, **lab)
               for r in telemetry.SKIP_REASONS}
    requests = total(shadowed, telemetry.REQUESTS, outcome="ok", model=MODEL, version="v2")
    sat_m = {n: median_of(r) for n, r in sat.items()}
    paced_m = {n: median_of(r) for n, r in paced.items()}

    print(f"risk-score v2, CPU, 1 math thread; {args.rounds} alternating rounds x "
          f"{args.duration} s, medians; load average {load_before:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"\nsaturated (wrk -t2 -c{args.connections}, one row per request)")
    print(f"{'':18}{'req/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
          f"{'server CPU µs/req':>19}{'failed':>8}")
    for name, r in sat_m.items():
        print(f"{name:18}{r['rps']:9.0f}{r['p50_ms']:8.2f}{r['p95_ms']:8.2f}{r['p99_ms']:8.2f}"
              f"{r['cpu_us_per_req']:19.1f}{int(r['failed']):8d}")
    base, shad = sat_m["v2"], sat_m["v2 --shadow v1"]
    print(f"shadow: +{shad['cpu_us_per_req'] - base['cpu_us_per_req']:.1f} µs CPU per request "
          f"(+{shad['cpu_us_per_req'] / base['cpu_us_per_req'] - 1:.0%}); throughput "
          f"{shad['rps'] / base['rps']:.2f}x")
    print("per round req/s: " + "   ".join(
        f"{n}: " + " ".join(f"{r['rps']:.0f}" for r in runs) for n, runs in sat.items()))
    print(f"\npaced ({args.rate:g} requests/s, 8 connections)")
    print(f"{'':18}{'client p50 ms':>14}{'client p99 ms':>14}{'server P95 ms':>14}"
          f"{'req/s':>8}{'failed':>8}")
    for name, r in paced_m.items():
        print(f"{name:18}{r['p50_ms']:14.2f}{r['p99_ms']:14.2f}{r['server_p95_ms']:14.2f}"
              f"{r['rps']:8.0f}{int(r['failed']):8d}")
    print(f"\nshadowed server over the whole run: {requests:.0f} requests answered, {rows:.0f} "
          f"paired rows, shadow inference {shadow_s / max(rows, 1) * 1e6:.1f} µs per row "
          f"(Paddle calls, micro-batched), skipped {json.dumps(skipped)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
