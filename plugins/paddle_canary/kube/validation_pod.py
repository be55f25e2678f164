"""The GPU validation pod of a candidate version, as KubernetesPodOperator arguments.

Plain Python over ``kubernetes.client`` models (no Airflow): :func:`pod_arguments` gives the
keyword arguments :class:`paddle_canary.airflow.validation_pod.ValidationPodOperator` sets on
the operator once the run's plan is known.

The pod runs the candidate's serving image with ``paddle-canary validate`` (GPU:
``nvidia.com/gpu`` in limits only, node selector and tolerations from ``model.yaml``). The
stable version's model comes from the stable version's own image: an init container copies it
into an ``emptyDir`` mounted as a one-version registry, so both models are scored in the same
pod and the full suite (KL divergence, decision agreement) runs there as it does elsewhere.
The summary goes to ``/airflow/xcom/return.json`` (XCom) and, on failure, the reason to
``/dev/termination-log`` (the task's failure message).
"""

from __future__ import annotations

from kubernetes.client import models as k8s

from paddle_canary.kube import names, workload
from paddle_canary.kube.config import KubeSettings, ModelKube

XCOM_PATH = "/airflow/xcom/return.json"
TERMINATION_LOG = "/dev/termination-log"
BASELINE_REGISTRY = "/baseline-registry"
BASELINE_VOLUME = "baseline-model"
DEADLINE_S = 3600       # the whole pod, image pull included
STARTUP_TIMEOUT_S = 900  # pending (scheduling on a GPU node, pulling a GPU image)


def validate_arguments(model: str, version: str, baseline: str | None) -> list[str]:
    """The ``paddle-canary validate`` command line inside the pod."""
    args = ["validate", "--model", model, "--version", version, "--device", "auto",
            "--xcom", XCOM_PATH, "--termination-log", TERMINATION_LOG]
    if baseline:
        args += ["--baseline", baseline, "--baseline-registry", BASELINE_REGISTRY]
    return args


def pod_arguments(model: str, version: str, baseline: str | None, *, image: str,
                  baseline_image: str | None, config: ModelKube,
                  settings: KubeSettings) -> dict:
    """KubernetesPodOperator keyword arguments for validating ``version`` against ``baseline``
    (None on a first release: the suite then checks the candidate alone)."""
    names.version_label(version)
    placement = config.validation
    resources = placement.resource_requirements()
    kwargs: dict = {
        "name": names.object_name("validate", names.check_dns_label(model, "model name"),
                                  names.version_slug(version)),
        "image": image,
        "cmds": ["paddle-canary"],
        "arguments": validate_arguments(model, version, baseline),
        "labels": {**names.managed_labels(model), names.VERSION_LABEL: version,
                   "paddle-canary/role": "validation"},
        "container_resources": k8s.V1ResourceRequirements(
            limits=resources.get("limits"), requests=resources.get("requests"))
        if resources else None,
        "node_selector": dict(placement.node_selector) or None,
        "tolerations": [k8s.V1Toleration(key=t.get("key"), operator=t.get("operator"),
                                         value=t.get("value"), effect=t.get("effect"),
                                         toleration_seconds=t.get("tolerationSeconds"))
                        for t in placement.tolerations] or None,
        "service_account_name": settings.service_account,
        "image_pull_policy": "IfNotPresent",
        "init_containers": None,
        "volumes": None,
        "volume_mounts": None,
        # Non-root on our containers only: the XCom sidecar KubernetesPodOperator adds
        # (alpine) runs as root, so a pod-wide runAsNonRoot would keep it from starting.
        "container_security_context": k8s.V1SecurityContext(allow_privilege_escalation=False,
                                                            run_as_non_root=True),
    }
    if settings.namespace_given:
        kwargs["namespace"] = settings.namespace
    if baseline:
        if not baseline_image:
            raise names.KubeNameError("validating against a baseline needs its image")
        names.version_label(baseline)
        init = workload.copy_model_init_container("baseline-model", baseline_image, model,
                                                  baseline, BASELINE_VOLUME)
        kwargs["init_containers"] = [k8s.V1Container(
            name=init["name"], image=init["image"], command=init["command"],
            image_pull_policy="IfNotPresent",
            volume_mounts=[k8s.V1VolumeMount(name=BASELINE_VOLUME, mount_path="/out")],
            security_context=k8s.V1SecurityContext(allow_privilege_escalation=False,
                                                   run_as_non_root=True))]
        kwargs["volumes"] = [k8s.V1Volume(name=BASELINE_VOLUME,
                                          empty_dir=k8s.V1EmptyDirVolumeSource())]
        kwargs["volume_mounts"] = [k8s.V1VolumeMount(
            name=BASELINE_VOLUME, mount_path=f"{BASELINE_REGISTRY}/{model}/{baseline}",
            read_only=True)]
    return kwargs
