"""``paddle-canary image build|base|wheelhouse`` and ``paddle-canary dockerd start|stop|status``.

``image build`` prints the build log on stderr and the image's tag (and the pushed reference,
when pushed) on stdout, so scripts can use ``tag=$(paddle-canary image build risk-score v2)``.
The engine is ``$DOCKER_HOST`` (or the default socket); ``dockerd start`` runs our own and
prints the ``DOCKER_HOST`` to use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def add_commands(sub) -> None:
    p = sub.add_parser("image", help="serving images: the offline base, the wheelhouse, "
                                     "<model>-serving:<version>")
    isub = p.add_subparsers(dest="image_command", metavar="IMAGE_COMMAND")
    isub.required = True

    b = isub.add_parser("build", help="build <model>-serving:<version> from the registry "
                                      "(skipped when already built from the same files)")
    b.add_argument("model")
    b.add_argument("version")
    b.add_argument("--base", default=None,
                   help="base image (default $PADDLE_CANARY_IMAGE_BASE, else the GPU base "
                        "paddlepaddle/paddle:3.3.1-gpu-cuda12.6-cudnn9.5; the offline CPU base "
                        "is local/debian:bookworm)")
    b.add_argument("--push", action="store_true", default=None,
                   help="push to $PADDLE_CANARY_IMAGE_REGISTRY (pushed anyway when it is set)")
    b.add_argument("--registry", default=None,
                   help="model registry root (default $PADDLE_CANARY_REGISTRY or "
                        "<repo>/model_registry)")
    b.set_defaults(func=build)

    m = isub.add_parser("base", help="make the offline CPU base local/debian:bookworm "
                                     "(debootstrap + docker import; needs root)")
    m.add_argument("--tag", default=None, help="image name (default local/debian:bookworm)")
    m.add_argument("--mirror", default=None, help="Debian mirror (default: the one apt uses)")
    m.set_defaults(func=base)

    w = isub.add_parser("wheelhouse", help="download the wheels a build installs offline; "
                                           "print the directory")
    w.add_argument("--extra", default="image", choices=("image", "image-nopaddle"))
    w.set_defaults(func=wheelhouse)

    d = sub.add_parser("dockerd", help="our own Docker engine (vfs, own data root and socket)")
    d.add_argument("action", choices=("start", "stop", "status"))
    d.add_argument("--home", default=None,
                   help="its directory (default $PADDLE_CANARY_DOCKERD_HOME or <repo>/var/dockerd)")
    d.set_defaults(func=dockerd)


def build(args) -> int:
    from paddle_canary.images.build import build_serving_image

    ref = build_serving_image(args.registry, args.model, args.version, base=args.base,
                              push=args.push, log=_stderr)
    if ref.skipped:
        _stderr(f"skipped: {ref.skipped}")
    print(ref.tag)
    if ref.pushed:
        print(f"{ref.pushed}@{ref.digest}" if ref.digest else ref.pushed)
    return 0


def base(args) -> int:
    from paddle_canary.images.base import BASE_TAG, ensure_base
    from paddle_canary.images.engine import docker_client

    client = docker_client()
    ref = ensure_base(client, tag=args.tag or BASE_TAG, mirror=args.mirror, log=_stderr)
    if ref.skipped:
        _stderr(f"skipped: {ref.skipped}")
    print(ref.tag)
    return 0


def wheelhouse(args) -> int:
    from paddle_canary.images.wheelhouse import wheelhouse as make

    print(make(args.extra, log=_stderr))
    return 0


def dockerd_home(home: str | None = None) -> Path:
    from paddle_canary.images.paths import source_root

    return Path(home or os.environ.get("PADDLE_CANARY_DOCKERD_HOME")
                or source_root() / "var" / "dockerd")


def dockerd(args) -> int:
    from paddle_canary.localstack.dockerd import Dockerd

    engine = Dockerd(dockerd_home(args.home))
    if args.action == "start":
        engine.start()
        # no default bridge on this engine: runtime=docker joins its user network
        print(f"DOCKER_HOST={engine.url}")
        print(f"PADDLE_CANARY_DOCKER_NETWORK={engine.network}")
    elif args.action == "stop":
        engine.stop()
    else:
        print(f"{'running' if engine.running else 'stopped'} DOCKER_HOST={engine.url}")
        return 0 if engine.running else 1
    return 0
