"""Versions as Kubernetes Deployments: one Deployment and one Service per version, created and
deleted through the official ``kubernetes`` client (objects: :mod:`paddle_canary.kube.workload`).

- ``deploy`` creates the model's Service (the host the Istio router routes, once), the
  version's Service and its Deployment, then waits until the rollout is complete: every pod
  of the current template ready, and ready means the kubelet's readiness probe on
  ``/deep_health`` (a real inference) passes. A version already running as asked is returned
  as it is; one running with another spec (image, shadow, resources) is rolled to the new one.
  Pods that cannot start (bad image name, a crash loop, a missing secret, the rollout's
  progress deadline) fail the deploy at once with the reason; others wait up to the timeout.
- ``probe`` is one look through the API server, never a direct HTTP call (the caller need not
  reach pod IPs): ``gone`` without a Deployment (or while it is deleted, or scaled to 0),
  ``healthy`` while at least one pod is ready (its ``/deep_health`` passes), ``failing``
  otherwise, with the pods' reasons. The kubelet probes every 5 s and marks a pod unready after
  3 failures, so a version that breaks is seen as failing within about 15-20 s.
- An endpoint's ``instance`` is ``<Deployment uid>/r<revision>``: the ReplicaSet revision in
  effect. Deleting and recreating the Deployment, or rolling it (a new template, ``kubectl
  rollout restart``), gives another instance.
- Prometheus finds the pods by their ``prometheus.io/*`` annotations (the cluster's
  Prometheus with the usual ``kubernetes-pods`` scrape job); nothing else is registered.
- ``scale`` / ``follow_weight``: optional, Argo Rollouts' dynamic scaling of the candidate
  (replicas proportional to its traffic weight, never fewer than one).

RBAC in the namespace: ``get, list, create, update, patch, delete`` on ``deployments``
(apps), ``get, list, create, delete`` on ``services`` and ``list`` on ``pods``.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from paddle_canary.errors import UserError
from paddle_canary.kube import api as kube_api
from paddle_canary.kube import names, workload
from paddle_canary.kube.config import DEFAULT_CONN_ID, DEFAULT_IMAGE, KubeSettings, ModelKube
from paddle_canary.runtime.base import (FAILING, GONE, HEALTHY, DeployError, Endpoint, Runtime,
                                        VersionHealth)

RBAC = ("get/list/create/update/patch/delete on deployments.apps, get/list/create/delete on "
        "services and list on pods")
# Waiting reasons that do not go away by waiting: the deploy fails at once with them.
FATAL_REASONS = ("InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError",
                 "CreateContainerError", "CrashLoopBackOff")


class KubernetesRuntime(Runtime):
    """Runs model versions as Deployments in one namespace (see the module docstring).

    ``image``: the image of a version, a template with ``{model}`` and ``{version}``.
    ``model_config``: ``model -> ModelKube`` (replicas, GPUs, resources, placement from
    ``model.yaml``); default: one replica, no GPU. ``apis``: a :class:`KubeApis` (default:
    from the pod's service account or the kubeconfig, at the first call).
    """

    kind = "kubernetes"

    def __init__(self, namespace: str, *, image: str = DEFAULT_IMAGE,
                 model_config: Callable[[str], ModelKube] | None = None, apis=None,
                 service_account: str | None = None, deploy_timeout_s: float = 900.0,
                 poll_s: float = 2.0, image_pull_policy: str = "IfNotPresent",
                 conn_id: str = DEFAULT_CONN_ID):
        self.settings = KubeSettings(namespace=namespace, image=image,
                                     service_account=service_account,
                                     deploy_timeout_s=deploy_timeout_s, conn_id=conn_id)
        self.namespace = namespace
        self.model_config = model_config or (lambda model: ModelKube())
        self.poll_s = poll_s
        self.image_pull_policy = image_pull_policy
        self._apis = apis

    @classmethod
    def from_settings(cls, settings: KubeSettings, registry=None, apis=None,
                      poll_s: float = 2.0) -> "KubernetesRuntime":
        """From :class:`KubeSettings`; ``registry`` (a :class:`Registry`) gives each model's
        ``kubernetes:`` section of ``model.yaml``."""
        def model_config(model: str) -> ModelKube:
            if registry is None:
                return ModelKube()
            return ModelKube.from_model_yaml(registry.model_defaults(model),
                                             where=f"{model}/model.yaml")
        return cls(settings.namespace, image=settings.image, model_config=model_config,
                   apis=apis, service_account=settings.service_account,
                   deploy_timeout_s=settings.deploy_timeout_s, poll_s=poll_s,
                   conn_id=settings.conn_id)

    # ---------------------------------------------------------------- API plumbing

    @property
    def apis(self) -> kube_api.KubeApis:
        if self._apis is None:
            self._apis = kube_api.connect(DeployError, self.settings.conn_id)
        return self._apis

    def _call(self, what: str, fn, *args, **kwargs):
        return kube_api.as_dict(kube_api.call(what, fn, *args, error=DeployError, rbac=RBAC,
                                              **kwargs))

    def _read_deployment(self, model: str, version: str) -> dict | None:
        name = names.version_object_name(model, version)
        return self._call(f"reading Deployment {self.namespace}/{name}",
                          self.apis.apps.read_namespaced_deployment, name, self.namespace,
                          missing=None)

    def _pods(self, model: str, version: str) -> list[dict]:
        answer = self._call(f"listing pods of {model} {version}",
                            self.apis.core.list_namespaced_pod, self.namespace,
                            label_selector=names.selector(names.pod_labels(model, version)))
        return list(answer.get("items") or [])

    def _ensure_service(self, body: dict) -> None:
        name = body["metadata"]["name"]
        live = self._call(f"reading Service {self.namespace}/{name}",
                          self.apis.core.read_namespaced_service, name, self.namespace,
                          missing=None)
        if live is None:
            self._call(f"creating Service {self.namespace}/{name}",
                       self.apis.core.create_namespaced_service, self.namespace, body,
                       field_manager=kube_api.FIELD_MANAGER, field_validation=kube_api.STRICT,
                       not_found=f"does namespace {self.namespace!r} exist?")
        elif not names.is_managed(live):
            raise DeployError(f"Service {self.namespace}/{name} exists but was not created by "
                              "paddle-canary; it will not be taken over (rename or delete it)")

    # ---------------------------------------------------------------- the runtime

    def _endpoint(self, dep: dict) -> Endpoint:
        labels = dep["metadata"].get("labels") or {}
        model, version = labels[names.MODEL_LABEL], labels[names.VERSION_LABEL]
        return Endpoint(model=model, version=version,
                        url=f"http://{names.version_host(model, version, self.namespace)}:"
                            f"{workload.PORT}",
                        port=workload.PORT, pid=None, instance=_instance(dep))

    def deploy(self, model: str, version: str, *, shadow: str | None = None) -> Endpoint:
        def spec(shadow: str | None) -> dict:
            try:
                cfg = self.model_config(model)
                return workload.deployment(
                    model, version, self.namespace, self.settings.image_for(model, version),
                    placement=cfg.serving, replicas=cfg.replicas,
                    service_account=self.settings.service_account, shadow=shadow,
                    shadow_image=self.settings.image_for(model, shadow) if shadow else None,
                    image_pull_policy=self.image_pull_policy)
            except UserError as exc:  # bad names, a bad model.yaml: nothing was changed
                if isinstance(exc, DeployError):
                    raise
                raise DeployError(f"{model} {version}: {exc}") from exc

        desired = spec(shadow)
        name = desired["metadata"]["name"]
        live = self._read_deployment(model, version)
        kept = _live_shadow(live) if shadow is None else None
        if kept:  # a running version's shadow is kept (Runtime.deploy): it serves, no rollout
            desired = spec(kept)
        self._ensure_service(workload.model_service(model, self.namespace))
        self._ensure_service(workload.version_service(model, version, self.namespace))
        if live is not None and not names.is_managed(live):
            raise DeployError(f"Deployment {self.namespace}/{name} exists but was not created "
                              "by paddle-canary; it will not be taken over")
        if live is not None and live["metadata"].get("deletionTimestamp"):
            raise DeployError(f"Deployment {self.namespace}/{name} is being deleted; deploy "
                              "again once it is gone")
        if live is None:
            self._call(f"creating Deployment {self.namespace}/{name}",
                       self.apis.apps.create_namespaced_deployment, self.namespace, desired,
                       field_manager=kube_api.FIELD_MANAGER, field_validation=kube_api.STRICT)
        elif (live["metadata"].get("annotations") or {}).get(workload.SPEC_HASH_ANNOTATION) != \
                desired["metadata"]["annotations"][workload.SPEC_HASH_ANNOTATION]:
            body = dict(desired, metadata={**desired["metadata"],
                                           "resourceVersion": live["metadata"]["resourceVersion"]})
            self._call(f"updating Deployment {self.namespace}/{name} (another spec asked)",
                       self.apis.apps.replace_namespaced_deployment, name, self.namespace, body,
                       field_manager=kube_api.FIELD_MANAGER, field_validation=kube_api.STRICT)
        dep = self._wait_rolled_out(model, version)
        return self._endpoint(dep)

    def _wait_rolled_out(self, model: str, version: str) -> dict:
        """The Deployment once its rollout is complete; :class:`DeployError` on a fatal pod
        state or after the deploy timeout (with the pods' reasons)."""
        deadline = time.monotonic() + self.settings.deploy_timeout_s
        while True:
            dep = self._read_deployment(model, version)
            if dep is None:
                raise DeployError(f"{model} {version}: the Deployment disappeared while starting")
            state, detail = rollout_state(dep)
            if state == "done":
                return dep
            problems, fatal = pod_problems(self._pods(model, version))
            if state == "failed" or fatal:
                raise DeployError(f"{model} {version} did not start: "
                                  f"{'; '.join(filter(None, [detail, *problems]))}")
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"{model} {version} not ready within {self.settings.deploy_timeout_s:.0f} s: "
                    f"{'; '.join(filter(None, [detail, *problems])) or 'no pod ready'}")
            time.sleep(self.poll_s)

    def remove(self, model: str, version: str) -> None:
        name = names.version_object_name(model, version)
        dep = self._read_deployment(model, version)
        if dep is not None and not names.is_managed(dep):
            raise DeployError(f"Deployment {self.namespace}/{name} was not created by "
                              "paddle-canary; not deleting it")
        if dep is not None:
            self._call(f"deleting Deployment {self.namespace}/{name}",
                       self.apis.apps.delete_namespaced_deployment, name, self.namespace,
                       propagation_policy="Background", missing=None)
        svc = self._call(f"reading Service {self.namespace}/{name}",
                         self.apis.core.read_namespaced_service, name, self.namespace,
                         missing=None)
        if svc is not None and names.is_managed(svc):
            self._call(f"deleting Service {self.namespace}/{name}",
                       self.apis.core.delete_namespaced_service, name, self.namespace,
                       missing=None)

    def endpoints(self, model: str | None = None) -> list[Endpoint]:
        labels = {names.MANAGED_BY_LABEL: names.MANAGED_BY}
        if model is not None:
            labels[names.MODEL_LABEL] = names.check_dns_label(model, "model name")
        answer = self._call(f"listing Deployments in {self.namespace}",
                            self.apis.apps.list_namespaced_deployment, self.namespace,
                            label_selector=names.selector(labels))
        deps = [d for d in answer.get("items") or []
                if not d["metadata"].get("deletionTimestamp")
                and names.VERSION_LABEL in (d["metadata"].get("labels") or {})]
        return sorted((self._endpoint(d) for d in deps), key=lambda e: (e.model, e.version))

    def probe(self, model: str, version: str) -> VersionHealth:
        dep = self._read_deployment(model, version)
        if dep is None:
            return VersionHealth(GONE, "no Deployment")
        if dep["metadata"].get("deletionTimestamp"):
            return VersionHealth(GONE, "the Deployment is being deleted")
        if not (dep.get("spec") or {}).get("replicas"):
            return VersionHealth(GONE, "scaled to 0 replicas")
        status = dep.get("status") or {}
        ready = int(status.get("readyReplicas") or 0)
        if ready:
            return VersionHealth(HEALTHY, f"{ready} pod(s) ready (/deep_health passing)",
                                 _instance(dep))
        problems, _ = pod_problems(self._pods(model, version))
        return VersionHealth(FAILING, "; ".join(problems) or "no pod ready", _instance(dep))

    # ---------------------------------------------------------------- dynamic scaling

    def scale(self, model: str, version: str, replicas: int, *, wait: bool = True) -> Endpoint:
        """Set ``version``'s replicas (kept across later ``deploy`` calls of the same spec)."""
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise DeployError(f"replicas must be an integer >= 1, got {replicas!r}")
        name = names.version_object_name(model, version)
        dep = self._read_deployment(model, version)
        if dep is None:
            raise DeployError(f"{model} {version} is not deployed; deploy it before scaling")
        if dep["spec"].get("replicas") != replicas:
            self._call(f"scaling Deployment {self.namespace}/{name} to {replicas}",
                       self.apis.apps.patch_namespaced_deployment, name, self.namespace,
                       {"spec": {"replicas": replicas}},  # idempotent: no version guard
                       field_manager=kube_api.FIELD_MANAGER,
                       _content_type=kube_api.MERGE_PATCH)
        return self._endpoint(self._wait_rolled_out(model, version) if wait
                              else self._read_deployment(model, version))

    def follow_weight(self, model: str, version: str, weight: int) -> Endpoint:
        """Scale the candidate to its share of the model's configured replicas (Argo Rollouts'
        dynamic scaling): call before raising the weight; waits until the pods are ready."""
        return self.scale(model, version,
                          replicas_for_weight(self.model_config(model).replicas, weight))


def replicas_for_weight(replicas: int, weight: int) -> int:
    """Pods a version needs for ``weight`` % of the traffic ``replicas`` pods carry (>= 1)."""
    from paddle_canary.traffic.base import check_weight

    return max(1, math.ceil(replicas * check_weight(weight) / 100))


def _instance(dep: dict) -> str:
    revision = ((dep["metadata"].get("annotations") or {})
                .get(workload.REVISION_ANNOTATION) or "0")
    return f"{dep['metadata'].get('uid', '')}/r{revision}"


def rollout_state(dep: dict) -> tuple[str, str]:
    """``("done" | "waiting" | "failed", detail)`` as ``kubectl rollout status`` decides it."""
    meta, spec, status = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return "failed", f"rollout exceeded its progress deadline ({cond.get('message', '')})"
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return "waiting", "the Deployment controller has not seen the change yet"
    want = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < want:
        return "waiting", f"{updated} of {want} pods updated"
    if total > updated:
        return "waiting", f"{total - updated} old pod(s) still terminating"
    if available < updated:
        return "waiting", f"{available} of {updated} pods ready"
    return "done", ""


def pod_problems(pods: list[dict]) -> tuple[list[str], bool]:
    """What keeps pods from being ready, and whether any of it is fatal (see
    :data:`FATAL_REASONS`)."""
    problems, fatal = [], False
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                problems.append(f"{name}: not scheduled ({cond.get('reason')}: "
                                f"{cond.get('message', '')})")
        for cs in (status.get("initContainerStatuses") or []) + \
                (status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason and reason not in ("ContainerCreating", "PodInitializing"):
                problems.append(f"{name}/{cs.get('name')}: {reason}"
                                + (f" ({waiting['message']})" if waiting.get("message") else ""))
                fatal = fatal or reason in FATAL_REASONS
            elif (cs.get("state") or {}).get("running") and not cs.get("ready"):
                problems.append(f"{name}/{cs.get('name')}: running, readiness (/deep_health) "
                                "not passing")
    return problems, fatal


def _live_shadow(dep: dict | None) -> str | None:
    """The shadow version a Deployment's serving container runs with (``--shadow V``)."""
    if dep is None:
        return None
    for container in (((dep.get("spec") or {}).get("template") or {}).get("spec") or {}) \
            .get("containers") or []:
        args = list(container.get("args") or [])
        if workload.SHADOW_ARG in args[:-1]:
            return args[args.index(workload.SHADOW_ARG) + 1]
    return None
