"""The Istio router through the router interface, against the fake API server.

No Kubernetes API server can run here, so the API server is :class:`fakes.kube_api.FakeKube`:
it keeps objects in memory, checks Istio's own CRD schemas and istiod's webhook rules, answers
404/409 as the real one does and bumps resourceVersions (see its docstring for what it does not
model). Everything here goes through ``apply`` / ``live`` / ``health`` / ``models`` and the
interface's helpers (``set_weight``, ``verify_weight``, ``apply_verified``).
"""

from __future__ import annotations

import copy
import re

import pytest
from fakes import istio_schema
from fakes.kube_api import FakeKube, api_exception, unreachable

from paddle_canary.errors import UserError
from paddle_canary.kube import names
from paddle_canary.traffic import istio_objects as objects
from paddle_canary.traffic.base import (Backend, HeaderRoute, InvalidWeight, ModelRoute,
                                        RouterError)
from paddle_canary.traffic.istio import IstioRouter, default_custom_objects_api

MODEL, OTHER, NS = "risk-score", "fraud", "ml"
NAME = f"{MODEL}-serving"


@pytest.fixture
def kube():
    kube = FakeKube()
    kube.hooks.append(_never_routes_to_a_missing_subset)
    return kube


def _never_routes_to_a_missing_subset(kube: FakeKube, what: str) -> None:
    """Checked after every write: a stored VirtualService only names subsets its stored
    DestinationRule defines (else Envoy answers 503 for those requests)."""
    if what.startswith("before:"):
        return
    for name in kube.names("virtualservices"):
        for ns in {k[1] for k in kube.objects}:
            vs = kube.get("virtualservices", ns, name)
            if vs is None:
                continue
            dr = kube.get("destinationrules", ns, name) or {"spec": {"subsets": []}}
            defined = {s["name"] for s in dr["spec"]["subsets"]}
            assert objects.referenced_subsets(vs) <= defined, (vs["spec"], defined)


def router(kube, **kw) -> IstioRouter:
    return IstioRouter(NS, api=kube.custom, **kw)


def route(weight=0, *, model=MODEL, stable="v1", candidate="v2", mirror=0,
          header=None) -> ModelRoute:
    return ModelRoute(model, Backend(stable), Backend(candidate) if candidate else None,
                      weight=weight, mirror=mirror, header=header)


def vs(kube, model=MODEL) -> dict:
    return kube.get("virtualservices", NS, f"{model}-serving")


def dr(kube, model=MODEL) -> dict:
    return kube.get("destinationrules", NS, f"{model}-serving")


def methods(kube) -> list[str]:
    return [f"{m.split('_namespaced_')[0]} {a['plural']}" for m, a in kube.calls]


def candidate_buckets(kube) -> set[int]:
    """Buckets the stored VirtualService sends to the candidate (Envoy full-match semantics)."""
    first = next((r for r in vs(kube)["spec"]["http"] if r["name"] == f"{MODEL}-candidate"),
                 None)
    if first is None:
        return set()
    regex = first["match"][0]["headers"]["x-canary-bucket"]["regex"]
    return {b for b in range(100) if re.fullmatch(regex, str(b))}


# ---------------------------------------------------------------- a release through the router

def test_first_route_creates_the_rule_then_the_service(kube):
    r = router(kube)
    r.apply(route())
    assert methods(kube) == [
        "get virtualservices", "get destinationrules",      # nothing there yet
        "create destinationrules", "create virtualservices",
        "get virtualservices", "get destinationrules",      # read back
    ]
    for method, args in kube.calls:
        if method.startswith("create"):
            assert args["field_validation"] == "Strict"   # unknown fields refused, not pruned
            assert args["field_manager"] == "paddle-canary"
    assert istio_schema.istio_errors(vs(kube)) == [] and istio_schema.istio_errors(dr(kube)) == []
    assert r.live(MODEL) == route()


def test_a_whole_release_reads_back_every_step(kube):
    r = router(kube)
    r.apply_verified(route(candidate=None))
    r.apply_verified(route(0))
    for w in [5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 100]:
        assert r.set_weight(MODEL, w) == route(w)
        assert r.weight(MODEL) == w and r.verify_weight(MODEL, w)
        assert not r.verify_weight(MODEL, (w + 5) % 101)
        assert candidate_buckets(kube) == set(range(w))
    # Promotion: v2 becomes stable, alone; the v1 subset goes after the routes left it.
    promoted = ModelRoute(MODEL, Backend("v2"))
    assert r.apply_verified(promoted) == promoted
    assert [s["name"] for s in dr(kube)["spec"]["subsets"]] == ["v2"]
    assert r.health().ok


