"""How a release's looks use the judge (issue #10 wired into the controller): each look builds
on the previous one of its step unless the window moved, which starts it fresh instead of
raising; each step is judged with its share of the release's alpha; the candidate is deployed
with the stable version as its shadow (paired analysis). Doubles of the router and runtime
(tests/contracts holds them to the real ones' contract), the real registry, plan and journal."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from doubles import CountsProvider
from paddle_canary.analysis import spending
from paddle_canary.release import events as ev
from paddle_canary.release.plan import PlanError, ReleasePlan

from test_controller import MODEL, settings, start  # noqa: F401 - the fixture is used
from analysis_helpers import counts  # noqa: E402 - test_controller puts it on the path


class WindowProvider(CountsProvider):
    """Counts over the window asked for, as Prometheus gives them (the plain double returns
    its counts with their own window, whatever the look asks)."""

    def window_counts(self, model, version, *, start=None, end=None, window_s=None,
                      paired_with=None):
        found = super().window_counts(model, version, start=start, end=end)
        if start is None or end is None or not hasattr(found, "requests"):
            return found
        return dataclasses.replace(found, start=float(start), end=float(end))


def provider(seed: int = 1, n: int = 40000) -> WindowProvider:
    rng = np.random.default_rng(seed)
    return WindowProvider({"v1": counts(rng, "v1", n), "v2": counts(rng, "v2", n)})


def test_a_look_builds_on_the_previous_look_of_its_step(settings):
    release = start(settings, provider=provider())
    release.deploy()
    first = release.judge(since=0.0, step=1, weight=5)
    second = release.judge(since=0.0, step=1, weight=5, previous=first)
    assert second["note"] == "" and second["window"]["start"] == first["window"]["start"]
    for new, old in zip(second["gates"][1:], first["gates"][1:]):
        for c_new, c_old in zip(new["checks"], old["checks"]):   # never wider
            if None not in c_old["interval"] and None not in c_new["interval"]:
                assert c_old["interval"][0] - 1e-12 <= c_new["interval"][0]
                assert c_new["interval"][1] <= c_old["interval"][1] + 1e-12


def test_a_stable_restart_starts_the_window_fresh_instead_of_raising(settings):
    """The restart moves the window's start: the previous look is not an earlier look at the
    new window. The look starts fresh and says so (analyze used to raise ValueError here,
    which the trigger turned into an 'analysis error' inconclusive at every look)."""
    release = start(settings, provider=provider())
    release.deploy()
    deployed = ev.first(release.events(), ev.Deployed)
    release.record(dataclasses.replace(deployed, ts=deployed.ts - 60))   # a minute ago
    first = release.judge(since=0.0, step=1, weight=5)
    release.runtime.restart(MODEL, "v1")
    second = release.judge(since=0.0, step=1, weight=5, previous=first)
    assert second["status"] == "inconclusive" and "stable v1 restarted" in second["reason"]
    assert second["window"]["start"] > first["window"]["start"]
    assert second["note"].startswith("previous look not built on") and "window" in \
        second["note"]
    # the next look is of the new window, which starts where the restarted look said it does
    third = release.judge(since=0.0, step=1, weight=5, previous=second)
    assert third["note"] == "" and third["gates"][0]["status"] == "pass"
    assert math.isclose(third["window"]["start"], second["window"]["start"], abs_tol=1e-6)
    looks = ev.of_kind(release.events(), ev.Look)
    assert [bool(look.verdict["note"]) for look in looks] == [False, True, False]


@pytest.mark.parametrize("previous", [
    {"status": "inconclusive", "reason": "analysis error: boom", "gates": []},  # the trigger's
    {"status": "maybe"},
    "not even a dict",
])
def test_a_previous_that_is_not_a_verdict_starts_the_look_fresh(settings, previous):
    release = start(settings, provider=provider())
    release.deploy()
    verdict = release.judge(since=0.0, step=1, weight=5, previous=previous)
    assert verdict["note"].startswith("previous look not built on: not a verdict")
    assert verdict["status"] in ("pass", "inconclusive")   # judged on its own data
    release.runtime.fail_health(MODEL, "v2")        # the health gate reads it too
    verdict = release.judge(since=0.0, step=1, weight=5, previous=previous)
    assert verdict["health"]["status"] == "inconclusive"   # within the grace: a fresh start


def test_a_previous_look_of_other_versions_is_not_built_on(settings):
    release = start(settings, provider=provider())
    release.deploy()
    first = release.judge(since=0.0, step=1, weight=5)
    other = dict(first, candidate="v3")
    verdict = release.judge(since=0.0, step=1, weight=5, previous=other)
    assert "not risk-score v2 vs v1" in verdict["note"]


def test_each_step_is_judged_with_its_share_of_the_release_alpha(settings):
    release = start(settings, provider=provider(n=3000))       # steps 5, 50, 100
    release.deploy()
    total = release.plan.gates["alpha"]
    alphas = [release.judge(since=0.0, step=s, weight=w)["alpha"]
              for s, w in ((1, 5), (2, 50), (3, 100))]
    assert alphas == [pytest.approx(spending.step_alpha(total, i, 3)) for i in range(3)]
    assert sum(alphas) <= total + 1e-12 and alphas[0] > alphas[1] > alphas[2]
    assert release.judge(since=0.0)["alpha"] == total   # a look outside the steps

    def width(verdict):
        gate = next(g for g in verdict["gates"] if g["gate"] == "rejection_rate")
        return gate["interval"][1] - gate["interval"][0]
    looks = [e.verdict for e in ev.of_kind(release.events(), ev.Look)]
    assert width(looks[0]) < width(looks[1]) < width(looks[2])   # less alpha, wider interval


@pytest.mark.parametrize("paired, shadow", [(True, "v1"), (False, None)])
def test_the_candidate_is_deployed_with_the_stable_as_its_shadow(settings, paired, shadow):
    release = start(settings, paired=paired)
    release.deploy()
    assert (MODEL, "v2", shadow) in release.runtime.deploys
    assert all(s is None for m, v, s in release.runtime.deploys if v == "v1")  # stable: none


def test_paired_must_be_a_boolean(settings):
    with pytest.raises(PlanError, match="paired must be true or false"):
        start(settings, paired="yes")


def test_a_plan_recorded_before_paired_existed_is_paired():
    old = {"model": MODEL, "candidate": "v2", "baseline": "v1", "steps": [5, 100],
           "step_interval_s": 60, "approvals_before": [], "teardown_delay_s": 0,
           "poll_interval_s": 1, "max_extensions": 0, "runtime": "local", "gates": {},
           "run_id": "r"}
    assert ReleasePlan.from_dict(old).paired is True


def test_the_cli_asks_for_an_unpaired_release_only_when_told():
    from paddle_canary.cli import build_parser
    from paddle_canary.release_commands import request_from_args

    parse = build_parser().parse_args
    assert "paired" not in request_from_args(parse(["release", MODEL, "v2"]))
    assert request_from_args(parse(["release", MODEL, "v2", "--unpaired"]))["paired"] is False


def test_the_shadow_phase_mirrors_stable_then_the_first_step_ends_it(settings):
    release = start(settings, shadow_s=30, shadow_mirror=50)
    release.deploy()
    out = release.start_shadow()
    live = release.router.live(MODEL)
    assert (live.weight, live.mirror, out["step"]) == (0, 50, 0)   # nobody routed to it
    release.set_step_weight(1, 5)
    live = release.router.live(MODEL)
    assert (live.weight, live.mirror) == (5, 0)
    assert [e.share for e in ev.of_kind(release.events(), ev.MirrorSet)] == [50, 0]


def test_no_mirror_to_an_unhealthy_candidate(settings):
    from paddle_canary.release.controller import ReleaseFailed
    release = start(settings, shadow_s=30)
    release.deploy()
    release.runtime.fail_health(MODEL, "v2")
    with pytest.raises(ReleaseFailed, match="refused"):
        release.start_shadow()
    assert release.router.live(MODEL).mirror == 0


def test_the_shadow_phase_is_a_step_of_the_release_alpha(settings):
    release = start(settings, shadow_s=30, provider=provider())        # shadow + 3 steps
    release.deploy()
    total = release.plan.gates["alpha"]
    alphas = [release.judge(since=0.0, step=s, weight=0)["alpha"] for s in range(4)]
    assert alphas == [pytest.approx(spending.step_alpha(total, i, 4)) for i in range(4)]
    assert sum(alphas) <= total + 1e-12


@pytest.mark.parametrize("field, value, match", [
    ("shadow_s", -1, "shadow_s must be at least 0"),
    ("shadow_mirror", 0, "shadow_mirror must be an integer percentage"),
    ("shadow_mirror", 12.5, "shadow_mirror must be an integer percentage"),
])
def test_bad_shadow_fields_are_refused(settings, field, value, match):
    with pytest.raises(PlanError, match=match):
        start(settings, **{field: value})
