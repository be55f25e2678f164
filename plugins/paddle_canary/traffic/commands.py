"""``paddle-canary gateway``: the local nginx canary gateway, for people.

    paddle-canary gateway --port P --stable URL [--candidate URL] [--weight W]   (foreground)
    paddle-canary gateway set-weight W       change the live weight of the running gateway
    paddle-canary gateway status             live weight, backends, request counts by route
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
    p.add_argument("--stable", help="stable backend, http://host:port")
    p.add_argument("--candidate", help="candidate backend, http://host:port")
    p.add_argument("--weight", type=_weight_arg, default=0, help="candidate %% at start (0..100)")
    p.set_defaults(func=_run)
    actions = p.add_subparsers(dest="gateway_command", metavar="ACTION")

    sw = actions.add_parser("set-weight", parents=[workdir], help="change the live weight")
    sw.add_argument("weight", type=_weight_arg)
    sw.set_defaults(func=_set_weight)
    st = actions.add_parser("status", parents=[workdir], help="show the live gateway")
    st.set_defaults(func=_status)
    sp = actions.add_parser("stop", parents=[workdir], help="stop the gateway")
    sp.set_defaults(func=_stop)

    # `paddle-canary loadgen` lives in paddle_canary.loadgen; registered here so the CLI has it.
    from paddle_canary.loadgen.commands import add_commands as add_loadgen

    add_loadgen(subparsers)


def _workdir(args) -> Path:
    return args.workdir or default_workdir()


def _run(args: argparse.Namespace) -> int:
    if args.port is None or args.stable is None:
        raise UserError("gateway needs --port and --stable (or an action: set-weight, status, stop)")
    router = NginxRouter(_workdir(args), args.port, args.stable, args.candidate,
                         args.status_port)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        router.start(weight=args.weight)
        print(f"gateway on {router.url} (status {router.status_url}/canary/state), "
              f"weight {router.weight()}, workdir {router.workdir}, nginx pid {router.pid()}",
              flush=True)
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
    old = router.weight()
    router.set_weight(args.weight)
    if not router.verify_weight(args.weight):
        raise UserError(f"gateway reads back {router.weight()}, not {args.weight}")
    print(f"weight {old} -> {router.weight()} (verified live)")
    return 0


def _status(args: argparse.Namespace) -> int:
    router = NginxRouter.attach(_workdir(args))
    live = router.live_status()
    counts = router.route_counts()
    print(f"gateway {router.url} (pid {router.pid()}), workdir {router.workdir}")
    print(f"weight {live['weight']} (generation {live['generation']}); "
          f"stable {live['stable']}, candidate {live['candidate'] or '-'}")
    print("requests: " + ", ".join(f"{k} {counts.get(k, 0)}"
                                   for k in ("candidate", "stable", "no_user", "fallback")))
    return 0


def _stop(args: argparse.Namespace) -> int:
    router = NginxRouter.attach(_workdir(args))
    pid = router.pid()
    router.stop()
    print(f"stopped nginx pid {pid}" if pid else "gateway was not running")
    return 0
