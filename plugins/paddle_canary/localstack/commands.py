"""``paddle-canary stack up|down|status|password``: the one-machine stack for people
(``make up``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from paddle_canary import process
from paddle_canary.errors import UserError
from paddle_canary.settings import REPO

DEFAULT_HOME = REPO / "var" / "stack"
SECRET_KEYS = ("PADDLE_CANARY_AIRFLOW_PASSWORD",)


def add_commands(sub) -> None:
    p = sub.add_parser("stack", help="start, stop or show the local stack (Airflow, nginx, "
                                     "Prometheus, the stable version, synthetic users)")
    p.add_argument("action", choices=("up", "down", "status", "password"),
                   help="password: print the Airflow admin password (kept in a 0600 file)")
    p.add_argument("--home", type=Path, default=DEFAULT_HOME,
                   help=f"state directory (default {DEFAULT_HOME})")
    p.add_argument("--no-load", action="store_true", help="up: no synthetic users")
    p.add_argument("--rate", type=float, default=20.0, help="up: synthetic requests per second")
    p.set_defaults(func=cmd_stack)


def summary(stack) -> list[str]:
    """What ``stack up`` prints: where each part answers and how to drive it from a shell.
    Never the password: only where it is kept and the command that prints it."""
    lines = [
        f"Airflow UI   {stack.airflow.url}   login {stack.airflow.username}, password in "
        f"{stack.airflow.passwords_file} (paddle-canary stack password --home {stack.home})",
        f"gateway      {stack.gateway_url}/predict   (header X-User-ID)",
        f"Prometheus   {stack.paths.prometheus_url}",
        "to drive it from a shell (the CLI reads the password file itself):",
    ]
    lines += [f"  export {key}={value}" for key, value in stack.env().items()
              if key not in SECRET_KEYS]
    return lines


def cmd_stack(args) -> int:
    from paddle_canary.localstack.private import PRIVATE_UMASK, private_dir
    from paddle_canary.localstack.stack import LocalStack
    os.umask(PRIVATE_UMASK)  # every file and directory the stack makes is this user's only
    if args.action == "up":
        private_dir(args.home)
        stack = (LocalStack.attach(args.home) if (args.home / "stack.json").exists()
                 else LocalStack(args.home, load_rate=args.rate))
        stack.up(load=not args.no_load)
        print("\n".join(summary(stack)))
        return 0
    if args.action == "password":
        airflow = LocalStack(args.home).airflow
        if not airflow.passwords_file.is_file():
            raise UserError(f"no Airflow password in {args.home} (start the stack: make up)")
        print(airflow.password())
        return 0
    if not (args.home / "stack.json").exists():
        print(f"no stack in {args.home}")
        return 0
    stack = LocalStack.attach(args.home)
    if args.action == "down":
        try:
            stack.down()
        finally:  # whatever down() missed or could not stop: every process marked as the home's
            left = process.stop_marked(args.home)
        if left:
            print(f"stopped {len(left)} more processes of the stack: {left}")
        print(f"stopped the stack in {args.home}")
    else:
        state = json.loads((args.home / "stack.json").read_text())
        state["airflow_components_running"] = stack.airflow.running()
        state["versions_running"] = [f"{e.model} {e.version} {e.url}"
                                     for e in stack.runtime().endpoints()]
        print(json.dumps(state, indent=2))
    return 0