def test_weight_change_is_one_guarded_merge_patch(kube):
    r = router(kube)
    r.apply(route(5))
    rv = vs(kube)["metadata"]["resourceVersion"]
    kube.calls.clear()
    r.set_weight(MODEL, 15)
    patches = [(m, a) for m, a in kube.calls if m.startswith("patch")]
    assert [a["plural"] for _, a in patches] == ["virtualservices"]  # subsets unchanged
    body = patches[0][1]["body"]
    assert body["metadata"] == {"resourceVersion": rv}
    assert body["spec"]["http"][0]["match"][0]["headers"]["x-canary-bucket"]["regex"] == \
        "^([0-9]|1[0-4])$"
    assert patches[0][1]["field_validation"] == "Strict"


def test_rollback_to_stable_is_one_call(kube):
    r = router(kube)
    r.apply(route(45, mirror=10, header=HeaderRoute("x-canary", "yes")))
    back = r.route(MODEL).without_candidate()
    r.apply_verified(back)
    assert r.weight(MODEL) == 0 and r.live(MODEL) == back
    assert objects.referenced_subsets(vs(kube)) == {"v1"}
    assert [s["name"] for s in dr(kube)["spec"]["subsets"]] == ["v1"]


def test_next_release_swaps_subsets_without_a_gap(kube):
    """v1 -> v2 promoted, then v2 -> v3: subsets are added before routes use them and removed
    after routes left them (checked after every write by the kube fixture's hook)."""
    r = router(kube)
    r.apply(route(100))
    r.apply(route(0, stable="v2", candidate="v3"))
    assert r.live(MODEL) == route(0, stable="v2", candidate="v3")
    assert [s["name"] for s in dr(kube)["spec"]["subsets"]] == ["v2", "v3"]


def test_mirror_and_header_route_read_back(kube):
    r = router(kube)
    shadow = route(0, mirror=25)
    assert r.apply_verified(shadow) == shadow
    stable_routes = [x for x in vs(kube)["spec"]["http"]
                     if x["route"][0]["destination"]["subset"] == "v1"]
    assert len(stable_routes) == 2
    assert all(x["mirror"]["subset"] == "v2" and x["mirrorPercentage"]["value"] == 25
               for x in stable_routes)
    testers = route(5, mirror=25, header=HeaderRoute("X-Canary-Tester", "team-a"))
    assert r.apply_verified(testers) == testers
    first = vs(kube)["spec"]["http"][0]
    assert first["match"] == [{"headers": {"x-canary-tester": {"exact": "team-a"}}}]
    # Dropping both: the header annotation and every mirror go.
    plain = route(5)
    assert r.apply_verified(plain) == plain
    assert "annotations" not in vs(kube)["metadata"] or \
        objects.HEADER_NAME_ANNOTATION not in vs(kube)["metadata"]["annotations"]
    assert not any("mirror" in x for x in vs(kube)["spec"]["http"])


def test_weighted_mode_round_trip(kube):
    r = router(kube, sticky=False)
    for w in (0, 5, 15, 100):
        r.apply_verified(route(w))
        (split,) = vs(kube)["spec"]["http"]
        assert [d["weight"] for d in split["route"]] == [100 - w, w]
    r.apply_verified(route(0, mirror=10))
    with pytest.raises(RouterError, match="sticky mode"):
        r.apply(route(5, mirror=10))
    assert r.live(MODEL) == route(0, mirror=10)


# ---------------------------------------------------------------- many models

def test_two_models_side_by_side_are_untouched_by_each_other(kube):
    r = router(kube)
    other = route(30, model=OTHER, stable="f1", candidate="f2", mirror=5)
    r.apply(other)
    before = (copy.deepcopy(vs(kube, OTHER)), copy.deepcopy(dr(kube, OTHER)))
    r.apply(route(5))
    r.set_weight(MODEL, 50)
    r.apply(route(candidate=None))
    assert (vs(kube, OTHER), dr(kube, OTHER)) == before  # same resourceVersion: never written
    assert r.live(OTHER) == other
    assert r.models() == [OTHER, MODEL]
    assert r.health().ok


def test_models_lists_only_what_paddle_canary_manages(kube):
    r = router(kube)
    r.apply(route())
    theirs = copy.deepcopy(vs(kube))
    theirs["metadata"] = {"name": "someone-else", "namespace": NS, "labels": {"app": "x"}}
    kube.put(theirs)
    assert r.models() == [MODEL]


