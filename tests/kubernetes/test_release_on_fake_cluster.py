"""A whole release through the runtime and router interfaces, on the fake API server: what the
release controller does with runtime=kubernetes, router=istio, step by step. Built the way the
factories build them (settings from the environment, default clients), so nothing here knows
the API server is a fake."""

from __future__ import annotations

from paddle_canary.kube import names
from paddle_canary.kube.config import ModelKube
from paddle_canary.runtime.base import FAILING, GONE, HEALTHY
from paddle_canary.traffic.base import Backend, HeaderRoute, ModelRoute

MODEL, NS = "risk-score", "ml"


def routed_versions(cluster) -> set[str]:
    """Versions the stored VirtualService sends or mirrors requests to."""
    from paddle_canary.traffic.istio_objects import referenced_subsets
    vs = cluster.kube.get("virtualservices", NS, names.serving_app(MODEL))
    return referenced_subsets(vs)


def test_a_promoted_release(kube_cluster):
    rt, gw = kube_cluster.runtime, kube_cluster.router
    stable = rt.deploy(MODEL, "v1")
    gw.apply_verified(ModelRoute(MODEL, Backend("v1")))
    # deploy_candidate: the candidate also scores with stable in-process (paired analysis).
    candidate = rt.deploy(MODEL, "v2", shadow="v1")
    route = ModelRoute(MODEL, Backend("v1"), Backend("v2"))
    gw.apply_verified(route)
    assert routed_versions(kube_cluster) == {"v1"}  # weight 0: nobody on v2 yet
    # A shadow phase, then internal testers by header, then the public steps.
    route = gw.apply_verified(route.replace(mirror=20))
    route = gw.apply_verified(route.replace(mirror=0, header=HeaderRoute("x-canary", "team")))
    for weight in (5, 25, 50, 100):
        assert rt.probe(MODEL, "v2").state == HEALTHY  # weights go up only while it answers
        rt.follow_weight(MODEL, "v2", weight)
        assert gw.set_weight(MODEL, weight).weight == weight
        assert gw.health().ok
    # promote, then teardown of the old version after the delay
    gw.apply_verified(ModelRoute(MODEL, Backend("v2")))
    assert routed_versions(kube_cluster) == {"v2"}
    rt.remove(MODEL, "v1")
    assert rt.probe(MODEL, "v1").state == GONE
    assert [e.version for e in rt.endpoints(MODEL)] == ["v2"]
    assert rt.probe(MODEL, "v2").instance == candidate.instance  # never restarted
    assert stable.instance != candidate.instance


def test_a_rolled_back_release_keeps_stable_serving(kube_cluster):
    rt, gw = kube_cluster.runtime, kube_cluster.router
    rt.deploy(MODEL, "v1")
    rt.deploy(MODEL, "v2")
    gw.apply_verified(ModelRoute(MODEL, Backend("v1"), Backend("v2"), weight=5))
    kube_cluster.kube.set_pods(MODEL, "v2", "unready")  # /deep_health starts failing
    health = rt.probe(MODEL, "v2")
    assert health.state == FAILING and "/deep_health" in health.detail
    # rollback: weight 0 first (one call), then the candidate stopped
    back = gw.route(MODEL).without_candidate()
    gw.apply_verified(back)
    assert routed_versions(kube_cluster) == {"v1"}
    rt.remove(MODEL, "v2")
    assert rt.probe(MODEL, "v1").state == HEALTHY and gw.live(MODEL) == back
    assert gw.health().ok


def test_another_model_is_untouched_by_a_release(kube_cluster):
    rt, gw = kube_cluster.runtime, kube_cluster.router
    rt.model_config = lambda model: ModelKube()  # "fraud" is not in the test registry
    rt.deploy("fraud", "f1")
    rt.deploy("fraud", "f2")
    other = gw.apply_verified(ModelRoute("fraud", Backend("f1"), Backend("f2"), weight=30))
    objects_before = {k: v for k, v in kube_cluster.kube.objects.items()
                      if (v["metadata"].get("labels") or {}).get(names.MODEL_LABEL) == "fraud"}
    rt.deploy(MODEL, "v1")
    rt.deploy(MODEL, "v2")
    gw.apply_verified(ModelRoute(MODEL, Backend("v1"), Backend("v2"), weight=50))
    gw.apply_verified(ModelRoute(MODEL, Backend("v2")))
    rt.remove(MODEL, "v1")
    assert gw.live("fraud") == other
    assert {k: v for k, v in kube_cluster.kube.objects.items()
            if (v["metadata"].get("labels") or {}).get(names.MODEL_LABEL) == "fraud"} == \
        objects_before
    assert gw.models() == ["fraud", MODEL]
