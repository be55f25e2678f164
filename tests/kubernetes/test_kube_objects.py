"""The serving workload, the settings and model.yaml's kubernetes section, checked without a
cluster: objects against the Kubernetes 1.37 schema (kubernetes-validate, strict: an unknown
field is an error), settings and placement against what Kubernetes accepts."""

from __future__ import annotations

import kubernetes_validate
import pytest

from paddle_canary.kube import names, workload
from paddle_canary.kube.config import (GPU_TOLERATION, KubeConfigError, KubeSettings,
                                       ModelKube, Placement)
from paddle_canary.traffic import istio_objects

K8S_VERSION = "1.37.0"
MODEL, NS = "risk-score", "ml"


@pytest.mark.parametrize("version", ["v1", "2024.06.01_a", "V2"])
@pytest.mark.parametrize("placement", [Placement(), ModelKube().validation, Placement(
    gpus=2, resources={"requests": {"cpu": "500m", "memory": "1Gi"}},
    node_selector={"pool": "gpu"}, tolerations=({"key": "dedicated", "operator": "Equal",
                                                 "value": "ml", "effect": "NoExecute",
                                                 "tolerationSeconds": 60},))])
def test_workload_objects_pass_the_kubernetes_schema(version, placement):
    dep = workload.deployment(MODEL, version, NS, f"reg.example/{MODEL}-serving:{version}",
                              placement=placement, replicas=2, service_account="serving",
                              shadow="v0", shadow_image="reg.example/x:v0")
    for obj in (dep, workload.version_service(MODEL, version, NS),
                workload.model_service(MODEL, NS)):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    pod = dep["spec"]["template"]
    # The DestinationRule subset for this version selects exactly these pods.
    (subset,) = istio_objects.subsets(MODEL, [version])
    assert subset["labels"].items() <= pod["metadata"]["labels"].items()
    assert dep["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"]
    limits = pod["spec"]["containers"][0].get("resources", {}).get("limits", {})
    assert limits.get("nvidia.com/gpu") == (str(placement.gpus) if placement.gpus else None)
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0].get("resources", {}).get(
        "requests", {})