# ---------------------------------------------------------------- failures keep the old route

@pytest.mark.parametrize("status,message,expect", [
    (403, 'virtualservices.networking.istio.io "risk-score-serving" is forbidden: User '
          '"system:serviceaccount:ml:airflow" cannot patch resource', "permission denied"),
    (409, "the object has been modified", "conflict"),
    (422, "VirtualService is invalid: spec.http[0].route[0].weight: Invalid value",
     "rejected as invalid"),
    (500, "etcdserver: request timed out", "Kubernetes API error 500"),
])
def test_failed_patch_leaves_previous_route(kube, status, message, expect):
    r = router(kube)
    r.apply(route(5))
    before = copy.deepcopy(vs(kube))
    kube.fail_next("patch_namespaced_custom_object", api_exception(status, message))
    with pytest.raises(RouterError, match=expect) as info:
        r.set_weight(MODEL, 15)
    assert message in str(info.value)
    assert isinstance(info.value, UserError)  # the CLI prints it, no traceback
    assert vs(kube) == before
    assert r.weight(MODEL) == 5 and r.verify_weight(MODEL, 5)
    if status == 403:
        assert "networking.istio.io" in str(info.value)  # names the permissions needed


def test_concurrent_edit_is_not_overwritten(kube):
    ours, theirs = router(kube), router(kube)
    ours.apply(route(5))

    def race(fake, what):
        if what == "before:patch_namespaced_custom_object":
            fake.hooks.remove(race)
            theirs.set_weight(MODEL, 50)  # lands between our read and our patch
    kube.hooks.append(race)
    with pytest.raises(RouterError, match="409"):
        ours.set_weight(MODEL, 15)
    assert ours.weight(MODEL) == 50
    ours.set_weight(MODEL, 15)  # running the step again works
    assert ours.verify_weight(MODEL, 15)


def test_api_server_down_is_a_router_error_and_health_says_so(kube):
    r = router(kube)
    r.apply(route(5))
    kube.down = True
    for call in (lambda: r.apply(route(15)), lambda: r.live(MODEL), lambda: r.models(),
                 lambda: r.set_weight(MODEL, 15)):
        with pytest.raises(RouterError, match="cannot reach the Kubernetes API server"):
            call()
    assert not r.verify_weight(MODEL, 5)  # cannot confirm: never a silent yes
    health = r.health()
    assert (health.up, health.in_sync, health.ok) == (False, False, False)
    assert "cannot reach" in health.detail
    kube.down = False
    assert r.live(MODEL) == route(5) and r.health().ok


def test_connection_refused_is_a_router_error(kube):
    kube.fail_next("get_namespaced_custom_object", ConnectionRefusedError(111, "refused"))
    with pytest.raises(RouterError, match="cannot reach the Kubernetes API server"):
        router(kube).apply(route())


def test_missing_crds_say_so(kube):
    kube.fail_next("create_namespaced_custom_object",
                   api_exception(404, "the server could not find the requested resource"))
    with pytest.raises(RouterError, match="not found .404: the server could not find .*CRDs "
                                          "installed and does namespace 'ml' exist"):
        router(kube).apply(route())
    assert kube.names("virtualservices") == [] and kube.names("destinationrules") == []


# ---------------------------------------------------------------- refusing to guess or clobber

def test_foreign_virtual_service_is_a_conflict_and_left_alone(kube):
    theirs = objects.render(route(30), NS)[1]
    del theirs["metadata"]["labels"][names.MANAGED_BY_LABEL]
    kube.put(theirs)
    stored = vs(kube)
    r = router(kube)
    for call in (lambda: r.apply(route(5)), lambda: r.live(MODEL)):
        with pytest.raises(RouterError, match="not labelled .* will not read or change"):
            call()
    assert not any(m.startswith(("patch", "create")) for m, _ in kube.calls)
    assert vs(kube) == stored
    assert r.models() == []  # not ours: not listed either


def test_hand_edited_routes_are_reported_not_interpreted(kube):
    r = router(kube)
    r.apply(route(15))
    edited = vs(kube)
    edited["spec"]["http"][0]["match"][0]["headers"]["x-canary-bucket"]["regex"] = "^1[0-4]$"
    kube.objects[("virtualservices", NS, NAME)] = edited
    with pytest.raises(RouterError, match="refusing to guess"):
        r.live(MODEL)
    assert not r.verify_weight(MODEL, 15)
    health = r.health()
    assert health.up and not health.in_sync and "refusing to guess" in health.detail
    r.apply(route(15))  # writing again restores the known shape
    assert r.verify_weight(MODEL, 15) and r.health().ok


