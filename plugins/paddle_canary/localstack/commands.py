"""``paddle-canary stack up|down|status``: the one-machine stack for people (``make up``)."""

from __future__ import annotations

import json
from pathlib import Path

from paddle_canary.settings import REPO

DEFAULT_HOME = REPO / "var" / "stack"


def add_commands(sub) -> None:
    p = sub.add_parser("stack", help="start, stop or show the local stack (Airflow, nginx, "
                                     "Prometheus, the stable version, synthetic users)")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--home", type=Path, default=DEFAULT_HOME,
                   help=f"state directory (default {DEFAULT_HOME})")
    p.add_argument("--no-load", action="store_true", help="up: no synthetic users")
    p.add_argument("--rate", type=float, default=20.0, help="up: synthetic requests per second")
    p.set_defaults(func=cmd_stack)


def cmd_stack(args) -> int:
    from paddle_canary.localstack.stack import LocalStack
    if args.action == "up":
        stack = (LocalStack.attach(args.home) if (args.home / "stack.json").exists()
                 else LocalStack(args.home, load_rate=args.rate))
        stack.up(load=not args.no_load)
        env = stack.env()
        print(f"Airflow UI   {stack.airflow.url}   login admin / {env['PADDLE_CANARY_AIRFLOW_PASSWORD']}")
        print(f"gateway      {stack.gateway_url}/predict   (header X-User-ID)")
        print(f"Prometheus   {stack.paths.prometheus_url}")
        print("to drive it from a shell:")
        for key, value in env.items():
            print(f"  export {key}={value}")
        return 0
    if not (args.home / "stack.json").exists():
        print(f"no stack in {args.home}")
        return 0
    stack = LocalStack.attach(args.home)
    if args.action == "down":
        stack.down()
        print(f"stopped the stack in {args.home}")
    else:
        state = json.loads((args.home / "stack.json").read_text())
        state["airflow_components_running"] = stack.airflow.running()
        state["versions_running"] = [f"{e.model} {e.version} {e.url}"
                                     for e in stack.runtime().endpoints()]
        print(json.dumps(state, indent=2))
    return 0
