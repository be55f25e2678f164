"""A release's header route on the real nginx gateway, set and cleared by the controller:
requests carrying the plan's header reach the candidate from deploy on, at any weight, and no
longer after promotion or rollback; other models' users never see it."""

from __future__ import annotations

import httpx
import pytest

from paddle_canary import process
from paddle_canary.localstack.stack import LocalStack, StackPorts
from paddle_canary.release import controller
from paddle_canary.traffic.base import HeaderRoute

pytestmark = pytest.mark.slow
MODEL, OTHER = "risk-score", "digit-seven"
TESTERS = {"name": "X-Canary", "value": "testers"}
USERS = [f"user-{i:03d}" for i in range(24)]
CLIENT = httpx.Client(timeout=10)  # keep-alive across the module's requests


@pytest.fixture(scope="module", autouse=True)
def close_client():
    yield
    CLIENT.close()


@pytest.fixture
def stack(tmp_path, monkeypatch):
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    s = LocalStack(tmp_path / "stack", model=MODEL, ports=ports)
    for key, value in s.paths.to_env().items():
        monkeypatch.setenv(key, value)
    try:
        s.up(airflow=False, load=False)
        yield s
    finally:
        s.down()


def answered_by(stack, model: str, user: str, headers: dict | None = None) -> str:
    """The version nginx's answer names (X-Model-Version) for ``user`` on ``model``'s route."""
    features = [1.0] * (30 if model == MODEL else 64)
    r = CLIENT.post(f"{stack.gateway_url}/models/{model}/predict",
                   headers={"X-User-ID": user, **(headers or {})},
                   json={"user_id": user, "features": features})
    r.raise_for_status()
    return r.headers["X-Model-Version"]


def versions(stack, model=MODEL, headers=None) -> set[str]:
    return {answered_by(stack, model, u, headers) for u in USERS}


def test_testers_reach_the_candidate_from_deploy_until_promotion(stack):
    plan = controller.prepare({"model": MODEL, "version": "v2", "header_route": TESTERS},
                              run_id="run-header")
    release = controller.open_release(plan)
    other_before = release.router.live(OTHER)
    release.deploy()
    live = release.router.live(MODEL)
    assert (live.weight, live.header) == (0, HeaderRoute("X-Canary", "testers"))
    tester = {"X-Canary": "testers"}
    assert versions(stack, headers=tester) == {"v2"}  # before any public step
    assert versions(stack) == {"v1"}
    assert versions(stack, headers={"X-Canary": "someone-else"}) == {"v1"}
    assert versions(stack, OTHER, headers=tester) == {"v1"}  # another model's users: no change

    release.set_step_weight(1, 5)
    assert release.router.live(MODEL).header == HeaderRoute("X-Canary", "testers")
    assert versions(stack, headers=tester) == {"v2"}
    release.set_step_weight(2, 100)
    release.promote()
    live = release.router.live(MODEL)
    assert (live.stable.version, live.candidate, live.header) == ("v2", None, None)
    assert versions(stack) == versions(stack, headers=tester) == {"v2"}
    assert release.router.live(OTHER) == other_before


def test_rollback_and_cut_clear_the_header_route(stack):
    plan = controller.prepare({"model": MODEL, "version": "v2", "header_route": TESTERS},
                              run_id="run-header-back")
    release = controller.open_release(plan)
    release.deploy()
    tester = {"X-Canary": "testers"}
    assert versions(stack, headers=tester) == {"v2"}
    # the analysis trigger's cut: no user traffic to the candidate, the header included
    assert release.cut("a failing look") is True
    live = release.router.live(MODEL)
    assert (live.weight, live.header, live.candidate.version) == (0, None, "v2")
    assert versions(stack, headers=tester) == {"v1"}
    release.record_failure("step_01.analyze", "a failing look")
    assert release.rollback()["incomplete"] == []
    live = release.router.live(MODEL)
    assert (live.stable.version, live.candidate, live.header) == ("v1", None, None)
    assert versions(stack, headers=tester) == {"v1"}
