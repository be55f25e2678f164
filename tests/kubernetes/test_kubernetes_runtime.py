"""KubernetesRuntime through the runtime interface, against the fake API server.

No cluster can run here: :class:`fakes.kube_api.FakeKube` keeps the objects, plays the
Deployment controller and the kubelet (pods ready at once unless a test sets another state)
and checks Deployments and Services against the Kubernetes 1.37 schema (kubernetes-validate).
What only a real cluster shows (image pulls, GPU scheduling, the kubelet's probe timing) is
listed in the README.
"""

from __future__ import annotations

import pytest
from fakes.cluster import IMAGE, fake_cluster
from fakes.kube_api import api_exception

from paddle_canary.kube import names, workload
from paddle_canary.runtime.base import FAILING, GONE, HEALTHY, DeployError, Runtime
from paddle_canary.runtime.kubernetes import KubernetesRuntime, replicas_for_weight

MODEL, NS = "risk-score", "ml"


@pytest.fixture
def cluster(tmp_path):
    return fake_cluster()


def deployment(cluster, version, model=MODEL) -> dict:
    return cluster.kube.get("deployments", NS, names.version_object_name(model, version))


def test_deploy_creates_deployment_and_services_and_returns_a_ready_endpoint(cluster):
    rt = cluster.runtime
    assert isinstance(rt, Runtime) and rt.kind == "kubernetes"
    ep = rt.deploy(MODEL, "v2")
    assert (ep.model, ep.version, ep.port, ep.pid) == (MODEL, "v2", 8080, None)
    assert ep.url == "http://risk-score-serving-v2.ml.svc.cluster.local:8080"
    assert cluster.kube.names("services", NS) == ["risk-score-serving", "risk-score-serving-v2"]
    dep = deployment(cluster, "v2")
    pod = dep["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == IMAGE.format(model=MODEL, version="v2")
    assert container["readinessProbe"]["httpGet"]["path"] == "/deep_health"
    assert pod["metadata"]["labels"] == {"app": "risk-score-serving", "version": "v2",
                                         "paddle-canary/model": MODEL,
                                         "paddle-canary/version": "v2"}
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    assert "resources" not in container  # no GPU unless model.yaml asks
    # Every write said which fields it owns and refused unknown fields.
    for method, args in cluster.kube.calls:
        if method.startswith("create"):
            assert args["field_validation"] == "Strict" and args["field_manager"] == "paddle-canary"
    assert rt.probe(MODEL, "v2").state == HEALTHY
    assert rt.probe(MODEL, "v2").instance == ep.instance


def test_deploy_is_idempotent(cluster):
    rt = cluster.runtime
    first = rt.deploy(MODEL, "v2")
    rv = deployment(cluster, "v2")["metadata"]["resourceVersion"]
    cluster.kube.calls.clear()
    assert rt.deploy(MODEL, "v2") == first
    assert deployment(cluster, "v2")["metadata"]["resourceVersion"] == rv
    assert not [m for m, _ in cluster.kube.calls if m.startswith(("create", "replace", "patch"))]


def test_another_spec_rolls_the_deployment_and_gives_another_instance(cluster):
    rt = cluster.runtime
    first = rt.deploy(MODEL, "v2")
    shadowed = rt.deploy(MODEL, "v2", shadow="v1")
    assert shadowed.instance != first.instance
    assert shadowed.instance.endswith("/r2")
    spec = deployment(cluster, "v2")["spec"]["template"]["spec"]
    assert spec["containers"][0]["args"] == ["serve", "--host", "0.0.0.0", "--shadow", "v1"]
    (init,) = spec["initContainers"]
    assert init["image"] == IMAGE.format(model=MODEL, version="v1")  # the shadow's own image
    assert init["command"][-2:] == ["/srv/model_registry/risk-score/v1", "/out"]
    assert spec["containers"][0]["volumeMounts"][0]["mountPath"] == \
        "/srv/model_registry/risk-score/v1"
    # Old pods are gone once the new ones are ready (maxUnavailable 0).
    assert len(cluster.kube.names("pods", NS)) == 1
    assert rt.probe(MODEL, "v2").restarted_since(first)
    # Deployed again without a shadow (the promoted candidate as the next release's stable):
    # taken as it runs, not rolled (Runtime.deploy).
    cluster.kube.calls.clear()
    assert rt.deploy(MODEL, "v2") == shadowed
    assert not [m for m, _ in cluster.kube.calls if m.startswith(("create", "replace", "patch"))]


def test_endpoints_come_from_labels(cluster):
    rt = cluster.runtime
    rt.deploy(MODEL, "v1")
    rt.deploy(MODEL, "v2")
    rt.deploy("fraud", "f1")
    assert [(e.model, e.version) for e in rt.endpoints()] == [
        ("fraud", "f1"), (MODEL, "v1"), (MODEL, "v2")]
    assert [e.version for e in rt.endpoints(MODEL)] == ["v1", "v2"]
    assert rt.endpoint(MODEL, "v2").url.startswith("http://risk-score-serving-v2.")
    # A Deployment someone else made with similar labels is not ours.
    foreign = deployment(cluster, "v1")
    foreign["metadata"] = {"name": "hand-made", "namespace": NS,
                           "labels": {names.MODEL_LABEL: MODEL, names.VERSION_LABEL: "v9"}}
    cluster.kube.put(foreign)
    assert [e.version for e in rt.endpoints(MODEL)] == ["v1", "v2"]


def test_remove_deletes_the_version_only(cluster):
    rt = cluster.runtime
    rt.deploy(MODEL, "v1")
    rt.deploy(MODEL, "v2")
    rt.remove(MODEL, "v1")
    assert rt.probe(MODEL, "v1").state == GONE
    assert [e.version for e in rt.endpoints(MODEL)] == ["v2"]
    assert cluster.kube.names("deployments", NS) == ["risk-score-serving-v2"]
    # The model's Service stays: the other versions (and the Istio host) need it.
    assert cluster.kube.names("services", NS) == ["risk-score-serving", "risk-score-serving-v2"]
    assert all("-v1-" not in p for p in cluster.kube.names("pods", NS))
    rt.remove(MODEL, "v1")  # nothing running: nothing happens
    rt.remove(MODEL, "never")


@pytest.mark.parametrize("state,expect", [
    ("unready", "readiness (/deep_health) not passing"),
    ("crashloop", "CrashLoopBackOff"),
    ("image-pull", "ImagePullBackOff"),
    ("unschedulable", "Insufficient nvidia.com/gpu"),
])
def test_probe_reports_a_failing_version_with_the_reason(cluster, state, expect):
    rt = cluster.runtime
    ep = rt.deploy(MODEL, "v2")
    cluster.kube.set_pods(MODEL, "v2", state)
    health = rt.probe(MODEL, "v2")
    assert health.state == FAILING and expect in health.detail
    assert health.instance == ep.instance  # the same start, just not answering
    assert not rt.health(MODEL, "v2")
    cluster.kube.set_pods(MODEL, "v2", "ready")
    assert rt.probe(MODEL, "v2").state == HEALTHY


def test_probe_says_gone_when_deleted_or_scaled_to_zero(cluster):
    rt = cluster.runtime
    assert rt.probe(MODEL, "v2").state == GONE
    rt.deploy(MODEL, "v2")
    dep = deployment(cluster, "v2")
    dep["spec"]["replicas"] = 0
    cluster.kube.objects[("deployments", NS, dep["metadata"]["name"])] = dep
    assert rt.probe(MODEL, "v2").state == GONE
    dep["spec"]["replicas"] = 1
    dep["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert rt.probe(MODEL, "v2").state == GONE


@pytest.mark.parametrize("state,expect", [
    ("crashloop", "CrashLoopBackOff"), ("invalid-image", "InvalidImageName")])
def test_a_version_that_cannot_start_fails_the_deploy_at_once(cluster, state, expect):
    cluster.kube.set_pods(MODEL, "v2", state)
    with pytest.raises(DeployError, match=f"did not start: .*{expect}"):
        cluster.runtime.deploy(MODEL, "v2")
    assert len([m for m, _ in cluster.kube.calls if m == "read_namespaced_deployment"]) <= 3


@pytest.mark.parametrize("state,expect", [
    ("unready", "readiness"), ("image-pull", "ImagePullBackOff"),
    ("unschedulable", "Insufficient nvidia.com/gpu")])
def test_a_version_never_ready_times_out_with_the_reason(state, expect):
    cluster = fake_cluster(deploy_timeout_s=0.2)
    cluster.kube.set_pods(MODEL, "v2", state)
    with pytest.raises(DeployError, match=f"not ready within 0 s: .*{expect}"):
        cluster.runtime.deploy(MODEL, "v2")


def test_progress_deadline_fails_the_deploy(cluster):
    cluster.kube.set_pods(MODEL, "v2", "unready")
    real = cluster.kube._reconcile

    def deadline(namespace, name):
        real(namespace, name)
        dep = cluster.kube.objects[("deployments", namespace, name)]
        dep["status"]["conditions"].append({"type": "Progressing", "status": "False",
                                            "reason": "ProgressDeadlineExceeded",
                                            "message": "ReplicaSet has timed out progressing."})
    cluster.kube._reconcile = deadline
    with pytest.raises(DeployError, match="progress deadline"):
        cluster.runtime.deploy(MODEL, "v2")


def test_model_yaml_gives_replicas_gpus_resources_and_placement(tmp_path, registry_root):
    import shutil
    root = tmp_path / "registry"
    shutil.copytree(registry_root, root)
    model_yaml = root / MODEL / "model.yaml"
    model_yaml.write_text(model_yaml.read_text() + """\
kubernetes:
  serving:
    replicas: 3
    gpus: 1
    resources: {requests: {cpu: "2", memory: 4Gi}, limits: {memory: 8Gi}}
    node_selector: {cloud.google.com/gke-accelerator: nvidia-l4}
""")
    cluster = fake_cluster(root)
    cluster.runtime.deploy(MODEL, "v2")
    dep = deployment(cluster, "v2")
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 3 and len(cluster.kube.names("pods", NS)) == 3
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"memory": "8Gi", "nvidia.com/gpu": "1"}}
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                   "effect": "NoSchedule"}]
    model_yaml.write_text(model_yaml.read_text().replace("gpus: 1", "gpu: 1"))
    with pytest.raises(DeployError, match="unknown key.*gpu"):
        cluster.runtime.deploy(MODEL, "v1")


