"""What each task of a release does, in plain Python (no Airflow).

Imports of the parts (registry, runtime, router, analysis) stay inside the functions: the DAG
file imports this module through the operators, and Airflow parses DAG files often.

Each function takes the plan as a dict (it travels through XCom), finds the local stack from the
environment (:mod:`paddle_canary.release.stack`) and is idempotent, so a retried task or a
restarted trigger never applies a step twice or loses one.
"""

from __future__ import annotations

import time
from typing import Any

from paddle_canary.release import journal, lock
from paddle_canary.release.plan import resolve_plan
from paddle_canary.release.stack import StackPaths


class ReleaseFailed(RuntimeError):
    """A step of the release could not be carried out (the reason is in the message)."""


# ---- where things are -------------------------------------------------------------------------

def paths() -> StackPaths:
    return StackPaths.from_env()


def registry():
    from paddle_canary.registry import Registry  # numpy: not at DAG parse time
    return Registry(paths().registry_root)


def runtime():
    from paddle_canary.runtime.local import LocalRuntime
    p = paths()
    return LocalRuntime(p.runtime_dir, registry_root=p.registry_root)


def router():
    from paddle_canary.traffic.nginx import NginxRouter
    return NginxRouter.attach(paths().gateway_dir)


def scrape(model: str, version: str, url: str | None, targets_dir=None) -> None:
    """Add (url given) or remove a version's Prometheus target (file service discovery)."""
    from urllib.parse import urlsplit

    from paddle_canary.analysis.prometheus_server import remove_target, write_target
    targets_dir = targets_dir or paths().targets_dir
    if url is None:
        remove_target(targets_dir, model, version)
    else:
        write_target(targets_dir, model, version, [urlsplit(url).netloc])


# ---- the journal ------------------------------------------------------------------------------

def _journal(plan: dict[str, Any]):
    return journal.journal_path(paths().home, plan["model"], plan["run_id"])


def record_event(plan: dict[str, Any], event: str, /, **details: Any) -> dict[str, Any]:
    return journal.append(_journal(plan), event, **details)


def record_failure(plan: dict[str, Any], task: str, reason: str) -> None:
    record_event(plan, "failure", task=task, reason=reason)


def record_verdict(plan: dict[str, Any], task: str, verdict: dict[str, Any]) -> None:
    record_event(plan, "verdict", task=task, verdict=verdict)


