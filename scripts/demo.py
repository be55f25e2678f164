#!/usr/bin/env python
"""The demo: two compressed canary releases through the real local stack.

1. Starts Prometheus, the stable version (risk-score v1), the nginx gateway, Airflow (api-server,
   scheduler, dag-processor, triggerer) and a load generator of synthetic users.
2. Releases the good retrain v2 through the ``model_release`` DAG: steps advance, approvals are
   answered over the REST API (the Required Actions page of each is printed), v2 is promoted
   and v1 torn down.
3. Releases a broken candidate whose fault only live traffic shows (bad-slow: same scores,
   25 ms per call), which the latency gate catches; traffic goes back to stable and the
   registry records why.
4. Prints a summary, leaves the reports, and stops everything it started.

Compressed timing: seconds per step instead of an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

import logging  # noqa: E402

from paddle_canary import process  # noqa: E402
from paddle_canary.localstack import driver  # noqa: E402
from paddle_canary.localstack.stack import LocalStack, StackPorts  # noqa: E402

logging.getLogger("httpx").setLevel(logging.WARNING)

MODEL = "risk-score"
BROKEN = "bad-slow"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def release_request(version: str, args) -> dict:
    return {"model": MODEL, "version": version, "steps": [5, 25, 50, 100],
            "step_interval_s": args.step_s, "poll_interval_s": 2, "approvals_before": [50, 100],
            "teardown_delay_s": args.teardown_s, "max_extensions": 0,
            "gates": {"min_samples": args.min_samples}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=str(REPO / "var" / "demo"))
    ap.add_argument("--step-s", type=float, default=20.0, help="seconds per step")
    ap.add_argument("--teardown-s", type=float, default=5.0)
    ap.add_argument("--min-samples", type=int, default=60)
    ap.add_argument("--rate", type=float, default=100.0, help="synthetic requests per second")
    ap.add_argument("--keep-running", action="store_true", help="leave the stack up at the end")
    args = ap.parse_args()

    home = Path(args.home)
    if (home / "stack.json").exists():
        LocalStack.attach(home).down()
    shutil.rmtree(home, ignore_errors=True)
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    stack = LocalStack(home, model=MODEL, ports=ports, load_rate=args.rate)
    t0 = time.monotonic()
    results = []
    try:
        reg = stack.prepare_registry()
        reg.register(MODEL, BROKEN, REPO / "fixtures" / "broken_models" / MODEL / BROKEN)
        log(f"starting the stack in {home} (Airflow, Prometheus, nginx, {MODEL} v1, load)")
        stack.up()
        os.environ.update(stack.env())
        from paddle_canary.airflow_rest import AirflowClient
        client = AirflowClient.from_env()
        process.wait_until(lambda: client.dag_exists(), 120, interval=1,
                           what="model_release DAG parsed by Airflow")
        client.unpause()
        log(f"Airflow UI: {client.url}  (login admin / {stack.airflow.password()})")
        for version in ("v2", BROKEN):
            log(f"release {MODEL} {version}: triggering model_release over REST")
            run_id = client.trigger(release_request(version, args))
            run = driver.drive(client, run_id, home, MODEL, timeout=600, log=log)
            summary = driver.summary(home, MODEL, run_id, run["state"])
            results.append(summary)
            log(f"  -> {summary['outcome']}: {json.dumps(summary)}")
            if version == "v2":
                process.wait_until(lambda: client.run(run_id)["state"] in ("success", "failed"),
                                   120, interval=1, what="teardown of v1")
        stack.stop_load()
    finally:
        if not args.keep_running:
            log("stopping everything the demo started")
            stack.down()
    print()
    print("=" * 78)
    print(f"{'candidate':<10} {'outcome':<12} {'steps reached':<18} {'fault->0 %':>10}  reason")
    for r in results:
        steps = ",".join(str(w) for w in r["steps_reached"])
        t = f"{r['traffic_to_weight0_s']:.1f} s" if r["traffic_to_weight0_s"] else "-"
        print(f"{r['candidate']:<10} {r['outcome'] or '?':<12} {steps:<18} {t:>10}  "
              f"{(r['reason'] or '')[:60]}")
    for r in results:
        print(f"report: {r['report']}")
    print(f"demo took {time.monotonic() - t0:.0f} s")
    ok = [r["outcome"] for r in results] == ["promoted", "rolled_back"]
    print("DEMO OK" if ok else "DEMO FAILED: expected v2 promoted and bad-slow rolled back")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
