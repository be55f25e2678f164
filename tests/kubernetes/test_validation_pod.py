"""The GPU validation pod, built from the real KubernetesPodOperator without a cluster
(``build_pod_request_obj(dry_run=True)``), checked field by field and against the Kubernetes
1.37 schema (kubernetes-validate, strict). What only a cluster shows (scheduling on a GPU node,
the image pull, the deferral through the triggerer, the sidecar handing over XCom) is listed in
the README."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from paddle_canary.kube.config import GPU_TOLERATION, KubeSettings, ModelKube

K8S_VERSION = "1.37.0"
PLAN = {"model": "risk-score", "candidate": "v2", "baseline": "v1", "runtime": "kubernetes"}
SETTINGS = KubeSettings(image="registry.example.com/ml/{model}-serving:{version}",
                        service_account="canary-validator", conn_id="kubernetes_default")


@pytest.fixture(scope="module")
def vp(tmp_path_factory):
    """The operator module, imported with an Airflow home of its own unless one is set."""
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = str(tmp_path_factory.mktemp("airflow_home"))
    from paddle_canary.airflow import validation_pod
    return validation_pod


@pytest.fixture(autouse=True)
def connection(monkeypatch):
    """The Kubernetes connection the hook reads (for the XCom sidecar image and namespace)."""
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(
        {"conn_type": "kubernetes", "extra": {"in_cluster": False, "namespace": "from-conn"}}))


def build(vp, plan=PLAN, config=None, settings=SETTINGS, image=None, **kwargs):
    op = vp.validation_pod_task(settings=settings, **kwargs)
    op.configure(plan, image=image, config=config or ModelKube())
    pod = op.build_pod_request_obj(dry_run=True)
    return op, pod, ApiClient().sanitize_for_serialization(pod)


def containers(pod: dict) -> dict:
    return {c["name"]: c for c in pod["spec"]["containers"]}


def test_the_operator_is_a_deferrable_kubernetes_pod_operator(vp):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    op = vp.validation_pod_task(settings=SETTINGS)
    assert isinstance(op, KubernetesPodOperator) and op.task_id == "validate_model_pod"
    assert op.deferrable and op.do_xcom_push and op.get_logs
    assert op.on_finish_action.value == "delete_pod"
    assert op.kubernetes_conn_id == "kubernetes_default" and op.retries == 0
    assert op.active_deadline_seconds == 3600
    assert vp.validation_task_for("kubernetes") == "validate_model_pod"
    assert vp.validation_task_for("local") == vp.validation_task_for("docker") == "validate_model"


def test_pod_has_the_gpu_the_image_and_the_command(vp):
    op, pod, d = build(vp)
    base = containers(d)["base"]
    assert base["resources"] == {"limits": {"nvidia.com/gpu": "1"}}  # GPUs in limits only
    assert base["image"] == "registry.example.com/ml/risk-score-serving:v2"
    assert base["command"] == ["paddle-canary"]
    assert base["args"] == ["validate", "--model", "risk-score", "--version", "v2",
                            "--device", "auto", "--xcom", "/airflow/xcom/return.json",
                            "--termination-log", "/dev/termination-log",
                            "--baseline", "v1", "--baseline-registry", "/baseline-registry"]
    assert base["terminationMessagePolicy"] == "File"
    assert d["spec"]["tolerations"] == [GPU_TOLERATION]
    assert d["spec"].get("nodeSelector") is None
    assert d["spec"]["serviceAccountName"] == "canary-validator"
    assert d["spec"]["restartPolicy"] == "Never"
    assert d["metadata"]["namespace"] == "from-conn"  # no namespace setting: the connection's
    assert d["metadata"]["labels"]["paddle-canary/role"] == "validation"
    # The stable version's model comes out of the stable version's own image.
    (init,) = d["spec"]["initContainers"]
    assert init["image"] == "registry.example.com/ml/risk-score-serving:v1"
    assert init["command"][-2:] == ["/srv/model_registry/risk-score/v1", "/out"]
    mounts = {m["mountPath"]: m for m in base["volumeMounts"]}
    assert mounts["/baseline-registry/risk-score/v1"]["readOnly"] is True
    assert "/airflow/xcom" in mounts  # the XCom volume the sidecar reads
    assert "airflow-xcom-sidecar" in containers(d)
    kubernetes_validate.validate(d, K8S_VERSION, strict=True)


def test_model_yaml_sets_gpus_selector_tolerations_and_resources(vp):
    config = ModelKube.from_model_yaml({"kubernetes": {"validation": {
        "gpus": 2, "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "team", "value": "ml", "effect": "NoSchedule"}],
        "resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "32Gi"}},
    }}})
    _, _, d = build(vp, config=config,
                    settings=KubeSettings(namespace="ml", namespace_given=True,
                                          image=SETTINGS.image))
    base = containers(d)["base"]
    assert base["resources"] == {"limits": {"memory": "32Gi", "nvidia.com/gpu": "2"},
                                 "requests": {"cpu": "4", "memory": "16Gi"}}
    assert d["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert d["spec"]["tolerations"] == [GPU_TOLERATION, {"key": "team", "operator": "Equal",
                                                         "value": "ml", "effect": "NoSchedule"}]
    assert d["metadata"]["namespace"] == "ml"
    assert "serviceAccountName" not in d["spec"]
    kubernetes_validate.validate(d, K8S_VERSION, strict=True)


def test_first_release_validates_the_candidate_alone_and_cpu_pods_work(vp):
    config = ModelKube.from_model_yaml({"kubernetes": {"validation": {"gpus": 0}}})
    _, _, d = build(vp, plan={**PLAN, "baseline": None}, config=config)
    base = containers(d)["base"]
    assert "--baseline" not in base["args"]
    assert not d["spec"].get("initContainers")
    assert not base.get("resources")
    assert not d["spec"].get("tolerations")
    kubernetes_validate.validate(d, K8S_VERSION, strict=True)


def test_the_built_image_from_xcom_wins(vp, monkeypatch):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    seen = {}

    def fake_execute(self, context):
        seen.update(image=self.image, args=self.arguments)
        return {"passed": True, "problems": []}

    monkeypatch.setattr(KubernetesPodOperator, "execute", fake_execute)
    op = vp.validation_pod_task(settings=SETTINGS, model_config=lambda m: ModelKube())
    built = "registry.example.com/ml/risk-score-serving:v2-sha256.abc"
    for xcom in (built, {"image": built}):
        ctx = {"ti": FakeTI({"resolve_plan": PLAN, "build_image": xcom})}
        assert op.execute(ctx) == {"passed": True, "problems": []}
        assert seen["image"] == built and "--baseline" in seen["args"]


class FakeTI:
    def __init__(self, xcoms):
        self.xcoms = xcoms

    def xcom_pull(self, task_ids):
        return self.xcoms.get(task_ids)


@pytest.mark.parametrize("outcome,expect", [
    ("failed", "offline validation failed: candidate_scores: expect_column_kl"),
    ("no-summary", "the validation pod failed: Pod validate-x returned a failure"),
    ("passed-false", "offline validation failed: decisions differ"),
    ("empty", "the pod wrote no summary"),
])
def test_a_failed_validation_fails_the_task_with_the_reason(vp, monkeypatch, outcome, expect):
    from airflow.exceptions import AirflowException
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk.exceptions import AirflowFailException

    summary = {"passed": False, "problems": ["candidate_scores: expect_column_kl_divergence_"
                                             "to_be_less_than(score) failed: observed 1.04"]}

    def fake_execute(self, context):
        if outcome == "failed":
            self._summary = summary  # what extract_xcom read from the pod before cleanup
            raise AirflowException("Pod validate-x returned a failure.\noffline validation "
                                   "failed: ...")
        if outcome == "no-summary":
            raise AirflowException("Pod validate-x returned a failure.")
        if outcome == "passed-false":
            return {"passed": False, "problems": ["decisions differ"]}
        return None

    monkeypatch.setattr(KubernetesPodOperator, "execute", fake_execute)
    reported = []
    op = vp.validation_pod_task(settings=SETTINGS, model_config=lambda m: ModelKube(),
                                on_summary=lambda plan, s: reported.append((plan, s)))
    with pytest.raises(AirflowFailException, match=expect):
        op.execute({"ti": FakeTI({"resolve_plan": PLAN})})
    assert reported and reported[0][0] == PLAN


def test_a_deferral_goes_through(vp, monkeypatch):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk.exceptions import TaskDeferred

    def fake_execute(self, context):
        raise TaskDeferred(trigger=None, method_name="trigger_reentry")

    monkeypatch.setattr(KubernetesPodOperator, "execute", fake_execute)
    op = vp.validation_pod_task(settings=SETTINGS, model_config=lambda m: ModelKube())
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTI({"resolve_plan": PLAN})})


def test_no_plan_fails_clearly(vp):
    from airflow.sdk.exceptions import AirflowFailException

    op = vp.validation_pod_task(settings=SETTINGS)
    with pytest.raises(AirflowFailException, match="no release plan"):
        op.execute({"ti": FakeTI({})})


@pytest.mark.slow
def test_importing_and_building_the_task_stays_light():
    """The DAG file builds this task at parse time: no numpy, pandas, GX or paddle."""
    code = ("import sys, json, os; "
            "from paddle_canary.airflow.validation_pod import validation_pod_task; "
            "validation_pod_task(); "
            "print(json.dumps([m for m in ('numpy', 'pandas', 'great_expectations', 'paddle') "
            "if m in sys.modules]))")
    env = {**os.environ, "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME", "/tmp")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120, env=env).stdout.strip().splitlines()[-1]
    assert json.loads(out) == []
