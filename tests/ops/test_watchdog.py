"""The release watchdog finds what a crash leaves behind and repairs only what is safe, with
the real registry, lock and journal and the in-memory router and runtime doubles
(tests/doubles.py: the same contract tests run them against nginx and the local runtime).
The Airflow run's state comes in as a function, as the watchdog DAG gives it."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest

from doubles import CountsProvider, MemoryRouter, MemoryRuntime
from paddle_canary.ops import watchdog
from paddle_canary.release import controller, lock
from paddle_canary.release import events as ev
from paddle_canary.release.controller import Release
from paddle_canary.settings import Settings
from paddle_canary.traffic.base import Backend, ModelRoute

MODEL = "risk-score"


class World:
    def __init__(self, tmp_path, registry_root):
        root = tmp_path / "registry"
        shutil.copytree(registry_root, root,
                        ignore=shutil.ignore_patterns("release.lock", ".lock"))
        self.settings = Settings(home=tmp_path / "home", registry_root=root,
                                 prometheus_url="http://127.0.0.1:9")
        self.registry = controller.registry_at(self.settings)
        self.router, self.runtime = MemoryRouter(), MemoryRuntime()
        self.states: dict[str, str] = {}
        for model in self.registry.models():
            stable = self.registry.pointers(model).stable
            ep = self.runtime.deploy(model, stable)
            self.router.apply(ModelRoute(model, stable=Backend(stable, ep.url)))

    def open_release(self, plan) -> Release:
        from paddle_canary.release.plan import ReleasePlan
        plan = ReleasePlan.from_dict(plan) if isinstance(plan, dict) else plan
        return Release(plan, runtime=self.runtime, router=self.router, registry=self.registry,
                       journal=controller.journal_of(plan, self.settings),
                       provider=CountsProvider())

    def start(self, run_id="run-1", weight=25) -> Release:
        plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 25, 100],
                                   "approvals_before": []}, run_id=run_id,
                                  settings=self.settings)
        release = self.open_release(plan)
        release.deploy()
        release.set_step_weight(2, weight)
        return release

    def check(self, **kw):
        return watchdog.check_model(
            self.settings, MODEL, registry=self.registry, router=self.router,
            runtime=self.runtime, run_state=lambda run_id: self.states.get(run_id, "gone"),
            open_release=self.open_release, **kw)


@pytest.fixture
def world(tmp_path, registry_root):
    return World(tmp_path, registry_root)


def kinds(findings):
    return [f.kind for f in findings]


def test_a_lock_whose_run_is_gone_is_rolled_back_without_rejecting_the_candidate(world):
    release = world.start()
    world.states["run-1"] = "failed"
    (finding,) = world.check()
    assert finding.kind == "stale_lock" and "run-1" in finding.detail
    assert finding.repaired and finding.error is None
    live = world.router.live(MODEL)
    assert live.candidate is None and live.stable.version == "v1"
    assert world.runtime.endpoint(MODEL, "v2") is None
    assert world.registry.pointers(MODEL).candidate is None
    assert world.registry.status(MODEL, "v2") != "rejected"  # not the candidate's fault
    assert lock.holder(world.settings.registry_root, MODEL) is None
    events = release.events()
    assert ev.first(events, ev.Failure).task == "watchdog"
    assert ev.outcome(events) == ev.ROLLED_BACK_OUTCOME
    assert world.check() == []  # idempotent: nothing left to find


@pytest.mark.parametrize("state", ["running", "queued", watchdog.UNKNOWN])
def test_a_live_or_unknown_run_is_never_acted_on(world, state):
    world.start()
    world.states["run-1"] = state
    route = world.router.live(MODEL)
    world.router.apply(route.replace(weight=60))  # someone moved the weight by hand
    (finding,) = world.check()
    assert finding.kind == "weight_disagrees" and finding.repaired is None
    assert "60 %" in finding.detail and "25 %" in finding.detail
    assert world.router.live(MODEL).weight == 60
    assert lock.holder(world.settings.registry_root, MODEL)["run_id"] == "run-1"


def test_candidate_traffic_with_no_release_is_cut(world):
    release = world.start()
    release.finish("run-1")  # lock freed, but the gateway still sends 25 %
    (finding,) = world.check()
    assert finding.kind == "traffic_without_release" and finding.repaired
    assert world.router.live(MODEL).weight == 0
    assert ev.of_kind(release.events(), ev.Cut)[-1].reason.startswith("watchdog")
    report_only = world.check(repair=False)
    assert report_only == []


def test_an_orphan_version_is_stopped_but_not_the_one_baking(world):
    release = world.start(weight=100)
    release.promote()
    release.record(ev.TeardownScheduled(
        at=(datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()))
    release.finish("run-1")
    world.runtime.deploy(MODEL, "v0-forgotten")
    findings = world.check()
    assert kinds(findings) == ["orphan_version"]
    assert "v0-forgotten" in findings[0].detail and findings[0].repaired
    assert world.runtime.endpoint(MODEL, "v0-forgotten") is None
    assert world.runtime.endpoint(MODEL, "v1") is not None  # baking: kept


def test_an_overdue_teardown_is_done_once_its_run_is_gone(world):
    release = world.start(weight=100)
    release.promote()
    release.record(ev.TeardownScheduled(
        at=(datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()))
    release.finish("run-1")
    world.states["run-1"] = "running"  # its teardown task may still do it: report only
    (finding,) = world.check()
    assert finding.kind == "teardown_overdue" and finding.repaired is None
    world.states["run-1"] = "failed"
    (finding,) = world.check()
    assert finding.repaired == "stopped v1"
    assert world.runtime.endpoint(MODEL, "v1") is None
    assert ev.first(release.events(), ev.TornDown).version == "v1"
    assert world.check() == []


def test_an_unhealthy_stable_is_reported(world):
    world.runtime.fail_health(MODEL, "v1", "503: scores not finite")
    (finding,) = world.check()
    assert finding.kind == "stable_unhealthy" and "503" in finding.detail
    assert finding.repaired is None


def test_findings_are_kept_for_status(world):
    world.runtime.fail_health(MODEL, "v1")
    path = watchdog.write_status(world.settings, world.check())
    assert path.stat().st_mode & 0o777 == 0o600
    assert watchdog.read_status(world.settings)["findings"][0]["kind"] == "stable_unhealthy"
