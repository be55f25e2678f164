"""``paddle-canary analyze``: judge a candidate against its baseline from Prometheus, now.

Exit status: 0 pass, 1 fail, 3 inconclusive (2 is a usage error, as for every command).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from paddle_canary.errors import UserError

EXIT = {"pass": 0, "fail": 1, "inconclusive": 3}


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="judge a candidate against its baseline over a window (Prometheus)",
        description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--baseline", required=True, help="the stable version, e.g. v1")
    p.add_argument("--candidate", required=True, help="the version under test, e.g. v2")
    p.add_argument("--window", type=float, help="the last N seconds (ending now or at --end)")
    p.add_argument("--start", type=float, help="window start, Unix seconds (instead of --window)")
    p.add_argument("--end", type=float, help="window end, Unix seconds (default: now)")
    p.add_argument("--prometheus", help="Prometheus URL (default: $PADDLE_CANARY_PROMETHEUS_URL)")
    p.add_argument("--registry", help="registry root holding the model card's gate defaults")
    p.add_argument("--gates", help="threshold overrides as JSON, or @file.json")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.set_defaults(func=_analyze)


def _overrides(text: str | None) -> dict | None:
    if not text:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--gates: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--gates: not valid JSON ({exc.msg} at column {exc.colno})") from None


def _analyze(args: argparse.Namespace) -> int:
    from paddle_canary.analysis.analyze import analyze, thresholds_for
    from paddle_canary.analysis.provider import PrometheusProvider
    from paddle_canary.registry import RegistryError

    if (args.window is None) == (args.start is None):
        raise UserError("give either --window SECONDS or --start TIME")
    try:
        config = thresholds_for(args.model, args.registry, _overrides(args.gates))
    except RegistryError as exc:
        raise UserError(str(exc)) from None
    provider = (PrometheusProvider(args.prometheus) if args.prometheus
                else PrometheusProvider.from_env())
    verdict = analyze(provider, args.model, args.baseline, args.candidate, config,
                      start=args.start, end=args.end, window_s=args.window)
    print(verdict.to_json(indent=2) if args.json else table(verdict))
    return EXIT[verdict.status]


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def table(verdict) -> str:
    """The verdict for a terminal: one line per gate, then the reasons."""
    lines = [f"{verdict.model}: {verdict.candidate} vs {verdict.baseline} over "
             f"{verdict.window_end - verdict.window_start:.0f} s -> {verdict.status.upper()}",
             f"{'gate':<20} {'status':<13} {'effect':>9} {'interval':>21} {'n (base/cand)':>17}"]
    for g in verdict.gates:
        lo, hi = g.interval
        lines.append(f"{g.gate:<20} {g.status:<13} {_fmt(g.effect):>9} "
                     f"{'[' + _fmt(lo) + ', ' + _fmt(hi) + ']':>21} "
                     f"{g.samples[0]:>8.0f}/{g.samples[1]:<8.0f}")
    lines += ["", *(g.reason for g in verdict.gates)]
    return "\n".join(lines)
