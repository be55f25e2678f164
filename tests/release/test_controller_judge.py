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
from paddle_canary.analysis.counts import PairedCounts
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
    # the steps' own windows spend half the release's alpha; the release window the other half
    assert alphas == [pytest.approx(spending.step_alpha(total / 2, i, 3)) for i in range(3)]
    assert sum(alphas) + release.plan.release_alpha(total) <= total + 1e-12
    assert alphas[0] > alphas[1] > alphas[2]
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
    from paddle_canary.release.run_commands import request_from_args

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
    assert alphas == [pytest.approx(spending.step_alpha(total / 2, i, 4)) for i in range(4)]
    assert sum(alphas) + release.plan.release_alpha(total) <= total + 1e-12


@pytest.mark.parametrize("field, value, match", [
    ("shadow_s", -1, "shadow_s must be at least 0"),
    ("shadow_mirror", 0, "shadow_mirror must be an integer percentage"),
    ("shadow_mirror", 12.5, "shadow_mirror must be an integer percentage"),
])
def test_bad_shadow_fields_are_refused(settings, field, value, match):
    with pytest.raises(PlanError, match=match):
        start(settings, **{field: value})


class TwoWindowProvider(CountsProvider):
    """Many identical rows over the release so far (a shadow phase's mirrored traffic, scored
    by both versions), few of the candidate's own in the step's window."""

    def __init__(self, step_rows: int, release_rows: int = 40000):
        rng = np.random.default_rng(7)
        self.step_start = math.inf     # set once the deploy's time is known
        self.windows = {}
        for key, n_cand in (("step", step_rows), ("release", release_rows)):
            base = counts(rng, "v1", 40000)
            cand = counts(rng, "v2", n_cand)
            same = cand.score_sum
            paired = PairedCounts(shadow_version="v1", rows=cand.rows,
                                  candidate_score_sum=same, stable_score_sum=same)
            self.windows[key] = {"v1": base, "v2": dataclasses.replace(cand, paired=paired)}
        super().__init__()

    def window_counts(self, model, version, *, start=None, end=None, window_s=None,
                      paired_with=None):
        key = "step" if start >= self.step_start - 1e-6 else "release"
        return dataclasses.replace(self.windows[key][version], start=float(start),
                                   end=float(end))


def _backdated_deploy(release, seconds: float) -> float:
    deployed = ev.first(release.events(), ev.Deployed)
    release.record(dataclasses.replace(deployed, ts=deployed.ts - seconds))
    return deployed.ts - seconds


@pytest.mark.parametrize("step_rows, expected", [(100, "pass"), (30, "inconclusive")])
def test_a_short_step_passes_on_the_release_so_far(settings, step_rows, expected):
    """At a 5 % step of 20 s the candidate has ~100 rows of its own: too few for any gate.
    The release so far (here 40,000 rows scored by both) decides, when the step's own rows
    reach min_samples (60) and do not fail."""
    windows = TwoWindowProvider(step_rows)
    release = start(settings, gates={"min_samples": 60}, provider=windows)
    release.deploy()
    deployed_at = _backdated_deploy(release, 120)
    since = windows.step_start = deployed_at + 100
    first = release.judge(since=since, step=1, weight=5)
    assert first["status"] == expected, first["reason"]
    rw = first["release_window"]
    assert rw["status"] == "pass" and math.isclose(rw["window"]["start"], deployed_at)
    assert rw["alpha"] == pytest.approx(release.plan.release_alpha(release.plan.gates["alpha"]))
    own = {g["gate"]: g["samples"]["candidate"] for g in first["gates"][1:]}
    assert own["rejection_rate"] == step_rows                 # the step's own rows are shown
    # the next look (the next step's too) builds on the release window: nothing widens
    second = release.judge(since=since + 10, step=2, weight=50)
    assert second["release_window"]["note"] == ""
    for new, old in zip(second["release_window"]["gates"], rw["gates"]):
        for c_new, c_old in zip(new["checks"], old["checks"]):
            if None not in c_old["interval"] and None not in c_new["interval"]:
                assert c_old["interval"][0] - 1e-12 <= c_new["interval"][0]
                assert c_new["interval"][1] <= c_old["interval"][1] + 1e-12


def test_a_release_window_fail_fails_a_step_too_young_to_see_it(settings):
    """The candidate flips decisions on 3 % of the rows over the release so far; the step
    window's 30 rows see nothing: the look fails on the release window."""
    windows = TwoWindowProvider(30)
    cand = windows.windows["release"]["v2"]
    windows.windows["release"]["v2"] = dataclasses.replace(
        cand, paired=dataclasses.replace(cand.paired, approve_to_reject=0.03 * cand.rows))
    release = start(settings, gates={"min_samples": 60}, provider=windows)
    release.deploy()
    deployed_at = _backdated_deploy(release, 120)
    windows.step_start = deployed_at + 100
    verdict = release.judge(since=deployed_at + 100, step=1, weight=5)
    assert verdict["status"] == "fail"
    assert "rejection_rate fail over the release so far" in verdict["reason"]


def test_no_release_window_when_the_step_starts_at_the_deploy(settings):
    release = start(settings, provider=provider())
    release.deploy()
    assert "release_window" not in release.judge(since=0.0, step=1, weight=5)