def test_health_notices_a_route_changed_behind_its_back(kube):
    ours, theirs = router(kube), router(kube)
    ours.apply(route(15))
    theirs.apply(route(40))
    health = ours.health()
    assert health.up and not health.in_sync and "was given" in health.detail


def test_invalid_input_makes_no_call(kube):
    r = router(kube)
    for bad in (-1, 101, 5.5, "15", None, True):
        with pytest.raises(InvalidWeight):
            r.verify_weight(MODEL, bad)
    with pytest.raises(RouterError, match="has a URL"):
        r.apply(ModelRoute(MODEL, Backend("v1", "http://127.0.0.1:8001")))
    with pytest.raises(RouterError, match="DNS-1123"):
        r.apply(ModelRoute("Risk", Backend("v1")))
    with pytest.raises(RouterError, match="label value"):
        r.apply(route(candidate="v2."))
    assert kube.calls == []


def test_route_before_any_virtual_service(kube):
    r = router(kube)
    assert r.live(MODEL) is None and r.weight(MODEL) == 0
    with pytest.raises(RouterError, match="no route for model"):
        r.set_weight(MODEL, 5)
    assert r.health().ok and r.models() == []


def test_odd_version_names_get_valid_subsets(kube):
    r = router(kube)
    odd = route(5, stable="2024.06.01", candidate="V2_rc1")
    assert r.apply_verified(odd) == odd
    labels = {s["name"]: s["labels"]["version"] for s in dr(kube)["spec"]["subsets"]}
    assert sorted(labels.values()) == ["2024.06.01", "V2_rc1"]


def test_gateways_and_hosts(kube):
    r = router(kube, gateways=["istio-system/public"], hosts={MODEL: ["risk.example.com"]})
    r.apply(route(5))
    assert vs(kube)["spec"]["gateways"] == ["istio-system/public"]
    assert vs(kube)["spec"]["hosts"] == ["risk.example.com"]
    plain = router(kube)
    plain.apply(route(5))
    assert "gateways" not in vs(kube)["spec"]
    assert vs(kube)["spec"]["hosts"] == [names.model_host(MODEL, NS)]


def test_features_and_kind():
    r = IstioRouter(NS, api=object())
    assert r.kind == "istio"
    assert set(r.supports) == {"mirror", "header_route", "many_models"}


def test_default_client_without_credentials_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(RouterError, match="no Kubernetes credentials"):
        default_custom_objects_api()
    with pytest.raises(RouterError, match="no Kubernetes credentials"):
        IstioRouter(NS).live(MODEL)


def test_unreachable_is_urllib3s_error():
    assert "Connection refused" in str(unreachable())


def _misspelling_mirror_share(r: IstioRouter):
    good = r.render

    def render(rt):
        d, v = good(rt)
        for x in v["spec"]["http"]:
            if "mirrorPercentage" in x:
                x["mirrorPercentage"] = {"valu": x["mirrorPercentage"]["value"]}
        return d, v
    r.render = render


def test_a_misspelt_field_is_refused_and_nothing_changes(kube):
    r = router(kube)
    r.apply(route(5))
    before = copy.deepcopy(kube.objects)
    _misspelling_mirror_share(r)
    with pytest.raises(RouterError, match=r"400.*unknown field .*mirrorPercentage\.valu"):
        r.apply(route(5, mirror=10))
    assert {k: v for k, v in kube.objects.items() if k[0] == "virtualservices"} == \
        {k: v for k, v in before.items() if k[0] == "virtualservices"}
    assert r.live(MODEL) == route(5)


def test_even_a_pruning_server_would_not_fool_the_read_back(kube, monkeypatch):
    """Without Strict the API server drops the typo and mirrors 100 %: the read-back sees a
    route that is not the one asked for and says so."""
    r = router(kube)
    _misspelling_mirror_share(r)
    create, patch = kube.custom.create_namespaced_custom_object, \
        kube.custom.patch_namespaced_custom_object
    monkeypatch.setattr(kube.custom, "create_namespaced_custom_object",
                        lambda *a, **kw: create(*a, **{**kw, "field_validation": None}))
    monkeypatch.setattr(kube.custom, "patch_namespaced_custom_object",
                        lambda *a, **kw: patch(*a, **{**kw, "field_validation": None}))
    with pytest.raises(RouterError, match="refusing to guess|does not hold"):
        r.apply(route(5, mirror=10))