def test_candidate_replicas_follow_its_weight(tmp_path, registry_root):
    import shutil
    root = tmp_path / "registry"
    shutil.copytree(registry_root, root)
    model_yaml = root / MODEL / "model.yaml"
    model_yaml.write_text(model_yaml.read_text() + "kubernetes: {serving: {replicas: 10}}\n")
    cluster = fake_cluster(root)
    rt = cluster.runtime
    rt.deploy(MODEL, "v2")
    for weight, pods in [(5, 1), (15, 2), (50, 5), (100, 10)]:
        rt.follow_weight(MODEL, "v2", weight)
        assert deployment(cluster, "v2")["spec"]["replicas"] == pods
        assert len([p for p in cluster.kube.names("pods", NS) if "-v2-" in p]) == pods
    patch = [a for m, a in cluster.kube.calls if m == "patch_namespaced_deployment"][-1]
    assert patch["_content_type"] == "application/merge-patch+json"
    # A later deploy of the same spec keeps the scaled replicas.
    rt.follow_weight(MODEL, "v2", 15)
    rt.deploy(MODEL, "v2")
    assert deployment(cluster, "v2")["spec"]["replicas"] == 2
    assert [replicas_for_weight(1, w) for w in (0, 5, 100)] == [1, 1, 1]
    with pytest.raises(DeployError, match="not deployed"):
        rt.follow_weight(MODEL, "v3", 5)