def events(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return journal.read(_journal(plan))


def failure_reason(plan: dict[str, Any]) -> str:
    failures = [e for e in events(plan) if e["event"] == "failure"]
    return failures[0]["reason"] if failures else "a release task failed (see the Airflow log)"


# ---- the steps --------------------------------------------------------------------------------

def check_gates(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    from paddle_canary.analysis.config import GateConfig
    return GateConfig.from_dict(defaults, overrides).to_dict()


def prepare(request: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Resolve the request and take the model's release lock; refuse before any change."""
    p, reg = paths(), registry()
    plan = resolve_plan(reg, request, check_gates=check_gates, run_id=run_id)
    lock.acquire(p.registry_root, plan.model, run_id, plan.candidate)
    try:
        if reg.pointers(plan.model).candidate != plan.candidate:
            reg.set_candidate(plan.model, plan.candidate)
        plan_dict = plan.to_dict()
        record_event(plan_dict, "plan", plan=plan_dict)
    except Exception:
        lock.release(p.registry_root, plan.model, run_id)
        raise
    return plan_dict


def build_image(plan: dict[str, Any]) -> dict[str, Any]:
    raise ReleaseFailed(f"runtime {plan['runtime']!r} has no image builder in this deployment")


def validate_candidate(plan: dict[str, Any]) -> dict[str, Any]:
    """Offline checks before any traffic: loads, finite scores in range, close to stable."""
    from paddle_canary.validation.compare import compare_with_baseline
    reg = registry()
    report = compare_with_baseline(reg.card(plan["model"], plan["candidate"]),
                                   reg.card(plan["model"], plan["baseline"]))
    record_event(plan, "validated", report=report)
    if not report["passed"]:
        raise ReleaseFailed("offline validation failed: " + "; ".join(report["problems"]))
    reg.mark_validated(plan["model"], plan["candidate"], report)
    return report


def deploy_candidate(plan: dict[str, Any]) -> dict[str, Any]:
    """Start both versions (idempotent), let Prometheus scrape them, route them at weight 0."""
    rt, gw = runtime(), router()
    stable = rt.deploy(plan["model"], plan["baseline"])
    candidate = rt.deploy(plan["model"], plan["candidate"])
    for ep in (stable, candidate):
        scrape(ep.model, ep.version, ep.url)
    routes, weight = gw.state, gw.weight()
    if (routes.stable_url, routes.candidate_url) != (stable.url, candidate.url):
        if weight != 0 and routes.candidate_url not in (None, candidate.url):
            raise ReleaseFailed(f"the gateway still sends {weight} % to another candidate "
                                f"({routes.candidate_url}); roll that back first")
        gw.set_backends(stable.url, candidate.url)
    out = {"stable_url": stable.url, "candidate_url": candidate.url}
    record_event(plan, "deployed", **out)
    return out


def set_step_weight(plan: dict[str, Any], weight: int) -> dict[str, Any]:
    gw = router()
    gw.set_weight(weight)
    if not gw.verify_weight(weight):
        raise ReleaseFailed(f"the gateway does not serve {weight} % after setting it "
                            f"(live: {gw.weight()} %)")
    at = time.time()
    record_event(plan, "weight", weight=weight)
    return {"weight": weight, "at": at}


def judge(plan: dict[str, Any], since: float) -> dict[str, Any]:
    """One look: compare candidate with stable over [since, now] on every gate."""
    from paddle_canary.analysis.analyze import analyze
    from paddle_canary.analysis.config import GateConfig
    from paddle_canary.analysis.provider import PrometheusProvider
    verdict = analyze(PrometheusProvider(paths().prometheus_url), plan["model"], plan["baseline"],
                      plan["candidate"], GateConfig.from_dict(plan["gates"]),
                      start=since, end=time.time()).to_dict()
    record_event(plan, "look", verdict=verdict)
    return verdict


def verdict_reason(verdict: dict[str, Any]) -> str:
    return verdict.get("reason") or verdict.get("status", "no verdict")


def verdict_markdown(verdict: dict[str, Any]) -> str:
    rows = ["| gate | status | reason |", "|---|---|---|"]
    for g in verdict.get("gates") or []:
        rows.append(f"| {g.get('gate')} | {g.get('status')} | {g.get('reason', '')} |")
    return f"**Verdict: {verdict.get('status')}**\n\n" + "\n".join(rows)


def approval_body(plan: dict[str, Any], weight: int) -> str:
    looks = [e for e in events(plan) if e["event"] in ("look", "verdict")]
    last = looks[-1]["verdict"] if looks else None
    lines = [f"Candidate **{plan['candidate']}** of **{plan['model']}** against stable "
             f"**{plan['baseline']}**. Approve to move the candidate to **{weight} %** of users; "
             "Reject to roll back (weight 0, candidate marked rejected)."]
    if last:
        lines += ["", "Latest analysis:", "", verdict_markdown(last)]
    return "\n".join(lines)


def cut_traffic(plan: dict[str, Any], reason: str) -> None:
    """Weight 0 now, if the gateway still routes to this candidate. Idempotent."""
    gw = router()
    if gw.state.candidate_url is None or gw.weight() == 0:
        return
    gw.set_weight(0)
    record_event(plan, "cut", weight=0, reason=reason)


def rollback(plan: dict[str, Any]) -> dict[str, Any]:
    """Weight 0 first, then the candidate marked rejected with the reason, then stopped."""
    reason = failure_reason(plan)
    gw = router()
    gw.set_weight(0)
    if not gw.verify_weight(0):
        raise ReleaseFailed("the gateway does not serve 0 % to the candidate after rollback")
    record_event(plan, "cut", weight=0, reason=reason)
    rt = runtime()
    stable = rt.deploy(plan["model"], plan["baseline"])  # running already; idempotent
    gw.set_routes(stable.url, None, 0)
    reg = registry()
    if reg.status(plan["model"], plan["candidate"]) != "rejected":
        reg.mark_rejected(plan["model"], plan["candidate"], reason)
    rt.remove(plan["model"], plan["candidate"])
    scrape(plan["model"], plan["candidate"], None)
    record_event(plan, "rolled_back", reason=reason)
    return {"outcome": "rolled_back", "reason": reason}


def promote(plan: dict[str, Any]) -> dict[str, Any]:
    """At 100 %: the gateway serves the new stable alone, then the registry pointer moves."""
    gw = router()
    if not gw.verify_weight(100):
        raise ReleaseFailed(f"promotion needs 100 % on the candidate; the gateway serves {gw.weight()} %")
    gw.set_routes(gw.state.candidate_url, None, 0)  # one reload: every user stays on the candidate
    registry().promote(plan["model"], plan["candidate"], reason=f"release {plan['run_id']}")
    record_event(plan, "promoted", previous=plan["baseline"])
    return {"outcome": "promoted", "stable": plan["candidate"], "previous": plan["baseline"]}


def teardown(plan: dict[str, Any]) -> dict[str, Any]:
    """Stop the old version, unless it became stable again meanwhile."""
    if registry().pointers(plan["model"]).stable == plan["baseline"]:
        record_event(plan, "teardown_skipped", reason="the old version is stable again")
        return {"removed": None}
    runtime().remove(plan["model"], plan["baseline"])
    scrape(plan["model"], plan["baseline"], None)
    record_event(plan, "torn_down", version=plan["baseline"])
    return {"removed": plan["baseline"]}


def outcome(plan: dict[str, Any]) -> str:
    kinds = {e["event"] for e in events(plan)}
    if "promoted" in kinds:
        return "promoted"
    if "rolled_back" in kinds:
        return "rolled_back"
    if "failure" in kinds:
        return "failed"
    return "unfinished"


def finish(plan: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
    """Write the report and free the model for its next release (only if this run holds it).

    Called by the rollback as soon as it is done and by the final report task; the second call
    rewrites the report with whatever came after and records nothing twice.
    """
    if not plan:
        return {"outcome": "refused", "report": None}
    from paddle_canary.report.html import write_report
    result = outcome(plan)
    if not any(e["event"] == "finished" and e.get("outcome") == result for e in events(plan)):
        record_event(plan, "finished", outcome=result)
    report_path = write_report(plan, events(plan), paths())
    lock.release(paths().registry_root, plan["model"], run_id)
    return {"outcome": result, "report": str(report_path)}

