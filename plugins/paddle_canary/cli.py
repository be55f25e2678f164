"""The ``paddle-canary`` command line.

Each package contributes its own sub-commands through a ``commands`` module with
``add_commands(subparsers)``; handlers are set with ``set_defaults(func=...)`` and return an
exit status. A :class:`UserError` is printed as ``error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from paddle_canary.errors import UserError

COMMAND_MODULES = (
    "paddle_canary.registry.commands",
    "paddle_canary.serving.commands",
    "paddle_canary.traffic.commands",
    "paddle_canary.loadgen.commands",
    "paddle_canary.analysis.commands",
    "paddle_canary.release.run_commands",
    "paddle_canary.release.manual_commands",
    "paddle_canary.report.commands",
    "paddle_canary.localstack.commands",
    "paddle_canary.images.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paddle-canary", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
