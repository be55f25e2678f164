"""``paddle-canary loadgen``: synthetic users against a gateway's models or one URL, as a
separate process.

``--gateway URL`` sends every model's users to ``URL/models/<model>/predict`` (the models named by
``--model``, each as ``MODEL`` or ``MODEL:RATE``; default: every registered model with a stable
version), each model at its own rate (``--rate`` is per model). ``--url`` sends to one URL.
SIGTERM or Ctrl-C ends the run early; the summary is still printed and written.
Exit status 0 when every request got a 2xx answer, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from paddle_canary.loadgen.models import model_loads, parse_model_rate, run_models
from paddle_canary.loadgen.runner import run_load
from paddle_canary.loadgen.users import reference_from_registry


def add_commands(subparsers) -> None:
    if "loadgen" in subparsers.choices:  # registered already (traffic.commands adds it too)
        return
    p = subparsers.add_parser(
        "loadgen", help="send synthetic users' /predict requests to a gateway's models or a URL",
        description=" ".join(__doc__.split("\n\n")[0].split()))
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--gateway", help="gateway base URL, e.g. http://127.0.0.1:8000: every "
                                          "model's users to /models/<model>/predict")
    target.add_argument("--url", help="one URL, e.g. http://127.0.0.1:8080/predict")
    p.add_argument("--users", type=int, default=1000, help="distinct user IDs (default 1000)")
    p.add_argument("--duration", type=float, help="seconds to run")
    p.add_argument("--requests", type=int, help="requests to send")
    p.add_argument("--rate", type=float,
                   help="requests per second, per model (default: as fast as answered)")
    p.add_argument("--concurrency", type=int, default=4, help="connections (default 4)")
    p.add_argument("--model", action="append", default=[], metavar="MODEL[:RATE]",
                   help="with --gateway: a model to send users to, at RATE requests/s if given "
                        "(repeat; default: every model with a stable version); with --url: the "
                        "model whose reference rows are sent")
    p.add_argument("--version", help="with --url: the card to read reference rows from")
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
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    common = dict(users=args.users, duration_s=args.duration, requests=args.requests,
                  concurrency=args.concurrency, seed=args.seed, timeout_s=args.timeout,
                  keep_records=args.records, without_user_share=args.without_user_share)
    try:
        summaries = _run_gateway(args, stop, common) if args.gateway else \
            {None: _run_url(args, stop, common)}
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json_out:
        if None in summaries:
            text = summaries[None].to_json(with_records=args.records)
        else:
            text = json.dumps({m: s.to_dict(args.records) for m, s in summaries.items()},
                              indent=2, sort_keys=True) + "\n"
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json_out.with_name(args.json_out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.json_out)
    for model, summary in summaries.items():
        prefix = f"{model}: " if model else ""
        print("\n".join(prefix + line for line in summary.lines()), file=sys.stdout, flush=True)
    return 0 if all(s.failures == 0 for s in summaries.values()) else 1


def _run_url(args, stop, common):
    from paddle_canary.errors import UserError

    if len(args.model) > 1 or bool(args.model) != bool(args.version):
        raise UserError("with --url: --model and --version go together (one model)")
    reference = (reference_from_registry(args.model[0], args.version, args.registry)
                 if args.model else None)
    return run_load(args.url, rate=args.rate, reference=reference, stop=stop, **common)


def _run_gateway(args, stop, common):
    from paddle_canary.errors import UserError

    if args.version:
        raise UserError("--version goes with --url; with --gateway each model's stable "
                        "version's reference rows are sent")
    loads = model_loads(args.gateway, [parse_model_rate(m) for m in args.model], args.rate,
                        args.registry)
    return run_models(loads, stop=stop, **common)
