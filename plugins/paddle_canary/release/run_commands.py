"""CLI for people running releases: release, status, approve, rollback, unlock.

``release`` and ``approve`` go through the Airflow REST API; ``rollback`` acts on the gateway
directly (weight 0 in seconds, even if Airflow is down) and then rejects the run's pending
approvals so the DAG runs its own rollback.
"""

from __future__ import annotations

import argparse
import json

from paddle_canary.errors import UserError


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}")


def _gate_override(text: str) -> tuple[str, str, float]:
    try:
        key, value = text.split("=", 1)
        gate, field = key.split(".", 1)
        return gate, field, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GATE.KEY=NUMBER, got {text!r}")


def _header_route(text: str) -> dict[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected HEADER=VALUE, got {text!r}")
    return {"name": name, "value": value}


def add_commands(sub) -> None:
    p = sub.add_parser("release", help="start a canary release of MODEL VERSION (Airflow REST)")
    p.add_argument("model")
    p.add_argument("version")
    p.add_argument("--steps", type=_int_list, help="weights in %%, e.g. 5,15,25,50,100")
    p.add_argument("--step-interval", type=float, dest="step_interval_s", help="seconds per step")
    p.add_argument("--approvals-before", type=_int_list, help="e.g. 50,100; '' for none")
    p.add_argument("--teardown-delay", type=float, dest="teardown_delay_s", help="seconds")
    p.add_argument("--poll-interval", type=float, dest="poll_interval_s", help="seconds")
    p.add_argument("--runtime", help="where the versions run: local (default), docker, "
                                     "kubernetes")
    p.add_argument("--shadow", type=float, dest="shadow_s", metavar="SECONDS",
                   help="a shadow phase before the first step: stable's requests mirrored to "
                        "the candidate (answers discarded) and judged, for SECONDS")
    p.add_argument("--shadow-mirror", type=int, dest="shadow_mirror", metavar="PCT",
                   help="%% of stable's requests mirrored in the shadow phase (default 100)")
    p.add_argument("--unpaired", dest="paired", action="store_const", const=False,
                   help="judge on the two groups of users only: the candidate does not score "
                        "requests with the stable version too (paired analysis is the default)")
    p.add_argument("--gate", type=_gate_override, action="append", default=[],
                   help="threshold override GATE.KEY=NUMBER, e.g. latency_p95.max_ms=50")
    p.add_argument("--header-route", type=_header_route, metavar="NAME=VALUE",
                   help="requests carrying this header go to the candidate from deploy on, "
                        "at any weight (e.g. X-Canary=testers)")
    p.add_argument("--check", action="store_true",
                   help="only check the request against the registry; trigger nothing")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("approve", help="answer a release's pending approval")
    p.add_argument("run_id")
    p.add_argument("--task", help="task id (default: the run's only pending approval)")
    p.add_argument("--reject", action="store_true", help="reject: the release rolls back")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("status", help="stable/candidate, live weight, releases and approvals")
    p.add_argument("model", nargs="?")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("rollback", help="send all traffic back to stable now")
    p.add_argument("model")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("unlock", help="free a model whose release run is gone")
    p.add_argument("model")
    p.set_defaults(func=cmd_unlock)


def request_from_args(args) -> dict:
    conf = {"model": args.model, "version": args.version}
    for key in ("steps", "step_interval_s", "approvals_before", "teardown_delay_s",
                "poll_interval_s", "paired", "shadow_s", "shadow_mirror",
                "header_route", "runtime"):
        value = getattr(args, key)
        if value is not None:
            conf[key] = value
    gates: dict = {}
    for gate, field, value in args.gate:
        gates.setdefault(gate, {})[field] = value
    if gates:
        conf["gates"] = gates
    return conf


def cmd_release(args) -> int:
    from paddle_canary.airflow_rest import AirflowClient
    from paddle_canary.registry import Registry
    from paddle_canary.release import controller
    from paddle_canary.release.plan import resolve_plan
    from paddle_canary.settings import Settings

    conf = request_from_args(args)
    # The same checks the DAG's first task makes, so a typo is refused here, before Airflow.
    plan = resolve_plan(Registry(Settings.from_env().registry_root), conf,
                        check_gates=controller.check_gates)
    if args.check:
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    client = AirflowClient.from_env()
    client.unpause()
    run_id = client.trigger(conf)
    print(f"triggered {run_id}")
    print(f"grid: {client.url}/dags/model_release/runs/{run_id}")
    return 0


def cmd_approve(args) -> int:
    from paddle_canary.airflow_rest import AirflowClient
    client = AirflowClient.from_env()
    pending = client.pending_approvals(args.run_id)
    if args.task:
        pending = [p for p in pending if p["task_instance"]["task_id"] == args.task]
    if len(pending) != 1:
        names = [p["task_instance"]["task_id"] for p in pending]
        raise UserError(f"expected one pending approval in {args.run_id}, found {names or 'none'}"
                        + ("; pass --task" if len(names) > 1 else ""))
    task_id = pending[0]["task_instance"]["task_id"]
    option = "Reject" if args.reject else "Approve"
    client.answer(args.run_id, task_id, option)
    print(f"{option}: {args.run_id} {task_id}")
    return 0


def cmd_status(args) -> int:
    from paddle_canary.registry import Registry
    from paddle_canary.release import lock
    from paddle_canary.settings import Settings
    from paddle_canary.traffic.factory import make_router

    settings = Settings.from_env()
    reg = Registry(settings.registry_root)
    try:
        router = make_router(settings)
        gateway = router.health()
        print(f"gateway ({router.kind}): {'ok' if gateway.ok else 'NOT OK'} - {gateway.detail}")
    except UserError as exc:
        router = None
        print(f"gateway: not running ({exc})")
    for model in [args.model] if args.model else reg.models():
        ptr = reg.pointers(model)
        print(f"{model}: stable={ptr.stable} candidate={ptr.candidate}")
        holder = lock.holder(settings.registry_root, model)
        if holder:
            print(f"  release running: {holder['run_id']} (candidate {holder['candidate']}, "
                  f"since {holder['since']})")
            for line in _manual_state(settings, model, holder["run_id"]):
                print(f"  {line}")
        if router is not None:
            try:
                live = router.live(model)
            except UserError as exc:
                live, note = None, str(exc)
            else:
                note = "no route"
            if live is None:
                print(f"  traffic: {note}")
            else:
                cand = live.candidate.version if live.candidate else "-"
                print(f"  traffic: {live.weight} % to candidate {cand} (stable "
                      f"{live.stable.version}), mirror {live.mirror} %"
                      + (f", header {live.header.name}: {live.header.value}" if live.header else ""))
    from paddle_canary.ops.watchdog import read_status
    last = read_status(settings)
    for finding in (last or {}).get("findings") or []:
        if not args.model or finding["model"] == args.model:
            print(f"watchdog: {finding['model']}: {finding['kind']}: {finding['detail']}"
                  + (f" (repaired: {finding['repaired']})" if finding.get("repaired") else "")
                  + (f" (repair FAILED: {finding['error']})" if finding.get("error") else ""))
    try:
        from paddle_canary.airflow_rest import AirflowClient
        client = AirflowClient.from_env()
        for item in client.pending_approvals():
            ti = item["task_instance"]
            print(f"approval pending: {ti['dag_run_id']} {ti['task_id']}: {item.get('subject')}")
            print(f"  {client.required_actions_url(ti['dag_run_id'], ti['task_id'])}")
    except UserError as exc:
        print(f"airflow: {exc}")
    return 0


def _manual_state(settings, model: str, run_id: str) -> list[str]:
    """What people did by hand to the running release: a hold, a full promotion."""
    import time

    from paddle_canary.release import events as ev
    from paddle_canary.release import manual
    from paddle_canary.release.journal import Journal
    events = Journal.of_run(settings.home, model, run_id).read()
    out = []
    since = manual.paused_since(events)
    if since is not None:
        held = next(e for e in reversed(ev.of_kind(events, ev.Paused)) if e.ts == since)
        out.append(f"PAUSED by {held.by} {time.time() - since:.0f} s ago"
                   + (f": {held.reason}" if held.reason else "")
                   + f" ('paddle-canary resume {model}')")
    asked = manual.full_promotion(events)
    if asked:
        out.append(f"full promotion asked by {asked.by}: {asked.reason}")
    waits = ev.of_kind(events, ev.WindowWait)
    if waits and waits[-1].until > time.time() and not any(
            e.step == waits[-1].step for e in ev.of_kind(events, ev.WeightSet)):
        from datetime import datetime, timezone
        opens = datetime.fromtimestamp(waits[-1].until, timezone.utc)
        out.append(f"waiting for the promotion window ({waits[-1].window}): "
                   f"{waits[-1].weight} % at {opens:%Y-%m-%d %H:%M} UTC")
    return out


def cmd_rollback(args) -> int:
    """No user traffic to the candidate at once through the gateway; then, if a release of the
    model is running, the same rollback its DAG would do (candidate rejected with the reason,
    stopped, report written, model freed) and its Airflow run marked failed so no later step
    moves traffic. Every part is attempted; what could not be done is printed."""
    from paddle_canary.release import controller, lock
    from paddle_canary.release import events as ev
    from paddle_canary.release.journal import Journal
    from paddle_canary.release.plan import ReleasePlan
    from paddle_canary.settings import Settings
    from paddle_canary.traffic.factory import make_router

    settings = Settings.from_env()
    status = 0
    try:
        router = make_router(settings)
        live = router.route(args.model)
        if live.candidate is not None and (live.weight or live.header or live.mirror):
            router.apply_verified(live.replace(weight=0, header=None, mirror=0))
        print(f"gateway: {live.weight} % -> 0 % to the candidate of {args.model}")
    except UserError as exc:
        print(f"warning: the gateway could not be set to 0 % ({exc})")
        status = 1
    holder = lock.holder(settings.registry_root, args.model)
    if not holder:
        return status
    run_id = holder["run_id"]
    plan = ev.plan_in(Journal.of_run(settings.home, args.model, run_id).read())
    if plan is None:
        raise UserError(f"release {run_id} holds {args.model} but has no plan in its journal; "
                        f"'paddle-canary unlock {args.model}' frees it")
    from paddle_canary.airflow_rest import AirflowClient
    try:
        AirflowClient.from_env().set_run_state(run_id, "failed")
        print(f"Airflow run {run_id} marked failed")
    except UserError as exc:
        print(f"warning: could not mark the Airflow run failed ({exc})")
    from paddle_canary.report.publish import finish_and_report
    plan = ReleasePlan.from_dict(plan)
    release = controller.open_release(plan, settings)
    release.record_failure("cli", "rolled back by hand (paddle-canary rollback)")
    result = release.rollback()
    for part in result["incomplete"]:
        print(f"warning: rollback could not finish: {part}")
        status = 1
    done = finish_and_report(plan, run_id, settings)
    print(f"{plan.candidate} rejected and stopped; report {done['report']}")
    return status


def cmd_unlock(args) -> int:
    from paddle_canary.release import lock
    from paddle_canary.settings import Settings
    if lock.release(Settings.from_env().registry_root, args.model):
        print(f"{args.model}: release lock removed")
    else:
        print(f"{args.model}: no release lock")
    return 0
