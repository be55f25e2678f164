"""Pause/resume, promote --full and undo, through the CLI and the plain functions the DAG and
the analysis trigger read, with the real registry, lock and journal and the in-memory router
and runtime doubles (tests/doubles.py; the same contract tests run them against nginx and the
local runtime)."""

from __future__ import annotations


import pytest

from doubles import CountsProvider, MemoryRouter, MemoryRuntime
from paddle_canary import cli
from paddle_canary.release import controller, manual
from paddle_canary.release import events as ev
from paddle_canary.release.controller import Release
from paddle_canary.traffic.base import Backend, ModelRoute

MODEL = "risk-score"


@pytest.fixture
def settings(isolated_settings_in_env):
    return isolated_settings_in_env


def start(settings, **request) -> Release:
    plan = controller.prepare({"model": MODEL, "version": "v2", "steps": [5, 50, 100],
                               "approvals_before": [], **request}, run_id="run-1",
                              settings=settings)
    router, runtime = MemoryRouter(), MemoryRuntime()
    stable = runtime.deploy(MODEL, "v1")
    router.apply(ModelRoute(MODEL, stable=Backend("v1", stable.url)))
    return Release(plan, runtime=runtime, router=router,
                   registry=controller.registry_at(settings),
                   journal=controller.journal_of(plan, settings), provider=CountsProvider())


def test_pause_stops_the_step_timer_until_resume(settings, capsys):
    release = start(settings)
    release.deploy()
    release.set_step_weight(1, 5)
    assert cli.main(["pause", MODEL, "--reason", "incident on the payments side"]) == 0
    events = release.events()
    paused = ev.of_kind(events, ev.Paused)[0]
    assert paused.reason == "incident on the payments side"
    assert manual.paused_since(events) == paused.ts
    # while held, the step's end moves with the clock: it never ends paused
    until = paused.ts + 10
    assert manual.step_end(events, paused.ts - 50, until, now=paused.ts + 100) == \
        pytest.approx(until + 100)
    assert cli.main(["pause", MODEL]) == 2
    assert "already paused" in capsys.readouterr().err

    assert cli.main(["resume", MODEL]) == 0
    events = release.events()
    held = ev.of_kind(events, ev.Resumed)[0].ts - paused.ts
    assert manual.paused_seconds(events, paused.ts - 50, now=paused.ts + 1e6) == \
        pytest.approx(held)
    # pauses before the moment the end was planned do not count again
    assert manual.step_end(events, paused.ts + held + 1, until, now=paused.ts + 1e6) == until
    assert cli.main(["resume", MODEL]) == 2
    assert "not paused" in capsys.readouterr().err


def test_manual_actions_need_a_running_release(settings, capsys):
    for argv in (["pause", MODEL], ["resume", MODEL],
                 ["promote", MODEL, "--full", "--reason", "hotfix"]):
        assert cli.main(argv) == 2
        assert f"no release of {MODEL} is running" in capsys.readouterr().err


def test_promote_full_skips_the_steps_below_100_only(settings, capsys):
    release = start(settings, steps=[5, 25, 50, 100])
    release.deploy()
    release.set_step_weight(1, 5)
    with pytest.raises(SystemExit):  # a reason is required
        cli.main(["promote", MODEL, "--full"])
    capsys.readouterr()
    assert cli.main(["promote", MODEL, "--full", "--reason", "  "]) == 2
    assert "needs a --reason" in capsys.readouterr().err
    assert manual.skips_step(release.events(), 25) is None

    assert cli.main(["promote", MODEL, "--full", "--reason", "hotfix for CVE-1"]) == 0
    events = release.events()
    assert "hotfix for CVE-1" in manual.skips_step(events, 25)
    assert manual.skips_step(events, 50)
    assert manual.skips_step(events, 100) is None  # the last step still runs
    assert cli.main(["promote", MODEL, "--full", "--reason", "again"]) == 2
    assert "already asked" in capsys.readouterr().err


def test_no_pause_or_full_promotion_once_the_release_failed(settings, capsys):
    release = start(settings)
    release.deploy()
    release.record_failure("step_01.analyze", "latency")
    assert cli.main(["pause", MODEL]) == 2
    assert "failing or rolled back" in capsys.readouterr().err


def promoted(settings) -> Release:
    release = start(settings)
    release.deploy()
    release.set_step_weight(3, 100)
    release.promote()
    release.finish("run-1")
    return release


def test_undo_during_the_bake_period_restores_the_previous_version(settings):
    release = promoted(settings)
    old_url = release.runtime.endpoint(MODEL, "v1").url
    result = manual.undo(release, "complaints from support", by="bo")
    assert result["incomplete"] == []
    assert release.router.live(MODEL) == ModelRoute(MODEL, stable=Backend("v1", old_url))
    assert release.registry.pointers(MODEL).stable == "v1"
    assert release.registry.status(MODEL, "v2") == "rejected"
    assert release.runtime.endpoint(MODEL, "v2") is None
    undone = ev.of_kind(release.events(), ev.Undone)[0]
    assert (undone.restored, undone.version, undone.by) == ("v1", "v2", "bo")
    assert "complaints from support" in undone.reason
    # the teardown that was waiting for the delay now keeps v1
    assert release.teardown() == {"removed": None}
    assert release.runtime.endpoint(MODEL, "v1") is not None
    with pytest.raises(manual.ManualActionRefused, match="bake period .* is over"):
        manual.undo(release, "twice")


def test_undo_is_refused_when_the_previous_version_is_gone(settings):
    release = promoted(settings)
    release.runtime.kill(MODEL, "v1")
    with pytest.raises(manual.ManualActionRefused, match="previous version v1 is gone"):
        manual.undo(release, "too late")
    assert release.registry.pointers(MODEL).stable == "v2"  # nothing changed
    assert release.router.live(MODEL).stable.version == "v2"


def test_undo_is_refused_before_promotion_and_without_a_reason(settings):
    release = start(settings)
    release.deploy()
    with pytest.raises(manual.ManualActionRefused, match="needs a --reason"):
        manual.undo(release, " ")
    with pytest.raises(manual.ManualActionRefused, match="was not promoted"):
        manual.undo(release, "why")


def test_undo_cli_finds_the_baking_release(settings, capsys):
    promoted(settings)
    # The CLI builds its own release through the factories: no doubles there, so only its
    # refusal path runs here (the restoring path is tested above through manual.undo).
    with pytest.raises(manual.ManualActionRefused):
        manual.baking_journal(settings.replace(home=settings.home / "elsewhere"), MODEL)
    journal, plan = manual.baking_journal(settings, MODEL)
    assert plan["candidate"] == "v2" and plan["run_id"] == "run-1"


def test_status_says_a_release_is_paused_and_a_full_promotion_was_asked(settings, capsys):
    from paddle_canary.release import run_commands as release_commands
    release = start(settings)
    release.deploy()
    assert release_commands._manual_state(settings, MODEL, "run-1") == []
    assert cli.main(["pause", MODEL, "--reason", "incident"]) == 0
    assert cli.main(["promote", MODEL, "--full", "--reason", "hotfix"]) == 0
    paused, full = release_commands._manual_state(settings, MODEL, "run-1")
    assert paused.startswith("PAUSED by ") and "incident" in paused and "resume" in paused
    assert full.endswith(": hotfix")
