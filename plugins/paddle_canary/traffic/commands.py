"""``paddle-canary gateway``: the local nginx canary gateway, for people.

    paddle-canary gateway --port P --model M --stable URL [--candidate URL] [--weight W]
                                             run one in the foreground for model M
    paddle-canary gateway set-weight MODEL W change a model's live weight
    paddle-canary gateway status             live routes, health, request counts by route
    paddle-canary gateway stop               stop a gateway started elsewhere

All forms take ``--workdir DIR`` (default ``$PADDLE_CANARY_GATEWAY_DIR`` or ``var/gateway``).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from paddle_canary.errors import UserError
from paddle_canary.traffic.base import Backend, ModelRoute
from paddle_canary.traffic.nginx import NginxRouter

ENV_WORKDIR = "PADDLE_CANARY_GATEWAY_DIR"


def default_workdir() -> Path:
    return Path(os.environ.get(ENV_WORKDIR, "var/gateway"))


def _weight_arg(text: str) -> int:
    # Only plain integers: "5.5", "5%" or "" are refused (check_weight refuses the rest).
    if not text.strip().lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"weight must be an integer percentage 0..100, got {text!r}")
    return int(text)


def add_commands(subparsers) -> None:
    help_workdir = f"gateway directory (default ${ENV_WORKDIR} or var/gateway)"
    # The actions' --workdir must not overwrite one given before the action: SUPPRESS.
    workdir = argparse.ArgumentParser(add_help=False)
    workdir.add_argument("--workdir", type=Path, default=argparse.SUPPRESS, help=help_workdir)

    p = subparsers.add_parser(
        "gateway", help="run or drive the local nginx canary gateway",
        description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=None, help=help_workdir)
    p.add_argument("--port", type=int, help="port for user traffic on 127.0.0.1")
    p.add_argument("--status-port", type=int, help="read-only status port (default: a free one)")
    p.add_argument("--model", help="the model routed (its users' buckets are salted with it)")
    p.add_argument("--stable", help="stable backend, http://host:port")
    p.add_argument("--stable-version", default="stable", help="stable's version name")
    p.add_argument("--candidate", help="candidate backend, http://host:port")
    p.add_argument("--candidate-version", default="candidate", help="candidate's version name")
    p.add_argument("--weight", type=_weight_arg, default=0, help="candidate %% at start (0..100)")
    p.set_defaults(func=_run)
    actions = p.add_subparsers(dest="gateway_command", metavar="ACTION")

    sw = actions.add_parser("set-weight", parents=[workdir], help="change a model's live weight")
    sw.add_argument("model")
    sw.add_argument("weight", type=_weight_arg)
    sw.set_defaults(func=_set_weight)
    st = actions.add_parser("status", parents=[workdir], help="show the live gateway")
    st.set_defaults(func=_status)
    sp = actions.add_parser("stop", parents=[workdir], help="stop the gateway")
    sp.set_defaults(func=_stop)


def _workdir(args) -> Path:
    return args.workdir or default_workdir()


def _run(args: argparse.Namespace) -> int:
    if args.port is None or args.stable is None or args.model is None:
        raise UserError("gateway needs --port, --model and --stable "
                        "(or an action: set-weight, status, stop)")
    route = ModelRoute(args.model, stable=Backend(args.stable_version, args.stable),
                       candidate=Backend(args.candidate_version, args.candidate)
                       if args.candidate else None, weight=args.weight)
    router = NginxRouter(_workdir(args), args.port, args.status_port)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        router.start([route])
        print(f"gateway on {router.url} (status {router.status_url}/canary/state), "
              f"{args.model} weight {router.weight(args.model)}, workdir {router.workdir}, "
              f"nginx pid {router.pid()}", flush=True)
        while not stop.wait(0.5):
            if router.pid() is None:
                print("error: nginx exited; see " + str(router.error_log), flush=True)
                return 1
        return 0
    finally:
        router.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _set_weight(args: argparse.Namespace) -> int:
    router = NginxRouter.attach(_workdir(args))
    old = router.weight(args.model)
    router.set_weight(args.model, args.weight)
    print(f"{args.model}: weight {old} -> {router.weight(args.model)} (verified live)")
    return 0


def _status(args: argparse.Namespace) -> int:
    router = NginxRouter.attach(_workdir(args))
    health = router.health()
    print(f"gateway {router.url} (pid {router.pid()}), workdir {router.workdir}: "
          f"{'ok' if health.ok else 'NOT OK'} - {health.detail}")
    if not health.up:
        return 1
    live = router.live_status()
    for model, route in sorted(live["routes"].items()):
        route = ModelRoute.from_dict(route)
        counts = router.route_counts(model)
        default = " (default)" if model == live.get("default_model") else ""
        cand = f"{route.candidate.version} {route.candidate.url}" if route.candidate else "-"
        print(f"{model}{default}: weight {route.weight}, mirror {route.mirror}; stable "
              f"{route.stable.version} {route.stable.url}, candidate {cand}")
        print("  requests: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in
                                         ("candidate", "stable", "header", "no_user", "fallback")))
    return 0


def _stop(args: argparse.Namespace) -> int:
    router = NginxRouter.attach(_workdir(args))
    pid = router.pid()
    router.stop()
    print(f"stopped nginx pid {pid}" if pid else "gateway was not running")
    return 0
