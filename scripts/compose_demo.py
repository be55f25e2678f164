#!/usr/bin/env python
"""`make compose-demo`: the releases of `make demo`, on the docker-compose stack.

1. Brings the stack up on free ports under its own project (Airflow on PostgreSQL, the nginx
   gateway, Prometheus, risk-score v1 as the `stable` container), with a working copy of the
   model registry in `var/compose-demo` that also holds the broken candidate bad-slow; builds
   the serving images of v2 and bad-slow on this host first (the Airflow image has no source
   checkout: its build_image uses an image of the very same model files).
2. Sends synthetic users to the gateway from this host (`paddle-canary loadgen`).
3. Releases risk-score v2 through `model_release` over the REST API (a shadow phase, then
   5/25/50/100 % steps; approvals answered over REST): the candidate runs as a container on
   the compose network, the nginx container moves the weight, the judge reads the Prometheus
   container; v2 is promoted and the v1 container removed after the teardown delay.
4. Releases bad-slow (25 ms per row): the latency gate fails it; traffic stays on v2.
5. Copies each release's journal and report out of the stack's volume into
   `var/compose-demo/`, prints a summary, and takes the stack down (unless --keep-running),
   and stops the dockerd it started, if it started one (images stay in `var/dockerd`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

import logging  # noqa: E402

from paddle_canary import process  # noqa: E402
from paddle_canary.localstack.private import (PRIVATE_UMASK, private_dir,  # noqa: E402
                                              write_private)

logging.getLogger("httpx").setLevel(logging.WARNING)

MODEL = "risk-score"
RELEASES = [("v2", "promoted"), ("bad-slow", "rolled_back")]
#: what the rollback must be for: the fault only live traffic shows, not a deploy problem
EXPECTED_REASON = {"bad-slow": "latency_p95 fail"}
STATE = "/srv/paddle-canary"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def registry_copy(home: Path) -> Path:
    """The repository's registry and bad-slow, writable by the containers' uid 50000."""
    from paddle_canary.registry import Registry

    registry = home / "model_registry"
    shutil.copytree(REPO / "model_registry", registry)
    Registry(registry).register(MODEL, "bad-slow",
                                REPO / "fixtures" / "broken_models" / MODEL / "bad-slow")
    for path in [registry, *registry.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    return registry


def copy_out(container, path: str, dest: Path) -> Path | None:
    """One file of the stack's state volume, through the Docker API (None when missing)."""
    from docker.errors import NotFound

    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.getmembers()[0]
        data = tar.extractfile(member).read()
    private_dir(dest.parent)
    write_private(dest, data.decode("utf-8"))
    return dest


