"""Evidence carried across steps (analysis.release_window): a gate of a look takes the release
window's pass only when the step's own window holds min_samples candidate rows and does not fail
it; a release-window fail fails the look; a step-window fail is never overridden."""

from __future__ import annotations

import json
import math

import pytest

from paddle_canary.analysis.release_window import carry
from paddle_canary.analysis.verdict import FAIL, INCONCLUSIVE, PASS, GateResult, Verdict

GATES = ("score_distribution", "rejection_rate", "latency_p95", "errors")


def gate(name: str, status: str, n_candidate: float, reason: str = "") -> GateResult:
    return GateResult(gate=name, status=status, effect=0.0, interval=(-0.1, 0.1),
                      samples=(5000.0, float(n_candidate)),
                      reason=reason or f"{name} {status}", thresholds={"min_samples": 60})


def verdict(statuses: dict[str, str], n_candidate: float, start: float) -> Verdict:
    gates = tuple(gate(g, statuses.get(g, PASS), n_candidate) for g in GATES)
    status = (FAIL if FAIL in statuses.values() else
              PASS if all(s == PASS for s in statuses.values()) else INCONCLUSIVE)
    return Verdict(status=status, model="risk-score", baseline="v1", candidate="v2",
                   window_start=start, window_end=100.0, evaluated_at=100.0, reason="step",
                   gates=gates)


ALL_INCONCLUSIVE = {g: INCONCLUSIVE for g in GATES}
ALL_PASS = {g: PASS for g in GATES}


def test_a_step_with_enough_rows_of_its_own_passes_on_the_release_so_far():
    step = verdict(ALL_INCONCLUSIVE, 100, start=80.0)
    release = verdict(ALL_PASS, 4000, start=0.0)
    out = carry(step, release, min_samples=60)
    assert out.status == PASS and "over the release so far" in out.reason
    for g in out.gates:
        assert g.status == PASS and "100 s since the candidate was deployed" in g.reason
        assert g.interval == (-0.1, 0.1) and g.samples == (5000.0, 100.0)  # the step's own
    json.dumps(out.to_dict(), allow_nan=False)


def test_too_few_rows_of_its_own_stay_inconclusive_and_say_why():
    out = carry(verdict(ALL_INCONCLUSIVE, 40, 80.0), verdict(ALL_PASS, 4000, 0.0), 60)
    assert out.status == INCONCLUSIVE
    assert all("this step has 40 candidate rows of its own; min_samples 60" in g.reason
               for g in out.gates)


def test_the_release_window_failing_a_gate_fails_the_look():
    step = verdict({**ALL_PASS, "rejection_rate": INCONCLUSIVE}, 30, 80.0)
    release = verdict({**ALL_PASS, "rejection_rate": FAIL}, 4000, 0.0)
    out = carry(step, release, 60)
    assert out.status == FAIL and out.failed_gates() == ["rejection_rate"]
    assert out.reason.startswith("rejection_rate fail over the release so far")


@pytest.mark.parametrize("release_status", [PASS, INCONCLUSIVE, FAIL])
def test_a_step_window_fail_is_never_overridden(release_status):
    step = verdict({**ALL_PASS, "latency_p95": FAIL}, 500, 80.0)
    out = carry(step, verdict({g: release_status for g in GATES}, 4000, 0.0), 60)
    assert out.status == FAIL
    assert out.gates[2].status == FAIL and out.gates[2].reason == "latency_p95 fail"


def test_no_release_window_or_other_versions_leave_the_step_alone():
    step = verdict(ALL_INCONCLUSIVE, 500, 80.0)
    assert carry(step, None, 60) is step
    other = Verdict(**{**verdict(ALL_PASS, 4000, 0.0).__dict__, "candidate": "v3"})
    assert carry(step, other, 60) is step


def test_the_release_window_never_turns_a_pass_inconclusive():
    step = verdict(ALL_PASS, 500, 80.0)
    out = carry(step, verdict(ALL_INCONCLUSIVE, 4000, 0.0), 60)
    assert out.status == PASS and out.reason == "all gates pass"
    assert not math.isnan(out.gates[0].effect)