def test_patch_without_content_type_would_be_refused_like_the_real_server(cluster):
    """The client sends a dict body to patch_namespaced_deployment as a JSON patch unless told
    otherwise, which the API server refuses; the runtime names the content type."""
    cluster.runtime.deploy(MODEL, "v2")
    with pytest.raises(Exception) as info:
        cluster.kube.apps.patch_namespaced_deployment(
            names.version_object_name(MODEL, "v2"), NS, {"spec": {"replicas": 2}})
    assert info.value.status == 400


def test_objects_it_did_not_create_are_not_taken_over(cluster):
    svc = workload.version_service(MODEL, "v2", NS)
    del svc["metadata"]["labels"][names.MANAGED_BY_LABEL]
    cluster.kube.put(svc)
    with pytest.raises(DeployError, match="not created by paddle-canary"):
        cluster.runtime.deploy(MODEL, "v2")
    assert cluster.kube.names("deployments", NS) == []


@pytest.mark.parametrize("method,error,expect", [
    ("create_namespaced_deployment", api_exception(403, 'deployments.apps is forbidden: User '
                                                        '"system:serviceaccount:ml:airflow"'),
     "permission denied .* deployments.apps"),
    ("create_namespaced_deployment", api_exception(409, 'deployments.apps "x" already exists'),
     "conflict"),
    ("read_namespaced_service", api_exception(500, "etcdserver: leader changed"),
     "Kubernetes API error 500"),
])
def test_api_errors_are_deploy_errors(cluster, method, error, expect):
    cluster.kube.fail_next(method, error)
    with pytest.raises(DeployError, match=expect):
        cluster.runtime.deploy(MODEL, "v2")


def test_api_server_down(cluster):
    cluster.runtime.deploy(MODEL, "v2")
    cluster.kube.down = True
    for call in (lambda: cluster.runtime.deploy(MODEL, "v3"),
                 lambda: cluster.runtime.endpoints(), lambda: cluster.runtime.probe(MODEL, "v2"),
                 lambda: cluster.runtime.remove(MODEL, "v2")):
        with pytest.raises(DeployError, match="cannot reach the Kubernetes API server"):
            call()


def test_bad_names_fail_before_any_call(cluster):
    for model, version in [("Risk", "v1"), (MODEL, "v1."), (MODEL, "x" * 64)]:
        with pytest.raises(DeployError):
            cluster.runtime.deploy(model, version)
    with pytest.raises(DeployError, match="shadow itself"):
        cluster.runtime.deploy(MODEL, "v2", shadow="v2")
    assert cluster.kube.calls == []


def test_default_client_without_credentials_is_a_deploy_error(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DeployError, match="no Kubernetes credentials"):
        KubernetesRuntime(NS).endpoints()
