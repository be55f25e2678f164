"""``paddle-canary report MODEL RUN_ID``: (re)write a release's report from its journal."""

from __future__ import annotations

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
    from paddle_canary.release.events import PLAN
    from paddle_canary.release.journal import Journal
    from paddle_canary.report.data import summary
    from paddle_canary.report.html import report_from_journal
    from paddle_canary.settings import Settings

    settings = Settings.from_env()
    if args.home is not None:
        settings = settings.replace(home=args.home)
    if args.prometheus_url is not None:
        settings = settings.replace(prometheus_url=args.prometheus_url)
    check_model_name(args.model)
    journal = Journal.of_run(settings.home, args.model, args.run_id)
    records = journal.records()
    if not records:
        raise UserError(f"no release journal for {args.model} run {args.run_id!r} at "
                        f"{journal.path}")
    try:
        path = report_from_journal(records, settings)
    except UserError as exc:
        raise UserError(f"{journal.path}: {exc}") from None
    plan = next(r["plan"] for r in records if r.get("event") == PLAN)
    s = summary(plan, records)
    ftz = s["fault_to_zero_s"]
    print(f"{s['model']} {s['candidate']}: {s['outcome']}"
          + (f" ({s['reason']})" if s["reason"] else "")
          + f"; steps reached {s['steps_reached']}/{len(s['steps_planned'])}"
          + (f"; fault to 0 % in {ftz:.1f} s" if ftz is not None else ""))
    print(path)
    return 0
