"""The release controller against in-memory doubles of the router and the runtime (the same
contract tests run against the real nginx router and local runtime in tests/contracts), with
the real registry, plan, lock and journal. Faults are injected through the doubles."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from doubles import CountsProvider, MemoryRouter, MemoryRuntime
from paddle_canary.release import controller, lock
from paddle_canary.release import events as ev
from paddle_canary.release.controller import Release, ReleaseFailed
from paddle_canary.release.journal import Journal
from paddle_canary.traffic.base import Backend, ModelRoute, RouterError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from analysis_helpers import counts  # noqa: E402

MODEL = "risk-score"


@pytest.fixture
def settings(isolated_settings):
    return isolated_settings


def start(settings, router=None, runtime=None, provider=None, **request) -> Release:
    plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 50, 100],
                               "approvals_before": [], **request}, run_id="run-1",
                              settings=settings)
    router = router or MemoryRouter()
    runtime = runtime or MemoryRuntime()
    stable = runtime.deploy(MODEL, "v1")
    router.apply(ModelRoute(MODEL, stable=Backend("v1", stable.url)))
    return Release(plan, runtime=runtime, router=router,
                   registry=controller.registry_at(settings),
                   journal=controller.journal_of(plan, settings),
                   provider=provider or CountsProvider())


def kinds(release: Release) -> list[str]:
    return [e.kind for e in release.events()]


def test_deploy_routes_both_versions_with_the_candidate_at_zero(settings):
    release = start(settings)
    release.deploy()
    live = release.router.live(MODEL)
    assert (live.stable.version, live.candidate.version, live.weight) == ("v1", "v2", 0)
    deployed = ev.first(release.events(), ev.Deployed)
    assert deployed.candidate_instance == release.runtime.endpoint(MODEL, "v2").instance
    release.deploy()  # idempotent: nothing started twice
    assert len(release.runtime.endpoints(MODEL)) == 2


def test_the_local_runtime_builds_no_image(settings):
    assert start(settings).build_images() is None


def test_a_step_sets_the_weight_and_records_its_step(settings):
    release = start(settings)
    release.deploy()
    out = release.set_step_weight(1, 5)
    assert release.router.weight(MODEL) == 5 and out["step"] == 1
    weight = ev.of_kind(release.events(), ev.WeightSet)[-1]
    assert (weight.weight, weight.step) == (5, 1)


@pytest.mark.parametrize("fault", ["killed", "restarted", "failing", "gateway_out_of_sync"])
def test_no_weight_goes_up_unless_the_candidate_and_the_gateway_are_healthy(settings, fault):
    release = start(settings)
    release.deploy()
    release.set_step_weight(1, 5)
    if fault == "killed":
        release.runtime.kill(MODEL, "v2")
    elif fault == "restarted":
        release.runtime.restart(MODEL, "v2")
    elif fault == "failing":
        release.runtime.fail_health(MODEL, "v2")
    else:
        release.router.out_of_sync = True
    with pytest.raises(ReleaseFailed, match="refused"):
        release.set_step_weight(2, 50)
    assert release.router.weight(MODEL) == 5
    release.set_step_weight(2, 0)  # lowering is always allowed
    assert release.router.weight(MODEL) == 0


def test_promotion_needs_a_healthy_candidate_right_then(settings):
    release = start(settings)
    release.deploy()
    release.set_step_weight(3, 100)
    release.runtime.kill(MODEL, "v2")
    with pytest.raises(ReleaseFailed, match="is gone"):
        release.promote()
    assert release.registry.pointers(MODEL).stable == "v1"
    assert release.router.live(MODEL).stable.version == "v1"


def test_promote_moves_the_gateway_then_the_registry(settings):
    release = start(settings)
    release.deploy()
    release.set_step_weight(3, 100)
    candidate_url = release.runtime.endpoint(MODEL, "v2").url
    release.promote()
    live = release.router.live(MODEL)
    assert live == ModelRoute(MODEL, stable=Backend("v2", candidate_url))
    assert release.registry.pointers(MODEL).stable == "v2"
    assert release.teardown() == {"removed": "v1"}
    assert release.runtime.endpoint(MODEL, "v1") is None
    assert release.finish("run-1")["outcome"] == "promoted"
    assert lock.holder(settings.registry_root, MODEL) is None


@pytest.mark.parametrize("fault, reason", [
    ("killed", "is gone"), ("restarted", "restarted"), ("gateway_down", "gateway down")])
def test_a_look_fails_when_the_candidate_or_the_gateway_is_gone(settings, fault, reason):
    release = start(settings)
    release.deploy()
    release.set_step_weight(1, 25)
    if fault == "killed":
        release.runtime.kill(MODEL, "v2")
    elif fault == "restarted":
        release.runtime.restart(MODEL, "v2")
    else:
        release.router.down = True
    verdict = release.judge(since=0.0, step=1, weight=25)
    assert verdict["status"] == "fail" and reason in verdict["reason"]
    assert verdict["health"]["blame"] == ("gateway" if fault == "gateway_down" else "candidate")
    look = ev.of_kind(release.events(), ev.Look)[-1]
    assert (look.step, look.weight, look.health["status"]) == (1, 25, "fail")


def test_a_failing_deep_health_is_inconclusive_within_the_grace_then_fails(settings, monkeypatch):
    release = start(settings)
    release.deploy()
    release.runtime.fail_health(MODEL, "v2")
    first = release.judge(since=0.0)
    assert first["gates"][0]["status"] == "inconclusive" and first["status"] != "fail"
    later = dict(first, health=dict(first["health"],
                                    failing_since=first["health"]["failing_since"] - 60))
    assert release.judge(since=0.0, previous=later)["status"] == "fail"


def test_a_stable_restart_makes_the_look_inconclusive_and_restarts_the_window(settings):
    rng = np.random.default_rng(1)
    provider = CountsProvider({"v1": counts(rng, "v1", 40000), "v2": counts(rng, "v2", 40000)})
    release = start(settings, provider=provider)
    release.deploy()
    release.runtime.restart(MODEL, "v1")
    verdict = release.judge(since=0.0)
    assert verdict["status"] == "inconclusive" and "stable v1 restarted" in verdict["reason"]
    assert len(ev.of_kind(release.events(), ev.Deployed)) == 2
    assert release.judge(since=0.0)["gates"][0]["status"] == "pass"  # the new instance is known


def test_healthy_parts_and_failing_counts_fail_on_the_gate(settings):
    rng = np.random.default_rng(2)
    provider = CountsProvider({"v1": counts(rng, "v1", 20000),
                               "v2": counts(rng, "v2", 20000, latency_s=0.2)})
    release = start(settings, provider=provider)
    release.deploy()
    verdict = release.judge(since=0.0)
    assert verdict["status"] == "fail" and "latency" in verdict["reason"]
    assert verdict["gates"][0] == {**verdict["gates"][0], "gate": "health", "status": "pass"}


def test_cut_stops_user_traffic_once(settings):
    release = start(settings)
    release.deploy()
    release.set_step_weight(1, 25)
    assert release.cut("latency gate failed") is True
    assert release.router.weight(MODEL) == 0
    assert release.cut("again") is False
    assert [e.reason for e in ev.of_kind(release.events(), ev.Cut)] == ["latency gate failed"]


def test_rollback_rejects_stops_and_routes_stable_only(settings):
    release = start(settings)
    release.deploy()
    release.set_step_weight(1, 25)
    release.record_failure("step_01.analyze", "latency_p95 fail")
    result = release.rollback()
    assert result == {"outcome": "rolled_back", "reason": "latency_p95 fail", "incomplete": []}
    assert release.router.live(MODEL).candidate is None
    assert release.runtime.endpoint(MODEL, "v2") is None
    assert release.registry.status(MODEL, "v2") == "rejected"
    assert release.registry.pointers(MODEL).candidate is None


def test_rollback_finishes_every_part_it_can_when_the_gateway_is_down(settings):
    release = start(settings)
    release.deploy()
    release.set_step_weight(1, 25)
    release.router.down = True
    release.record_failure("step_01.analyze", "gateway down: nginx is not running",
                           blame="gateway")
    result = release.rollback()
    assert len(result["incomplete"]) == 1 and result["incomplete"][0].startswith("traffic:")
    assert release.runtime.endpoint(MODEL, "v2") is None  # candidate stopped anyway
    # the gateway's fault is not the candidate's: released, not rejected
    assert release.registry.status(MODEL, "v2") != "rejected"
    assert release.registry.pointers(MODEL).candidate is None
    rolled = ev.first(release.events(), ev.RolledBack)
    assert rolled.incomplete == result["incomplete"]
    assert release.finish("run-1")["outcome"] == "rolled_back"
    assert lock.holder(settings.registry_root, MODEL) is None  # the model is free again


def test_rollback_survives_a_runtime_that_cannot_stop_the_candidate(settings):
    release = start(settings)
    release.deploy()
    release.runtime.refuse_remove = True
    release.record_failure("cli", "rolled back by hand")
    result = release.rollback()
    assert [p.split(":")[0] for p in result["incomplete"]] == ["candidate"]
    assert release.router.live(MODEL).candidate is None
    assert release.registry.status(MODEL, "v2") == "rejected"


def test_deploy_refuses_while_another_candidate_has_traffic(settings):
    release = start(settings)
    runtime, router = release.runtime, release.router
    other = runtime.deploy(MODEL, "v9")
    router.apply(router.live(MODEL).replace(candidate=Backend("v9", other.url), weight=10))
    with pytest.raises(ReleaseFailed, match="another candidate"):
        release.deploy()
    assert router.live(MODEL).candidate.version == "v9"


def test_a_router_without_mirror_says_so_before_changing_anything(settings):
    router = MemoryRouter(supports=())
    release = start(settings, router=router)
    release.deploy()
    before = list(router.applied)
    with pytest.raises(RouterError, match="does not support mirror"):
        router.apply(router.live(MODEL).replace(mirror=10))
    assert router.applied == before


def test_the_journal_is_private_and_survives_a_torn_line(settings):
    release = start(settings)
    path = release.journal.path
    assert path.stat().st_mode & 0o777 == 0o600
    with open(path, "a") as fh:
        fh.write('{"event": "weight", "ts": 1, "wei')  # a crash mid-write
    release.deploy()
    assert kinds(release) == [ev.PLAN, ev.DEPLOYED]
    assert Journal(path).read()[-1].kind == ev.DEPLOYED


def test_an_approval_prompt_says_whether_the_candidate_answers_right_now(settings):
    from paddle_canary.release import messages

    release = start(settings)
    release.deploy()
    body = messages.approval_body(release.plan, release.events(), 50, release.candidate_health())
    assert "Candidate v2: healthy" in body
    release.runtime.fail_health(MODEL, "v2")
    assert "Candidate v2: **failing** (503: scores not finite)" in release.candidate_health()
    release.runtime.kill(MODEL, "v2")
    assert "Candidate v2: **gone**" in release.candidate_health()


def test_a_header_route_the_router_cannot_serve_is_refused_before_the_candidate_starts(settings):
    from paddle_canary.traffic.base import MIRROR, Unsupported
    release = start(settings, router=MemoryRouter(supports={MIRROR}),
                    header_route={"name": "X-Canary", "value": "testers"})
    with pytest.raises(Unsupported, match="header routes"):
        release.deploy()
    assert [e.version for e in release.runtime.endpoints(MODEL)] == ["v1"]
    assert release.router.live(MODEL).candidate is None


def test_the_header_route_is_kept_by_the_steps_and_cleared_by_the_promotion(settings):
    from paddle_canary.traffic.base import HeaderRoute
    release = start(settings, header_route={"name": "X-Canary", "value": "testers"})
    release.deploy()
    assert release.router.live(MODEL).header == HeaderRoute("X-Canary", "testers")
    for step, weight in enumerate((5, 50, 100), 1):
        release.set_step_weight(step, weight)
        assert release.router.live(MODEL).header == HeaderRoute("X-Canary", "testers")
    release.promote()
    assert release.router.live(MODEL).header is None
