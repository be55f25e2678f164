#!/usr/bin/env python
"""The demo: three compressed canary releases of two models through the real local stack.

1. Starts Prometheus, every model's stable version (risk-score v1, digit-seven v1), the nginx
   gateway, Airflow (api-server, scheduler, dag-processor, triggerer) and a load generator of
   synthetic users of both models.
2. Releases the good retrains risk-score v2 and digit-seven v2 at the same time through the
   ``model_release`` DAG (two runs, each holding its own model's lock): steps advance, approvals
   are answered over the REST API (the Required Actions page of each is printed), both are
   promoted and their v1 torn down.
3. Releases a broken risk-score candidate whose fault only live traffic shows (bad-slow: same
   scores, 25 ms per call), which the latency gate catches; traffic goes back to stable and the
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
OTHER = "digit-seven"
BROKEN = "bad-slow"
#: (model, candidate) released together, then alone; and the outcome each should have
TOGETHER = [(MODEL, "v2"), (OTHER, "v2")]
ALONE = (MODEL, BROKEN)
EXPECTED = {(MODEL, "v2"): "promoted", (OTHER, "v2"): "promoted", ALONE: "rolled_back"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def release_request(model: str, version: str, args) -> dict:
    return {"model": model, "version": version, "steps": [5, 25, 50, 100],
            "step_interval_s": args.step_s, "poll_interval_s": 2, "approvals_before": [50, 100],
            "teardown_delay_s": args.teardown_s, "max_extensions": 0,
            "shadow_s": args.shadow_s, "gates": {"min_samples": args.min_samples}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=str(REPO / "var" / "demo"))
    ap.add_argument("--step-s", type=float, default=20.0, help="seconds per step")
    ap.add_argument("--teardown-s", type=float, default=5.0)
    ap.add_argument("--shadow-s", type=float, default=45.0,
                    help="the shadow phase: stable's requests mirrored to the candidate, judged "
                         "before any user is routed to it; its rows count in every step")
    ap.add_argument("--min-samples", type=int, default=60)
    ap.add_argument("--rate", type=float, default=100.0,
                    help=f"synthetic requests per second to {MODEL} (half that to {OTHER})")
    ap.add_argument("--keep-running", action="store_true", help="leave the stack up at the end")
    args = ap.parse_args()

    home = Path(args.home)
    if (home / "stack.json").exists():
        LocalStack.attach(home).down()
    shutil.rmtree(home, ignore_errors=True)
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    stack = LocalStack(home, model=MODEL, ports=ports, load_rate=args.rate,
                       load_rates={OTHER: args.rate / 2})
    t0 = time.monotonic()
    results = []
    try:
        reg = stack.prepare_registry()
        reg.register(MODEL, BROKEN, REPO / "fixtures" / "broken_models" / MODEL / BROKEN)
        log(f"starting the stack in {home} (Airflow, Prometheus, nginx, {MODEL} v1, "
            f"{OTHER} v1, load)")
        stack.up()
        os.environ.update(stack.env())
        from paddle_canary.airflow_rest import AirflowClient
        client = AirflowClient.from_env(timeout=30)
        process.wait_until(lambda: client.dag_exists(), 120, interval=1,
                           what="model_release DAG parsed by Airflow")
        client.unpause()
        log(f"Airflow UI: {client.url}  (login admin / {stack.airflow.password()})")
        results += release_together(client, home, TOGETHER, args)
        results += release_together(client, home, [ALONE], args)
        stack.stop_load()
    finally:
        if not args.keep_running:
            log("stopping everything the demo started")
            stack.down()
    print()
    print("=" * 78)
    print("\n".join(driver.summary_table(results)))
    print(f"demo took {time.monotonic() - t0:.0f} s")
    got = {(r["model"], r.get("candidate")): r.get("outcome") for r in results}
    # bad-slow must be rolled back for the fault it has, not for anything else going wrong
    ok = got == EXPECTED and all((r.get("reason") or "").startswith("latency_p95 fail")
                                 for r in results if r.get("candidate") == BROKEN)
    print("DEMO OK" if ok else f"DEMO FAILED: expected {EXPECTED}, got {got}")
    return 0 if ok else 1


def release_together(client, home: Path, releases: list[tuple[str, str]], args) -> list[dict]:
    """Trigger every (model, version) at once, follow each run in its own thread (answering its
    approvals), wait for all; the summaries in the order given."""
    import threading

    from paddle_canary.airflow_rest import AirflowClient

    results: dict[tuple[str, str], dict] = {}

    def follow(model: str, version: str, run_id: str) -> None:
        own = AirflowClient.from_env(timeout=30)  # one client per thread
        try:
            run = driver.drive(own, run_id, home, model, timeout=600,
                               log=lambda m: log(f"[{model} {version}] {m.strip()}"))
            summary = driver.summary(home, model, run_id, run["state"])
            if summary["outcome"] == "promoted":  # the old version is torn down a bit later
                process.wait_until(lambda: own.run(run_id)["state"] in ("success", "failed"),
                                   120, interval=1, what=f"teardown of {model}'s old version")
            log(f"[{model} {version}] -> {summary['outcome']}: {json.dumps(summary)}")
        except Exception as exc:  # noqa: BLE001 - shown in the summary, the demo fails
            summary = {"outcome": None, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            own.close()
        results[(model, version)] = {"model": model, "candidate": version, **summary}

    threads = []
    for model, version in releases:
        log(f"release {model} {version}: triggering model_release over REST")
        run_id = client.trigger(release_request(model, version, args))
        threads.append(threading.Thread(target=follow, args=(model, version, run_id),
                                        name=f"drive-{model}", daemon=True))
        threads[-1].start()
    for t in threads:
        t.join()
    return [results[r] for r in releases]


if __name__ == "__main__":
    sys.exit(main())