def test_kubernetes_schema_catches_mistakes():
    dep = workload.deployment(MODEL, "v1", NS, "img:v1", placement=Placement())
    dep["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)


def test_spec_hash_changes_with_what_matters():
    a = workload.deployment(MODEL, "v1", NS, "img:v1", placement=Placement())
    b = workload.deployment(MODEL, "v1", NS, "img:v1", placement=Placement())
    c = workload.deployment(MODEL, "v1", NS, "img:v1b", placement=Placement())
    h = lambda d: d["metadata"]["annotations"][workload.SPEC_HASH_ANNOTATION]  # noqa: E731
    assert h(a) == h(b) != h(c)


def test_names_are_valid_and_distinct():
    assert names.serving_app(MODEL) == "risk-score-serving"
    assert names.version_object_name(MODEL, "v2") == "risk-score-serving-v2"
    odd = ["V1.2", "v1.2", "v1_2", "2024.06.01", "v1-2"]
    objs = [names.version_object_name(MODEL, v) for v in odd]
    assert len(set(objs)) == len(objs)
    long_model = "m" * 63
    for name in objs + [names.version_object_name(long_model, "v" * 63),
                        names.serving_app("9lives")]:
        assert len(name) <= 63 and name[0].isalpha(), name
    assert names.version_slug("V1.2") == names.version_slug("V1.2")
    for bad in ["v1.", "-v1", "x" * 64, "", None]:
        with pytest.raises(names.KubeNameError):
            names.version_label(bad)


def test_settings_from_env():
    s = KubeSettings.from_env({})
    assert (s.namespace, s.namespace_given, s.image, s.conn_id, s.istio_sticky) == (
        "default", False, "{model}-serving:{version}", "kubernetes_default", True)
    s = KubeSettings.from_env({"PADDLE_CANARY_K8S_NAMESPACE": "ml",
                               "PADDLE_CANARY_K8S_IMAGE": "reg.example/{model}:{version}",
                               "PADDLE_CANARY_K8S_SERVICE_ACCOUNT": "canary",
                               "PADDLE_CANARY_K8S_CONN_ID": "k8s_prod",
                               "PADDLE_CANARY_ISTIO_MODE": "weighted",
                               "PADDLE_CANARY_ISTIO_GATEWAYS": "istio-system/public, mesh"})
    assert (s.namespace, s.namespace_given, s.service_account, s.conn_id) == (
        "ml", True, "canary", "k8s_prod")
    assert s.image_for(MODEL, "v2") == "reg.example/risk-score:v2"
    assert (s.istio_sticky, s.istio_gateways) == (False, ("istio-system/public", "mesh"))
    for env, expect in [({"PADDLE_CANARY_K8S_NAMESPACE": "ML"}, "DNS-1123"),
                        ({"PADDLE_CANARY_K8S_IMAGE": "reg/{model}:latest"}, "{version}"),
                        ({"PADDLE_CANARY_K8S_IMAGE": "reg/{nope}:{version}"}, "only"),
                        ({"PADDLE_CANARY_ISTIO_MODE": "sticky-ish"}, "sticky or weighted"),
                        ({"PADDLE_CANARY_K8S_DEPLOY_TIMEOUT_S": "soon"}, "number")]:
        with pytest.raises(Exception, match=expect):
            KubeSettings.from_env(env)


def test_model_yaml_defaults():
    cfg = ModelKube.from_model_yaml({"plan": {}, "gates": {}})
    assert cfg.replicas == 1
    assert cfg.serving.to_dict() == {"gpus": 0, "resources": {}, "node_selector": {},
                                     "tolerations": []}
    assert cfg.validation.to_dict() == {"gpus": 1, "resources": {"limits": {"nvidia.com/gpu": "1"}},
                                        "node_selector": {}, "tolerations": [GPU_TOLERATION]}
    cpu = ModelKube.from_model_yaml({"kubernetes": {"validation": {"gpus": 0}}})
    assert cpu.validation.to_dict()["tolerations"] == [] and cpu.validation.gpus == 0


@pytest.mark.parametrize("section,expect", [
    ({"servng": {}}, "unknown key.*servng"),
    ({"serving": {"replicas": 0}}, "replicas must be an integer 1..100"),
    ({"serving": {"replicas": "2"}}, "replicas"),
    ({"validation": {"gpus": -1}}, "gpus must be an integer"),
    ({"validation": {"gpus": True}}, "gpus must be an integer"),
    ({"validation": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}, "unknown key"),
    ({"validation": {"resources": {"requests": {"memory": "4 GB"}}}}, "not a Kubernetes quantity"),
    ({"validation": {"resources": {"request": {}}}}, "unknown key.*request"),
    ({"validation": {"node_selector": {"gpu": True}}}, "not a Kubernetes label"),
    ({"validation": {"tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedul"}]}},
     "effect must be one of"),
    ({"validation": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}},
     "Exists takes no value"),
    ({"validation": {"tolerations": [{"keys": "k"}]}}, "unknown key"),
    ("gpu", "must be a mapping"),
])
def test_model_yaml_mistakes_are_refused_with_their_place(section, expect):
    with pytest.raises(KubeConfigError, match=expect) as info:
        ModelKube.from_model_yaml({"kubernetes": section}, where="risk-score/model.yaml")
    assert "risk-score/model.yaml: kubernetes" in str(info.value)


def test_model_yaml_placement_is_kept():
    cfg = ModelKube.from_model_yaml({"kubernetes": {"validation": {
        "gpus": 2, "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "spot", "value": "true", "effect": "NoSchedule",
                         "toleration_seconds": 30}],
        "resources": {"requests": {"cpu": 4, "memory": "16Gi"}}}}})
    v = cfg.validation
    assert v.resource_requirements() == {"requests": {"cpu": "4", "memory": "16Gi"},
                                         "limits": {"nvidia.com/gpu": "2"}}
    assert v.tolerations[1] == {"key": "spot", "operator": "Equal", "value": "true",
                                "effect": "NoSchedule", "tolerationSeconds": 30}
