"""CLI for acting on a release by hand: pause, resume, promote --full, undo (see
:mod:`paddle_canary.release.manual`). Each writes a journal event that the release's tasks and
its analysis trigger read at their next look; ``undo`` acts on the gateway at once."""

from __future__ import annotations

from paddle_canary.errors import UserError


def add_commands(sub) -> None:
    p = sub.add_parser("pause", help="hold MODEL's release at its weight (the step timer stops)")
    p.add_argument("model")
    p.add_argument("--reason", default="", help="why (recorded in the journal and the report)")
    p.set_defaults(func=cmd_pause)

    p = sub.add_parser("resume", help="let MODEL's paused release go on")
    p.add_argument("model")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("promote", help="skip the remaining steps of MODEL's release (hotfix)")
    p.add_argument("model")
    p.add_argument("--full", action="store_true", required=True,
                   help="required: skip every remaining step below 100 %%")
    p.add_argument("--reason", required=True, help="why (recorded)")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("undo", help="during the bake period, send MODEL's traffic back to the "
                                    "previous version and cancel its teardown")
    p.add_argument("model")
    p.add_argument("--reason", required=True, help="why (recorded)")
    p.set_defaults(func=cmd_undo)


def _settings():
    from paddle_canary.settings import Settings
    return Settings.from_env()


def cmd_pause(args) -> int:
    from paddle_canary.release import manual
    manual.pause(_settings(), args.model, args.reason)
    print(f"{args.model}: paused; the weight holds and the step timer stops "
          f"('paddle-canary resume {args.model}' to go on). Failed gates still roll back.")
    return 0


def cmd_resume(args) -> int:
    from paddle_canary.release import manual
    manual.resume(_settings(), args.model)
    print(f"{args.model}: resumed")
    return 0


def cmd_promote(args) -> int:
    from paddle_canary.release import manual
    manual.promote_full(_settings(), args.model, args.reason)
    print(f"{args.model}: full promotion asked; the steps below 100 % that remain are skipped "
          "(the 100 % step, its approval and the promotion still run)")
    return 0


def cmd_undo(args) -> int:
    from paddle_canary.release import controller, manual
    settings = _settings()
    _, plan = manual.baking_journal(settings, args.model)
    if plan is None:
        raise UserError(f"the newest promotion of {args.model} has no plan in its journal")
    result = manual.undo(controller.open_release(plan, settings), args.reason)
    print(f"{args.model}: traffic back on {result['restored']}; {result['rejected']} rejected "
          f"and stopped; teardown of {result['restored']} cancelled")
    for part in result["incomplete"]:
        print(f"warning: undo could not finish: {part}")
    return 1 if result["incomplete"] else 0
