"""Image figures: a second version's build vs the first on the same base, and /predict through a
container's published port vs the same server as a local process.

    .venv/bin/python bench/images.py [--rounds 2] [--duration 10] [--storage-driver auto]

Builds: each round starts a fresh dockerd (our own, empty data root), imports the cached base
(made once with debootstrap), builds risk-score v1 (the first version: every layer) and then v2
(the second: the dependency layers come from v1's build). The wheelhouse is cached on disk and
made before the first round. Goal: the second under 10 % of the first.

Throughput: v1 in a container (DockerRuntime, 1 math thread, CPU) and v1 as a local
`paddle-canary serve` process (ServeProcess, the same settings), wrk -t2 -c16 with one reference
row per request, alternating rounds so that load from elsewhere hits both; medians. The
container is reached through its published port (docker-proxy, DockerRuntime's default) and, as
a third row, on its bridge address (``DockerRuntime(address="bridge")``). Goal: published port
>= 0.9x the local process. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from serving import LUA, wrk  # bench/serving.py: the same wrk script and parsing

from paddle_canary.images.base import ensure_base
from paddle_canary.images.build import build_serving_image
from paddle_canary.images.paths import source_root
from paddle_canary.images.wheelhouse import wheelhouse
from paddle_canary.localstack.dockerd import Dockerd
from paddle_canary.registry import Registry
from paddle_canary.runtime.docker import DockerRuntime
from paddle_canary.runtime.local import ServeProcess

MODEL = "risk-score"


def build_round(home: Path, driver: str, keep: bool) -> tuple[dict, Dockerd]:
    engine = Dockerd(home, storage_driver=driver).start()
    client = engine.client(timeout=1800)
    try:
        t0 = time.monotonic()
        base = ensure_base(client, log=lambda line: None)
        t_base = time.monotonic() - t0
        first = build_serving_image(None, MODEL, "v1", base=base.tag, client=client, push=False,
                                    log=lambda line: None)
        second = build_serving_image(None, MODEL, "v2", base=base.tag, client=client,
                                     push=False, log=lambda line: None)
        size = client.images.get(first.tag).attrs["Size"]
    finally:
        client.close()
        if not keep:
            engine.wipe()
    return ({"driver": engine.storage_driver, "import_s": t_base, "first_s": first.build_s,
             "second_s": second.build_s, "image_mb": size / 1e6}, engine)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="build rounds (a fresh engine each)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--wrk-rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--storage-driver", default="auto", choices=("auto", "overlay2", "vfs"))
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-images-", dir=source_root() / "var"))
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    wheelhouse("image", log=lambda line: None)
    t_wheels = time.monotonic() - t0

    builds, engine = [], None
    try:
        for i in range(args.rounds):
            result, engine = build_round(work / f"engine{i}", args.storage_driver,
                                         keep=i == args.rounds - 1)
            builds.append(result)
            shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
            print(f"build round {i + 1}: {json.dumps(shown)}", flush=True)
        runs = throughput(engine, work, args)
    finally:
        if engine is not None:
            engine.wipe()
        shutil.rmtree(work, ignore_errors=True)

    first = statistics.median(b["first_s"] for b in builds)
    second = statistics.median(b["second_s"] for b in builds)
    print(f"\nbuilds: {args.rounds} rounds on a fresh engine each ({builds[0]['driver']}), "
          f"medians; wheelhouse ready in {t_wheels:.1f}s (cached: ~0 s); load average "
          f"{load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  base import {statistics.median(b['import_s'] for b in builds):6.1f} s")
    print(f"  first (v1)  {first:6.1f} s   per round: "
          + " ".join(f"{b['first_s']:.1f}" for b in builds))
    print(f"  second (v2) {second:6.1f} s   per round: "
          + " ".join(f"{b['second_s']:.1f}" for b in builds))
    print(f"  second/first {second / first:.3f} (goal < 0.10); "
          f"image {builds[0]['image_mb']:.0f} MB")

    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for name, rs in runs.items()}
    print(f"\n/predict, wrk -t2 -c{args.connections} -d{args.duration}s x {args.wrk_rounds} "
          f"alternating rounds (medians), {MODEL} v1, 1 math thread, CPU")
    print(f"{'':34}{'req/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'failed':>8}")
    labels = {"local": "local process (baseline)", "published": "container, published port",
              "bridge": "container, bridge address"}
    for name, label in labels.items():
        r = med[name]
        print(f"{label:34}{r['rps']:9.0f}{r['p50_ms']:8.2f}{r['p95_ms']:8.2f}{r['p99_ms']:8.2f}"
              f"{int(r['failed']):8d}")
    print(f"published/local {med['published']['rps'] / med['local']['rps']:.2f} (goal >= 0.90); "
          f"bridge/local {med['bridge']['rps'] / med['local']['rps']:.2f}")
    for name in labels:
        print(f"  per round req/s {name}: " + " ".join(f"{r['rps']:.0f}" for r in runs[name]))
    return 0


def throughput(engine: Dockerd, work: Path, args) -> dict[str, list[dict]]:
    card = Registry().card(MODEL, "v1")
    body = json.dumps({"user_id": "bench-user-1",
                       "features": [float(v) for v in card.reference_inputs()[0]]})
    lua = work / "post.lua"
    lua.write_text(LUA.format(body=json.dumps(body)))
    client = engine.client()
    runtime = DockerRuntime(client=client, network=engine.network, namespace="bench", threads=1)
    local = None
    try:
        endpoint = runtime.deploy(MODEL, "v1")
        bridge = DockerRuntime(client=client, network=engine.network, namespace="bench",
                               address="bridge").endpoint(MODEL, "v1")  # the same container
        local = ServeProcess(MODEL, "v1", work / "logs", threads=1).wait_ready(
            path="/deep_health")
        urls = {"local": f"{local.url}/predict", "published": f"{endpoint.url}/predict",
                "bridge": f"{bridge.url}/predict"}
        for url in urls.values():
            wrk(url, lua, 2, args.connections)  # warm-up
        runs: dict[str, list[dict]] = {name: [] for name in urls}
        for _ in range(args.wrk_rounds):
            for name, url in urls.items():
                runs[name].append(wrk(url, lua, args.duration, args.connections))
        return runs
    finally:
        if local is not None:
            local.stop()
        runtime.remove(MODEL, "v1")
        client.close()


if __name__ == "__main__":
    sys.exit(main())
