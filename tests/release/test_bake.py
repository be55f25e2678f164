"""The bake period's guards (release.bake): after promotion, the new stable is watched with
absolute guards; a breach undoes the promotion at once (traffic, registry, journal), and
nothing acts on missing or untrusted data. Doubles of the router and runtime, the real
registry, journal and judge statistics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from doubles import CountsProvider
from paddle_canary.analysis.counts import NoData
from paddle_canary.release import bake
from paddle_canary.release import events as ev
from paddle_canary.traffic.base import Backend, ModelRoute

from test_controller import MODEL, settings, start  # noqa: F401 - the fixture is used
from analysis_helpers import counts  # noqa: E402 - test_controller puts it on the path

N = 4000


def promoted(settings, release_window: bool = True, **new_stable):
    """A release promoted to v2 after a step that saw v1 reject 37.5 % with no errors; the
    provider then gives v2's series since the promotion as ``new_stable`` says."""
    provider = CountsProvider()
    release = start(settings, provider=provider)
    release.deploy()
    release.set_step_weight(3, 100)
    release.record(ev.StepVerdict(task="step_03.analyze", step=3, weight=100, verdict={
        "status": "pass", "gates": [      # the step's own window: stable had 22 rows at 100 %
            {"gate": "errors", "details": {"baseline_error_rate": 0.0},
             "samples": {"baseline": 22.0}},
            {"gate": "rejection_rate", "details": {"baseline_reject_rate": 0.10},
             "samples": {"baseline": 22.0}}],
        "release_window": {"gates": [     # the release so far: the reference
            {"gate": "errors", "details": {"baseline_error_rate": 0.0},
             "samples": {"baseline": 30000.0}},
            {"gate": "rejection_rate", "details": {"baseline_reject_rate": 0.375},
             "samples": {"baseline": 30000.0}}]} if release_window else None}))
    release.promote()
    release.finish("run-1")
    provider.counts["v2"] = counts(np.random.default_rng(3), "v2", N, **new_stable)
    return release


def test_a_healthy_new_stable_is_left_alone(settings):
    release = promoted(settings)
    seen = bake.watch_once(release)
    assert seen["status"] == "ok", seen["reason"]
    assert {c["check"] for c in seen["checks"]} == {"errors", "latency", "rejection_rate"}
    assert "undo" not in seen and release.registry.pointers(MODEL).stable == "v2"
    assert ev.first(release.events(), ev.Undone) is None


@pytest.mark.parametrize("new_stable, check", [
    ({"error": 0.05}, "error share"),
    ({"latency_s": 0.15}, "requests above 80 ms"),
    ({"reject": 0.45}, "reject share"),
])
def test_a_breach_undoes_the_promotion_at_once(settings, new_stable, check):
    release = promoted(settings, **new_stable)
    old_url = release.runtime.endpoint(MODEL, "v1").url
    seen = bake.watch_once(release)
    assert seen["status"] == "fail" and check in seen["reason"]
    assert seen["undo"]["restored"] == "v1" and seen["undo"]["incomplete"] == []
    assert release.router.live(MODEL) == ModelRoute(MODEL, stable=Backend("v1", old_url))
    assert release.registry.pointers(MODEL).stable == "v1"
    assert release.registry.status(MODEL, "v2") == "rejected"
    undone = ev.first(release.events(), ev.Undone)
    assert undone.by == "bake guard" and check in undone.reason
    assert bake.look(release)["status"] == "undone"          # the trigger stops here
    assert release.teardown() == {"removed": None}             # v1 stays


def test_a_reference_from_few_rows_is_not_used(settings):
    """At 100 % stable's own window had 22 rows (10 % rejected by chance): were that the
    reference, a good new stable rejecting 37.5 % would be undone."""
    release = promoted(settings, release_window=False)
    seen = bake.watch_once(release)
    assert seen["status"] == "ok" and {c["check"] for c in seen["checks"]} == {"errors",
                                                                                "latency"}


def test_a_restarted_new_stable_is_a_breach(settings):
    release = promoted(settings)
    release.provider.counts["v2"] = dataclasses.replace(release.provider.counts["v2"],
                                                        restarts=1.0)
    assert "restarted 1 time(s)" in bake.look(release)["reason"]


@pytest.mark.parametrize("broken", ["nodata", "nan"])
def test_no_data_or_untrusted_counts_act_on_nothing(settings, broken):
    release = promoted(settings, error=0.5)                   # would breach if trusted
    if broken == "nodata":
        release.provider.counts["v2"] = NoData(MODEL, "v2", "Prometheus unreachable")
    else:
        release.provider.counts["v2"] = dataclasses.replace(release.provider.counts["v2"],
                                                            errors=float("nan"))
    seen = bake.watch_once(release)
    assert seen["status"] == "inconclusive" and "undo" not in seen
    assert release.registry.pointers(MODEL).stable == "v2"


def test_a_breach_with_the_previous_version_down_is_reported_not_undone(settings):
    release = promoted(settings, error=0.05)
    release.runtime.fail_health(MODEL, "v1")
    seen = bake.watch_once(release)
    assert seen["status"] == "fail" and "undo" not in seen
    assert "previous version v1" in seen["undo_refused"]
    assert release.registry.pointers(MODEL).stable == "v2"     # traffic stays where it works
