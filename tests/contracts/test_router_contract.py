"""The router contract, run against the in-memory double the controller tests use and against
the real nginx router (no backend needs to answer: only routes are applied and read back)."""

from __future__ import annotations

import pytest

from doubles import MemoryRouter
from paddle_canary import process
from paddle_canary.traffic.base import (Backend, HeaderRoute, InvalidWeight, ModelRoute,
                                        RouterError, Unsupported)
from paddle_canary.traffic.nginx import NginxRouter

A, B = "risk-score", "digit-seven"
STABLE, CANDIDATE = Backend("v1", "http://127.0.0.1:9"), Backend("v2", "http://127.0.0.1:10")


@pytest.fixture(params=["memory", "nginx"])
def router(request, tmp_path):
    if request.param == "memory":
        r = MemoryRouter()
        r.apply(ModelRoute(A, stable=STABLE))
        yield r
        return
    r = NginxRouter(tmp_path / "gw", process.free_port()).start([ModelRoute(A, stable=STABLE)])
    try:
        yield r
    finally:
        r.stop()


def test_apply_then_read_back_the_same_route(router):
    route = ModelRoute(A, stable=STABLE, candidate=CANDIDATE, weight=15, mirror=10,
                       header=HeaderRoute("X-Canary", "team"))
    router.apply(route)
    assert router.live(A) == route and router.verify(route)
    assert router.weight(A) == 15 and router.verify_weight(A, 15)
    router.apply(route)  # idempotent
    assert router.live(A) == route


def test_set_weight_keeps_backends_and_reads_back(router):
    router.apply(ModelRoute(A, stable=STABLE, candidate=CANDIDATE))
    out = router.set_weight(A, 50)
    assert out == router.live(A) and out.weight == 50 and out.candidate == CANDIDATE


def test_models_are_independent(router):
    router.apply(ModelRoute(A, stable=STABLE, candidate=CANDIDATE, weight=5))
    other = ModelRoute(B, stable=Backend("v1", "http://127.0.0.1:11"))
    router.apply(other)
    router.set_weight(A, 95)
    assert router.live(B) == other
    assert sorted(router.models()) == sorted([A, B])
    assert router.live("no-such-model") is None and router.weight("no-such-model") == 0


@pytest.mark.parametrize("bad", [-1, 101, 5.5, "5", True, None])
def test_bad_weights_move_nothing(router, bad):
    router.apply(ModelRoute(A, stable=STABLE, candidate=CANDIDATE, weight=5))
    with pytest.raises(InvalidWeight):
        router.set_weight(A, bad)
    assert router.weight(A) == 5


def test_a_candidate_share_needs_a_candidate(router):
    with pytest.raises(RouterError, match="need a candidate"):
        router.set_weight(A, 5)
    with pytest.raises(RouterError, match="same version"):
        ModelRoute(A, stable=STABLE, candidate=Backend("v1", "http://127.0.0.1:10"))
    assert router.live(A) == ModelRoute(A, stable=STABLE)


def test_health_is_ok_while_it_serves_what_it_was_told(router):
    health = router.health()
    assert health.ok and health.up and health.in_sync


def test_a_router_says_what_it_cannot_do_before_changing_anything():
    router = MemoryRouter(supports=())
    router.apply(ModelRoute(A, stable=STABLE))
    for route in (ModelRoute(A, stable=STABLE, candidate=CANDIDATE, mirror=5),
                  ModelRoute(A, stable=STABLE, candidate=CANDIDATE,
                             header=HeaderRoute("X-Canary", "1"))):
        with pytest.raises(Unsupported):
            router.apply(route)
    assert router.live(A) == ModelRoute(A, stable=STABLE)


def test_nginx_routes_the_longest_model_name_the_registry_accepts(tmp_path):
    from paddle_canary.registry.names import check_model_name

    longest = "m" + "x" * 28 + "z"
    assert check_model_name(longest) == longest and len(longest) == 30
    router = NginxRouter(tmp_path / "gw", process.free_port())
    try:
        router.start([ModelRoute(A, stable=STABLE),
                      ModelRoute(longest, stable=STABLE, candidate=CANDIDATE, weight=5,
                                 mirror=5, header=HeaderRoute("X-Canary", "1"))])
        assert router.live(longest).weight == 5
        assert router.route_of(longest, "user-1", {"X-Canary": "1"})[0] == "header"
    finally:
        router.stop()


def test_the_nginx_gateway_exports_its_routes_for_prometheus(tmp_path):
    """The series the alert rules and the dashboard read (paddle_canary.ops.series), checked
    with promtool; a reload that keeps a weight keeps its 'since'."""
    import shutil
    import subprocess
    import urllib.request

    router = NginxRouter(tmp_path / "gw", process.free_port())
    try:
        router.start([ModelRoute(A, stable=STABLE, candidate=CANDIDATE, weight=5)])

        def scrape():
            with urllib.request.urlopen(f"{router.status_url}/metrics", timeout=5) as resp:
                return resp.read().decode()

        text = scrape()
        assert f'paddle_canary_gateway_weight{{model="{A}"}} 5' in text
        assert f'paddle_canary_gateway_backend_info{{model="{A}",version="v2",role="candidate"}} 1' in text
        since = [l for l in text.splitlines() if l.startswith("paddle_canary_gateway_weight_since")]
        router.apply(ModelRoute(A, stable=STABLE, candidate=Backend("v3", "http://127.0.0.1:12"),
                                weight=5))
        assert [l for l in scrape().splitlines()
                if l.startswith("paddle_canary_gateway_weight_since")] == since
        router.set_weight(A, 25)
        assert f'paddle_canary_gateway_weight{{model="{A}"}} 25' in scrape()
        promtool = shutil.which("promtool")
        if promtool:
            lint = subprocess.run([promtool, "check", "metrics"], input=scrape(),
                                  capture_output=True, text=True, timeout=30)
            assert lint.returncode == 0, lint.stdout + lint.stderr
    finally:
        router.stop()
