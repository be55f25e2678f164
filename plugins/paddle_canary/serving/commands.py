"""``paddle-canary serve`` and ``paddle-canary validate`` (the serving image's entrypoints)."""

from __future__ import annotations

import argparse
import gc
import logging
import os

from paddle_canary.serving.predictor import DEVICES


def _env_default(p: argparse.ArgumentParser, flag: str, env: str, **kwargs) -> None:
    """An option that defaults to ``$env`` (the serving image sets them) and is required
    only when the variable is unset."""
    value = os.environ.get(env)
    p.add_argument(flag, default=value, required=value is None,
                   help=f"{kwargs.pop('help')} (default ${env})", **kwargs)


def _model_args(p: argparse.ArgumentParser) -> None:
    _env_default(p, "--model", "PADDLE_CANARY_MODEL", help="model name, e.g. risk-score")
    _env_default(p, "--version", "PADDLE_CANARY_VERSION", help="version, e.g. v1")
    p.add_argument("--registry", default=None,
                   help="registry root (default $PADDLE_CANARY_REGISTRY or <repo>/model_registry)")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="auto: GPU 0 when Paddle has CUDA and a device exists, else CPU")
    p.add_argument("--threads", type=int, default=1, help="CPU math threads per call")


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="serve one model version over HTTP (Paddle Inference)")
    _model_args(p)
    _env_default(p, "--port", "PADDLE_CANARY_PORT", type=int, help="TCP port")
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=serve)
    p = sub.add_parser("validate", help="load a version, score its reference rows, print JSON; "
                                        "exit 1 when it fails")
    _model_args(p)
    from paddle_canary.validation import entry

    entry.add_arguments(p)
    p.set_defaults(func=entry.run)


def serve(args) -> int:
    """Load the version, then serve it until SIGTERM/SIGINT. A load failure exits 2."""
    from paddle_canary.registry import Registry
    from paddle_canary.serving import logs

    card = Registry(args.registry).card(args.model, args.version)  # RegistryError: exit 2
    logs.configure(card.model, card.version)
    logs.log(logging.INFO, "loading", device=args.device, path=str(card.path))
    from paddle_canary.serving.predictor import Predictor

    predictor = Predictor(card, device=args.device, threads=args.threads)  # ModelLoadError
    import uvicorn

    from paddle_canary.serving.app import create_app

    app = create_app(card, predictor)
    # Everything loaded so far (Paddle, numpy, ~135k objects) lives as long as the process:
    # keep it out of the cyclic collector, whose full pass over it takes ~40 ms of stalled
    # requests.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False,
                lifespan="on", server_header=False, proxy_headers=False,
                timeout_graceful_shutdown=5)
    return 0
