"""``paddle-canary report MODEL RUN_ID``: (re)write a release's report from its journal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from paddle_canary.errors import UserError
from paddle_canary.registry.names import check_model_name


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write a release's HTML report from its journal",
        description="Write <home>/reports/MODEL/RUN.html (and .json) from the release journal "
                    "<home>/releases/MODEL/RUN.jsonl; Prometheus adds per-version detail when "
                    "it answers.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("run_id", metavar="RUN_ID", help="the Airflow run id of the release")
    p.add_argument("--home", type=Path, default=None, metavar="DIR",
                   help="stack state directory (default: $PADDLE_CANARY_HOME or <repo>/var/stack)")
    p.add_argument("--prometheus-url", default=None, metavar="URL",
                   help="Prometheus to read (default: $PADDLE_CANARY_PROMETHEUS_URL); "
                        "'' skips it")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from paddle_canary.release import journal
    from paddle_canary.release.stack import StackPaths
    from paddle_canary.report.data import summary
    from paddle_canary.report.html import write_report

    paths = StackPaths.from_env()
    if args.home is not None:
        paths = dataclasses.replace(paths, home=args.home)
    if args.prometheus_url is not None:
        paths = dataclasses.replace(paths, prometheus_url=args.prometheus_url)
    check_model_name(args.model)
    source = journal.journal_path(paths.home, args.model, args.run_id)
    events = journal.read(source)
    plans = [e["plan"] for e in events if e.get("event") == "plan" and isinstance(e.get("plan"), dict)]
    if not events:
        raise UserError(f"no release journal for {args.model} run {args.run_id!r} at {source}")
    if not plans:
        raise UserError(f"{source} has no plan event: the release was refused before it started")
    plan = {**plans[-1], "run_id": plans[-1].get("run_id") or args.run_id}
    path = write_report(plan, events, paths)
    s = summary(plan, events)
    ftz = s["fault_to_zero_s"]
    print(f"{s['model']} {s['candidate']}: {s['outcome']}"
          + (f" ({s['reason']})" if s["reason"] else "")
          + f"; steps reached {s['steps_reached']}/{len(s['steps_planned'])}"
          + (f"; fault to 0 % in {ftz:.1f} s" if ftz is not None else ""))
    print(path)
    return 0