def release(client, scheduler, home: Path, version: str, args) -> dict:
    from paddle_canary.localstack import driver

    conf = {"model": MODEL, "version": version, "steps": [5, 25, 50, 100],
            "step_interval_s": args.step_s, "poll_interval_s": 2,
            "approvals_before": [50, 100], "teardown_delay_s": args.teardown_s,
            "max_extensions": 0, "shadow_s": args.shadow_s,
            "gates": {"min_samples": args.min_samples}}
    log(f"release {MODEL} {version}: triggering model_release over REST")
    run_id = client.trigger(conf)
    run = driver.drive(client, run_id, home, MODEL, timeout=900,
                       log=lambda m: log(f"[{version}] {m.strip()}"))
    journal = f"releases/{MODEL}/{run_id}.jsonl"
    copy_out(scheduler, f"{STATE}/{journal}", home / journal)
    summary = driver.summary(home, MODEL, run_id, run["state"])
    if summary["outcome"] == "promoted":   # the old version goes a little later
        process.wait_until(lambda: client.run(run_id)["state"] in ("success", "failed"), 180,
                           interval=1, what="teardown of the old version")
    report = f"reports/{MODEL}/{run_id}.html"
    copied = copy_out(scheduler, f"{STATE}/{report}", home / report)
    summary["report"] = str(copied) if copied else None
    log(f"[{version}] -> {summary['outcome']}: {json.dumps(summary)}")
    return {"model": MODEL, "candidate": version, **summary}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=str(REPO / "var" / "compose-demo"))
    ap.add_argument("--project", default="paddle-canary-demo")
    ap.add_argument("--step-s", type=float, default=20.0)
    ap.add_argument("--shadow-s", type=float, default=45.0)
    ap.add_argument("--teardown-s", type=float, default=5.0)
    ap.add_argument("--min-samples", type=int, default=60)
    ap.add_argument("--rate", type=float, default=50.0, help="synthetic requests per second")
    ap.add_argument("--keep-running", action="store_true")
    args = ap.parse_args()

    from paddle_canary.airflow_rest import AirflowClient
    from paddle_canary.compose.__main__ import engine_url
    from paddle_canary.compose.env import write_env
    from paddle_canary.compose.images import ensure_images
    from paddle_canary.images.base import ensure_base
    from paddle_canary.compose.stack import ComposeStack
    from paddle_canary.images.build import build_serving_image
    from paddle_canary.images.engine import docker_client
    from paddle_canary.localstack import driver

    home = Path(args.home)
    ours = None   # our own dockerd, when this demo is the one that starts it
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").is_socket():
        from paddle_canary.images.commands import dockerd_home
        from paddle_canary.localstack.dockerd import Dockerd
        ours = None if Dockerd(dockerd_home()).running else Dockerd(dockerd_home())
    url = engine_url(start=True)
    os.environ["DOCKER_HOST"] = url
    env_file = home / ".env"
    network = f"{args.project}-net"
    if env_file.exists():   # a previous run left its stack: take it down first
        ComposeStack(project=args.project, env_file=env_file.resolve(), docker_url=url,
                     overrides={"COMPOSE_NETWORK": network}).down()
    shutil.rmtree(home, ignore_errors=True)
    private_dir(home)   # .env, journals, reports: this user's alone
    t0 = time.monotonic()
    registry = registry_copy(home)
    engine = docker_client(url, timeout=3600)
    log("images: the stack's, then the serving images of v1, v2 and bad-slow (built here)")
    built = ensure_images(engine, stable=(MODEL, "v1"), registry_root=registry,
                          log=lambda line: None)
    base = ensure_base(engine, log=lambda line: None).tag   # what stable's image was built on
    for version in ("v2", "bad-slow"):
        build_serving_image(registry, MODEL, version, base=base, client=engine, push=False,
                            log=lambda line: None)
    ports = {"AIRFLOW_PORT": process.free_port(), "GATEWAY_PORT": process.free_port(),
             "PROMETHEUS_PORT": process.free_port()}
    values = write_env(env_file, url)
    stack = ComposeStack(project=args.project, env_file=env_file.resolve(), docker_url=url,
                         overrides={**{k: str(v) for k, v in ports.items()},
                                    "COMPOSE_NETWORK": network,
                                    "STABLE_IMAGE": built["stable"].tag,
                                    "PADDLE_CANARY_REGISTRY_DIR": str(registry)})
    results: list[dict] = []
    load = None
    try:
        log(f"docker-compose up (project {args.project})")
        stack.up(log=lambda line: None)
        gateway = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
        load = process.spawn([sys.executable, "-m", "paddle_canary.cli", "loadgen", "--gateway",
                              gateway, "--model", f"{MODEL}:{args.rate}", "--duration", "3600",
                              "--users", "5000", "--concurrency", "4", "--timeout", "5",
                              "--registry", str(registry)], home / "loadgen.log",
                             umask=PRIVATE_UMASK)
        client = AirflowClient(f"http://127.0.0.1:{ports['AIRFLOW_PORT']}", "admin",
                               values["AIRFLOW_ADMIN_PASSWORD"], timeout=30)
        process.wait_until(client.dag_exists, 180, interval=2, what="model_release parsed")
        client.unpause()
        log(f"Airflow UI: {client.url} (admin / AIRFLOW_ADMIN_PASSWORD in {env_file})")
        scheduler = stack.containers(engine)["airflow-scheduler"]
        for version, _ in RELEASES:
            results.append(release(client, scheduler, home, version, args))
    finally:
        if load is not None:
            process.stop_pid(load.pid, timeout=15)
        if not args.keep_running:
            log("docker-compose down -v (and the release's containers)")
            stack.down()
            if ours is not None:
                log(f"stopping the dockerd this demo started ({ours.home})")
                ours.stop()
    print()
    print("\n".join(driver.summary_table(results)))
    print(f"compose demo took {time.monotonic() - t0:.0f} s")
    got = [(r["candidate"], r.get("outcome")) for r in results]
    ok = got == RELEASES and all(
        (r.get("reason") or "").startswith(EXPECTED_REASON[r["candidate"]])
        for r in results if r["candidate"] in EXPECTED_REASON)
    print("COMPOSE DEMO OK" if ok else f"COMPOSE DEMO FAILED: expected {RELEASES}, got {got}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
