"""The live nginx's routing decisions, read through its /canary/route echo (no backend needed).

The echo location runs the same split_clients and map as user traffic, so it shows what nginx
decides for a user ID without sending 10,000 requests through a model.
"""

from __future__ import annotations

import http.client
import signal

import pytest

from paddle_canary import process
from paddle_canary.traffic.base import InvalidWeight, RouterError
from paddle_canary.traffic.buckets import bucket, routes_to_candidate
from paddle_canary.traffic.nginx import NginxRouter
from paddle_canary.traffic.nginx_process import children
from paddle_canary.traffic.nginx_template import TEMPLATE

from traffic_helpers import MODEL, route

USERS = [f"user-{i:06d}" for i in range(1, 10_001)]
# Nothing needs to listen on these: only the echo location is asked.
STABLE, CANDIDATE = "http://127.0.0.1:9", "http://127.0.0.1:10"


def live_routes(router: NginxRouter, users) -> dict[str, tuple[str, int]]:
    conn = http.client.HTTPConnection("127.0.0.1", router.state.status_port, timeout=5)
    out = {}
    try:
        for user in users:
            conn.request("GET", f"/canary/route/{MODEL}", headers={"X-User-ID": user})
            route, b = conn.getresponse().read().decode().split()
            out[user] = (route, int(b))
    finally:
        conn.close()
    return out


@pytest.fixture
def router(gateway_factory):
    return gateway_factory(STABLE, CANDIDATE, weight=5)


@pytest.mark.slow
def test_live_nginx_routes_10000_users_as_predicted_and_keeps_canary_users(router):
    canary_before: set[str] = set()
    for weight in (5, 15, 50):
        router.set_weight(MODEL, weight)
        assert router.verify_weight(MODEL, weight)
        live = live_routes(router, USERS)
        wrong = [u for u in USERS if live[u] != (
            "candidate" if routes_to_candidate(u, weight, MODEL) else "stable", bucket(u, MODEL))]
        assert not wrong, f"weight {weight}: {len(wrong)} users routed unlike predicted: {wrong[:5]}"
        canary = {u for u in USERS if live[u][0] == "candidate"}
        share = 100 * len(canary) / len(USERS)
        assert abs(share - weight) <= 1.0, f"weight {weight}: {share:.2f}% to the candidate"
        assert canary_before <= canary, f"{len(canary_before - canary)} users left the canary"
        canary_before = canary


def test_hash_matches_nginx_for_every_tail_length(router):
    keys = ["", "a", "ab", "abc", "abcd", "abcde", "user-1", "x" * 63, "ÿ-latin1"]
    keys = [k for k in keys if k]
    live = live_routes(router, keys)
    for key in keys:
        # http.client sends header text as latin-1 bytes; hash those bytes.
        assert live[key][1] == bucket(key.encode("latin-1"), MODEL), key


@pytest.mark.parametrize("weight, expected", [(0, "stable"), (100, "candidate")])
def test_weights_0_and_100_send_everyone_one_way(router, weight, expected):
    router.set_weight(MODEL, weight)
    routes = {route for route, _ in live_routes(router, USERS[:2000]).values()}
    assert routes == {expected}


def test_request_without_user_id_is_routed_to_stable(router):
    router.set_weight(MODEL, 100)
    assert router.route_of(MODEL, None) == ("no_user", None)
    assert router.route_of(MODEL, "user-000001")[0] == "candidate"


@pytest.mark.parametrize("bad", [-1, 101, 5.5, "5", True, None])
def test_bad_weight_is_refused_and_nothing_moves(router, bad):
    before = (router.live_status(), router.nginx.conf_path.read_text(),
              router.state_path.read_text())
    with pytest.raises(InvalidWeight):
        router.set_weight(MODEL, bad)
    assert (router.live_status(), router.nginx.conf_path.read_text(),
            router.state_path.read_text()) == before
    assert router.weight(MODEL) == 5


def test_config_nginx_refuses_is_not_installed_and_old_weight_keeps_serving(router):
    router.set_weight(MODEL, 15)
    live_before = live_routes(router, USERS[:500])
    # A backend nginx cannot resolve: Python accepts the URL, `nginx -t` does not.
    with pytest.raises(RouterError, match="nginx refused the new config") as err:
        router.apply(route(STABLE, "http://no-such-backend.invalid:8000", 15))
    assert "no-such-backend.invalid" in str(err.value)
    # A broken template override (a directive nginx does not know).
    broken = NginxRouter.attach(router.workdir, template=TEMPLATE.replace(
        "server_tokens off;", "server_tokens off; no_such_directive on;"))
    with pytest.raises(RouterError, match="no_such_directive"):
        broken.set_weight(MODEL, 50)
    assert router.weight(MODEL) == 15 and router.verify_weight(MODEL, 15)
    assert router.live(MODEL).candidate.url == CANDIDATE
    assert live_routes(router, USERS[:500]) == live_before
    assert "no_such_directive" not in router.nginx.conf_path.read_text()
    assert not (router.workdir / "nginx.conf.new").exists()


def test_malformed_backend_urls_are_refused_before_anything_starts(tmp_path):
    for url in ("127.0.0.1:8000", "https://127.0.0.1:1", "http://127.0.0.1", "http://h:1/x",
                "http://a b:1", None):
        with pytest.raises(RouterError):
            NginxRouter(tmp_path, process.free_port()).start([route(url)])
    assert not (tmp_path / "nginx.conf").exists()


def test_weight_above_zero_needs_a_candidate(gateway_factory):
    router = gateway_factory(STABLE, None)
    with pytest.raises(RouterError, match="need a candidate"):
        router.set_weight(MODEL, 5)
    assert router.weight(MODEL) == 0


def test_second_process_attaches_and_drives_the_same_nginx(router):
    other = NginxRouter.attach(router.workdir)
    other.set_weight(MODEL, 25)
    assert router.weight(MODEL) == 25 and router.verify_weight(MODEL, 25)
    assert other.pid() == router.pid()


def test_stop_ends_master_and_workers_by_pid(gateway_factory):
    router = gateway_factory(STABLE, CANDIDATE)
    master = router.pid()
    workers = children(master)
    assert workers
    router.stop()
    assert not process.pid_alive(master)
    assert not any(process.pid_alive(w) for w in workers)
    assert not router.is_running()
    with pytest.raises(RouterError, match="not answering"):
        router.weight(MODEL)
    assert not router.verify_weight(MODEL, 0)
    assert not router.health().up


def test_killed_master_is_reported_and_its_orphaned_workers_are_stopped(gateway_factory):
    router = gateway_factory(STABLE, CANDIDATE, weight=5)
    workers = children(router.pid())
    process.stop_pid(router.pid(), signal.SIGKILL, 5)
    with pytest.raises(RouterError, match="orphaned nginx worker"):
        router.set_weight(MODEL, 15)
    assert any(process.pid_alive(w) for w in workers)  # nginx workers outlive their master
    health = router.health()
    assert not health.up and "orphaned worker" in health.detail
    router.stop()
    assert not any(process.pid_alive(w) for w in workers)
    assert not process.port_open(router.state.port)
