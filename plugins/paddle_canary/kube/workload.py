"""The serving workload of a model on Kubernetes, rendered as plain dicts (no API calls here).

Per version a Deployment and a Service, both named :func:`names.version_object_name`; per model
the Service :func:`names.serving_app` that selects every version's pods (the host the Istio
VirtualService routes; its DestinationRule splits it by the ``version`` label).

A serving pod runs the version's image (``paddle-canary serve``, the model baked in):

- readiness on ``/deep_health`` (a real inference on the reference rows), so a pod gets traffic
  only while it scores correctly; liveness on ``/health``; a startup probe gives model loading
  (GPU initialisation, a large image) up to 10 minutes before liveness counts;
- GPUs as a ``nvidia.com/gpu`` limit when ``model.yaml`` asks, with its node selector and
  tolerations; CPU/memory requests and limits from ``model.yaml``;
- ``prometheus.io/*`` annotations, so the cluster's Prometheus scrapes ``/metrics``;
- with a shadow version (paired analysis), an init container started from the *shadow* version's
  image copies that version's model into an ``emptyDir`` mounted beside the serving version, and
  ``serve`` gets ``--shadow <version>``.
"""

from __future__ import annotations

import hashlib
import json

from paddle_canary.kube import names
from paddle_canary.kube.config import Placement

PORT = 8080  # the serving image's PADDLE_CANARY_PORT
IMAGE_REGISTRY_ROOT = "/srv/model_registry"  # where the serving image keeps its model
SPEC_HASH_ANNOTATION = "paddle-canary/spec-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
SHADOW_ARG = "--shadow"
_COPY = "import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True)"


def model_dir(model: str, version: str) -> str:
    """Where a version's model lives inside its serving image."""
    return f"{IMAGE_REGISTRY_ROOT}/{model}/{version}"


def copy_model_init_container(name: str, image: str, model: str, version: str,
                              volume: str) -> dict:
    """An init container that copies ``version``'s model out of its own image into ``volume``."""
    return {
        "name": name,
        "image": image,
        "command": ["python", "-c", _COPY, model_dir(model, version), "/out"],
        "volumeMounts": [{"name": volume, "mountPath": "/out"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }


def _probe(path: str, period: int, timeout: int, failures: int) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period,
            "timeoutSeconds": timeout, "failureThreshold": failures}


def deployment(model: str, version: str, namespace: str, image: str, *, placement: Placement,
               replicas: int = 1, service_account: str | None = None, shadow: str | None = None,
               shadow_image: str | None = None, image_pull_policy: str = "IfNotPresent") -> dict:
    """One version's Deployment. ``metadata.annotations`` carries a hash of everything rendered
    here, so the runtime can tell "already running as asked" from "asked for a change"."""
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise names.KubeNameError(f"invalid image {image!r}")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise names.KubeNameError(f"replicas must be a non-negative integer, got {replicas!r}")
    labels = names.pod_labels(model, version)
    args = ["serve", "--host", "0.0.0.0"]
    container: dict = {
        "name": "serving",
        "image": image,
        "imagePullPolicy": image_pull_policy,
        "args": args,
        "env": [{"name": "PADDLE_CANARY_PORT", "value": str(PORT)}],
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": _probe("/deep_health", 5, 5, 3),
        "livenessProbe": _probe("/health", 10, 2, 6),
        "startupProbe": _probe("/health", 5, 2, 120),
        # Per container, not pod-wide: Istio's injected init container runs as root.
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    resources = placement.resource_requirements()
    if resources:
        container["resources"] = resources
    pod_spec: dict = {"containers": [container], "terminationGracePeriodSeconds": 30}
    if shadow is not None:
        names.version_label(shadow)
        if shadow == version:
            raise names.KubeNameError(f"a version cannot shadow itself ({version!r})")
        if not shadow_image:
            raise names.KubeNameError("a shadow version needs its image")
        args += [SHADOW_ARG, shadow]
        pod_spec["initContainers"] = [copy_model_init_container(
            "shadow-model", shadow_image, model, shadow, "shadow-model")]
        pod_spec["volumes"] = [{"name": "shadow-model", "emptyDir": {}}]
        container["volumeMounts"] = [{"name": "shadow-model", "readOnly": True,
                                      "mountPath": model_dir(model, shadow)}]
    if service_account:
        pod_spec["serviceAccountName"] = names.check_dns_label(service_account, "service account")
    if placement.node_selector:
        pod_spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in placement.tolerations]
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(labels)},
        # Never fewer ready pods than asked while a version's pods are replaced.
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "progressDeadlineSeconds": 600,
        "template": {
            "metadata": {
                "labels": dict(labels),
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
                                "prometheus.io/path": "/metrics"},
            },
            "spec": pod_spec,
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": names.version_object_name(model, version),
            "namespace": names.check_dns_label(namespace, "namespace"),
            "labels": {**names.managed_labels(model), names.VERSION_LABEL: version,
                       names.APP_LABEL: labels[names.APP_LABEL],
                       names.ISTIO_VERSION_LABEL: version},
            "annotations": {SPEC_HASH_ANNOTATION: spec_hash(spec)},
        },
        "spec": spec,
    }


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _service(name: str, namespace: str, model: str, selector: dict, labels: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": names.check_dns_label(namespace, "namespace"),
                     "labels": {**names.managed_labels(model), **labels}},
        "spec": {
            "selector": selector,
            # Named "http" so that Istio treats the traffic as HTTP.
            "ports": [{"name": "http", "port": PORT, "targetPort": "http",
                       "appProtocol": "http"}],
        },
    }


def version_service(model: str, version: str, namespace: str) -> dict:
    """A version's own Service: its URL for direct calls (tests, debugging, shadow scoring)."""
    return _service(names.version_object_name(model, version), namespace, model,
                    names.pod_labels(model, version), {names.VERSION_LABEL: version})


def model_service(model: str, namespace: str) -> dict:
    """The model's Service in front of every version: the host Istio routes by subset."""
    app = names.serving_app(model)
    return _service(app, namespace, model, {names.APP_LABEL: app}, {})
