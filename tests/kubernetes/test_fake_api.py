"""The fake API server answers as the real one does where paddle-canary depends on it (no
real cluster can run here; these tests pin the behaviour the other tests rely on)."""

from __future__ import annotations

import json

import pytest
from fakes.kube_api import FakeKube
from kubernetes.client import V1Deployment, V1DeploymentList, V1Service
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError

from paddle_canary.kube import workload
from paddle_canary.kube.config import Placement
from paddle_canary.traffic import istio_objects
from paddle_canary.traffic.base import Backend, ModelRoute

NS = "ml"
G, V = "networking.istio.io", "v1"


@pytest.fixture
def kube():
    return FakeKube()


def dep(version="v1"):
    return workload.deployment("risk-score", version, NS, f"img:{version}", placement=Placement())


def test_built_in_kinds_come_back_as_client_models(kube):
    created = kube.apps.create_namespaced_deployment(NS, dep())
    assert isinstance(created, V1Deployment)
    assert created.metadata.resource_version and created.metadata.uid
    assert created.metadata.generation == 1
    assert isinstance(kube.apps.list_namespaced_deployment(NS), V1DeploymentList)
    assert isinstance(kube.core.create_namespaced_service(
        NS, workload.model_service("risk-score", NS)), V1Service)


def test_missing_and_existing_objects(kube):
    with pytest.raises(ApiException) as info:
        kube.apps.read_namespaced_deployment("nope", NS)
    assert info.value.status == 404
    assert json.loads(info.value.body)["reason"] == "NotFound"
    kube.apps.create_namespaced_deployment(NS, dep())
    with pytest.raises(ApiException) as info:
        kube.apps.create_namespaced_deployment(NS, dep())
    assert info.value.status == 409 and "already exists" in json.loads(info.value.body)["message"]
    with pytest.raises(ApiException) as info:
        kube.custom.get_namespaced_custom_object(G, V, NS, "virtualservices", "nope")
    assert info.value.status == 404
    with pytest.raises(ApiException) as info:
        kube.custom.get_namespaced_custom_object(G, "v9", NS, "virtualservices", "nope")
    assert info.value.status == 404  # an API version the server does not serve


def test_resource_version_and_generation(kube):
    first = kube.apps.create_namespaced_deployment(NS, dep()).metadata
    name = first.name
    body = {"metadata": {"resourceVersion": first.resource_version}, "spec": {"replicas": 2}}
    # The controller wrote status since: the read version is stale.
    with pytest.raises(ApiException) as info:
        kube.apps.patch_namespaced_deployment(name, NS, body,
                                              _content_type="application/merge-patch+json")
    assert info.value.status == 409
    now = kube.apps.read_namespaced_deployment(name, NS).metadata
    body["metadata"]["resourceVersion"] = now.resource_version
    patched = kube.apps.patch_namespaced_deployment(
        name, NS, body, _content_type="application/merge-patch+json")
    assert patched.spec.replicas == 2 and patched.metadata.generation == 2
    assert int(patched.metadata.resource_version) > int(now.resource_version)
    label_only = kube.apps.patch_namespaced_deployment(
        name, NS, {"metadata": {"labels": {"x": "y"}}},
        _content_type="application/merge-patch+json")
    assert label_only.metadata.generation == 2  # metadata changes do not bump generation


def test_patch_content_types(kube):
    name = kube.apps.create_namespaced_deployment(NS, dep()).metadata.name
    with pytest.raises(ApiException) as info:  # what the client sends for a dict by default
        kube.apps.patch_namespaced_deployment(name, NS, {"spec": {"replicas": 2}})
    assert info.value.status == 400
    dr, vs = istio_objects.render(ModelRoute("risk-score", Backend("v1")), NS)
    kube.custom.create_namespaced_custom_object(G, V, NS, "virtualservices", vs)
    patched = kube.custom.patch_namespaced_custom_object(  # custom objects: merge patch
        G, V, NS, "virtualservices", vs["metadata"]["name"], {"spec": {"gateways": ["mesh"]}})
    assert patched["spec"]["gateways"] == ["mesh"] and patched["spec"]["http"] == vs["spec"]["http"]


def test_status_in_a_write_is_ignored(kube):
    body = dep()
    body["status"] = {"readyReplicas": 99}
    kube.set_pods("risk-score", "v1", "unready")
    created = kube.apps.create_namespaced_deployment(NS, body)
    assert created.status is None
    assert not kube.apps.read_namespaced_deployment(created.metadata.name, NS).status.ready_replicas


def test_label_selectors(kube):
    kube.apps.create_namespaced_deployment(NS, dep("v1"))
    kube.apps.create_namespaced_deployment(NS, dep("v2"))
    names = lambda sel: [d.metadata.name for d in  # noqa: E731
                         kube.apps.list_namespaced_deployment(NS, label_selector=sel).items]
    assert names("paddle-canary/version=v2") == ["risk-score-serving-v2"]
    assert names("paddle-canary/model=risk-score,paddle-canary/version!=v2") == [
        "risk-score-serving-v1"]
    assert names("nope") == [] and len(names(None)) == 2


def test_unknown_fields_are_pruned_or_refused(kube):
    _, vs = istio_objects.render(ModelRoute("risk-score", Backend("v1"), Backend("v2"),
                                            mirror=10), NS)
    vs["spec"]["http"][1]["mirrorPercentage"] = {"valu": 10}
    with pytest.raises(ApiException) as info:
        kube.custom.create_namespaced_custom_object(G, V, NS, "virtualservices", vs,
                                                    field_validation="Strict")
    assert info.value.status == 400 and "mirrorPercentage.valu" in info.value.body
    stored = kube.custom.create_namespaced_custom_object(G, V, NS, "virtualservices", vs)
    assert stored["spec"]["http"][1]["mirrorPercentage"] == {}  # silently pruned
    body = dep("v3")
    body["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(ApiException) as info:
        kube.apps.create_namespaced_deployment(NS, body, field_validation="Strict")
    assert info.value.status == 400


def test_invalid_values_are_422(kube):
    _, vs = istio_objects.render(ModelRoute("risk-score", Backend("v1"), Backend("v2"),
                                            weight=5), NS)
    vs["spec"]["http"][0]["route"][0]["weight"] = -1
    with pytest.raises(ApiException) as info:
        kube.custom.create_namespaced_custom_object(G, V, NS, "virtualservices", vs)
    assert info.value.status == 422 and "weight -1 < 0" in info.value.body


def test_deleting_a_deployment_deletes_its_pods(kube):
    name = kube.apps.create_namespaced_deployment(NS, dep()).metadata.name
    assert len(kube.names("pods", NS)) == 1 and len(kube.names("replicasets", NS)) == 1
    kube.apps.delete_namespaced_deployment(name, NS)
    assert kube.names("pods", NS) == [] and kube.names("replicasets", NS) == []
    with pytest.raises(ApiException) as info:
        kube.apps.delete_namespaced_deployment(name, NS)
    assert info.value.status == 404


def test_down_and_queued_failures(kube):
    kube.down = True
    with pytest.raises(MaxRetryError):
        kube.core.list_namespaced_pod(NS)
    kube.down = False
    kube.fail_next("list_namespaced_pod", RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        kube.core.list_namespaced_pod(NS)
    assert kube.core.list_namespaced_pod(NS).items == []
