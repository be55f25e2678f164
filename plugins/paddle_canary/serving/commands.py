"""``paddle-canary serve`` and ``paddle-canary validate`` (the serving image's entrypoints)."""

from __future__ import annotations

import argparse
import gc
import logging
import os

from paddle_canary.errors import UserError
from paddle_canary.serving.http_limits import HEADER_TIMEOUT_S, MAX_HEADER_BYTES
from paddle_canary.serving.predictor import DEVICES

SHADOW_MAX_MB = 1024.0


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
    p.add_argument("--shadow", default=os.environ.get("PADDLE_CANARY_SHADOW") or None,
                   metavar="VERSION",
                   help="also score every answered request with this version (the stable "
                        "one) and export paired series for the judge; never returned "
                        "(default $PADDLE_CANARY_SHADOW)")
    p.add_argument("--shadow-registry",
                   default=os.environ.get("PADDLE_CANARY_SHADOW_REGISTRY") or None,
                   help="registry root holding the shadow version (default "
                        "$PADDLE_CANARY_SHADOW_REGISTRY, else --registry)")
    p.add_argument("--shadow-max-mb", type=float, default=SHADOW_MAX_MB,
                   help="serve without the shadow when its parameter file is larger "
                        f"(MiB, default {SHADOW_MAX_MB:g}): models too large to load twice are "
                        "judged unpaired")
    p.add_argument("--header-timeout", type=float, default=HEADER_TIMEOUT_S,
                   help="seconds a client has to send a request's headers (default "
                        f"{HEADER_TIMEOUT_S:g}); then 408 and the connection is closed")
    p.add_argument("--max-header-kb", type=float, default=MAX_HEADER_BYTES / 1024,
                   help="largest request line + headers in KiB (default "
                        f"{MAX_HEADER_BYTES // 1024}); larger: 431")
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
    shadow_card, shadow_predictor = _shadow(args, card, Registry, Predictor)
    import uvicorn

    from paddle_canary.serving.app import create_app
    from paddle_canary.serving.http_limits import guarded_protocol

    if not (args.header_timeout > 0 and args.max_header_kb > 0):
        raise UserError("--header-timeout and --max-header-kb must be greater than 0")
    app = create_app(card, predictor, shadow_card=shadow_card,
                     shadow_predictor=shadow_predictor)
    # Everything loaded so far (Paddle, numpy, ~135k objects) lives as long as the process:
    # keep it out of the cyclic collector, whose full pass over it takes ~40 ms of stalled
    # requests.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False,
                lifespan="on", server_header=False, proxy_headers=False,
                timeout_graceful_shutdown=5,
                http=guarded_protocol(int(args.max_header_kb * 1024), args.header_timeout))
    return 0


def _shadow(args, card, Registry, Predictor):
    """The shadow's card and predictor, or (None, None) when there is none.

    Refused (exit 2, the caller is wrong): a shadow version equal to the served one, or one the
    registry does not have. Served without a shadow, with a warning (the judge then uses the
    unpaired statistics): a parameter file over ``--shadow-max-mb``, or a model that does not
    load here (e.g. no room for a second copy on the GPU)."""
    from paddle_canary.serving import logs
    from paddle_canary.serving.predictor import ModelLoadError

    if not args.shadow:
        return None, None
    if args.shadow == card.version:
        raise UserError(f"--shadow {args.shadow} is the version being served")
    root = args.shadow_registry or args.registry
    shadow_card = Registry(root).card(card.model, args.shadow)       # RegistryError: exit 2
    if shadow_card.feature_names != card.feature_names:
        raise UserError(f"--shadow {args.shadow} takes other input features than "
                        f"{card.version} ({shadow_card.n_features} vs {card.n_features}, or "
                        "another order): they cannot score the same rows")
    size_mb = shadow_card.params_path.stat().st_size / 2 ** 20
    if size_mb > args.shadow_max_mb:
        logs.log(logging.WARNING, "shadow off", shadow_version=args.shadow,
                 reason=f"parameters are {size_mb:.0f} MiB, over --shadow-max-mb "
                        f"{args.shadow_max_mb:g}: judged unpaired")
        return None, None
    try:
        shadow_predictor = Predictor(shadow_card, device=args.device, threads=args.threads)
    except ModelLoadError as exc:
        logs.log(logging.WARNING, "shadow off", shadow_version=args.shadow,
                 reason=f"cannot load it here ({exc}): judged unpaired")
        return None, None
    logs.log(logging.INFO, "shadow loaded", shadow_version=args.shadow,
             shadow_content_hash=shadow_card.content_hash, params_mb=round(size_mb, 3))
    return shadow_card, shadow_predictor

