"""``paddle-canary loadgen``: synthetic users against a URL, as a separate process.

SIGTERM or Ctrl-C ends the run early; the summary is still printed and written.
Exit status 0 when every request got a 2xx answer, 1 otherwise.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from paddle_canary.loadgen.runner import run_load
from paddle_canary.loadgen.users import reference_from_registry


def add_commands(subparsers) -> None:
    if "loadgen" in subparsers.choices:  # registered already (traffic.commands adds it too)
        return
    p = subparsers.add_parser(
        "loadgen", help="send synthetic users' /predict requests to a URL",
        description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8080/predict")
    p.add_argument("--users", type=int, default=1000, help="distinct user IDs (default 1000)")
    p.add_argument("--duration", type=float, help="seconds to run")
    p.add_argument("--requests", type=int, help="requests to send")
    p.add_argument("--rate", type=float, help="requests per second (default: as fast as answered)")
    p.add_argument("--concurrency", type=int, default=4, help="connections (default 4)")
    p.add_argument("--model", help="draw features from this model's reference rows")
    p.add_argument("--version", help="the card to read reference rows from (with --model)")
    p.add_argument("--registry", help="registry root (default: the project's model_registry)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--without-user-share", type=float, default=0.0,
                   help="fraction of requests sent without X-User-ID")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    p.add_argument("--json-out", type=Path, help="write the summary here as JSON")
    p.add_argument("--records", action="store_true",
                   help="include every request's record in --json-out")
    p.set_defaults(func=_loadgen)


def _loadgen(args: argparse.Namespace) -> int:
    from paddle_canary.errors import UserError

    if bool(args.model) != bool(args.version):
        raise UserError("--model and --version go together")
    reference = (reference_from_registry(args.model, args.version, args.registry)
                 if args.model else None)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        summary = run_load(
            args.url, users=args.users, duration_s=args.duration, requests=args.requests,
            rate=args.rate, concurrency=args.concurrency, reference=reference, seed=args.seed,
            timeout_s=args.timeout, stop=stop, keep_records=args.records,
            without_user_share=args.without_user_share)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json_out.with_name(args.json_out.name + ".tmp")
        tmp.write_text(summary.to_json(with_records=args.records))
        tmp.replace(args.json_out)
    print("\n".join(summary.lines()), file=sys.stdout, flush=True)
    return 0 if summary.failures == 0 else 1
