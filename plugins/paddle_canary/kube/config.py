"""What the Kubernetes parts need to know: cluster-wide settings (environment) and a model's
pod placement (the ``kubernetes:`` section of its ``model.yaml``).

Settings, from the environment (the factories and the validation pod read them):

- ``PADDLE_CANARY_K8S_NAMESPACE``: where versions, routes and validation pods live (default
  ``default``; the validation pod falls back to the Airflow connection's namespace when unset)
- ``PADDLE_CANARY_K8S_IMAGE``: the image of a version, a template with ``{model}`` and
  ``{version}`` (default ``{model}-serving:{version}``, what ``build_image`` tags; put the
  registry in front, e.g. ``registry.example.com/ml/{model}-serving:{version}``)
- ``PADDLE_CANARY_K8S_SERVICE_ACCOUNT``: service account of serving and validation pods
- ``PADDLE_CANARY_K8S_CONN_ID``: the Airflow Kubernetes connection (default
  ``kubernetes_default``)
- ``PADDLE_CANARY_K8S_DEPLOY_TIMEOUT_S``: how long a version may take to become ready (900)
- ``PADDLE_CANARY_ISTIO_MODE``: ``sticky`` (default; per-user buckets) or ``weighted``
- ``PADDLE_CANARY_ISTIO_GATEWAYS``: comma-separated ``namespace/name`` of Istio gateways the
  VirtualServices bind to (default: none, the mesh's sidecars route)

``model.yaml`` (all optional; defaults shown)::

    kubernetes:
      serving:                  # each version's Deployment
        replicas: 1
        gpus: 0                 # nvidia.com/gpu limit per pod
        resources: {}           # requests/limits of cpu, memory, ephemeral-storage
        node_selector: {}
        tolerations: []         # with gpus > 0: nvidia.com/gpu Exists NoSchedule
      validation:               # the validation pod
        gpus: 1
        resources: {}
        node_selector: {}
        tolerations: []         # with gpus > 0: nvidia.com/gpu Exists NoSchedule

Unknown keys and bad values are refused with a message naming them (a typo must never place a
pod somewhere unexpected).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from paddle_canary.errors import UserError
from paddle_canary.kube.names import check_dns_label

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
DEFAULT_IMAGE = "{model}-serving:{version}"
DEFAULT_CONN_ID = "kubernetes_default"

_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]i?|Ki)?$")
_RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}"
                        r"[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class KubeConfigError(UserError, ValueError):
    """A setting or a ``model.yaml`` ``kubernetes:`` entry that cannot be used."""


@dataclasses.dataclass(frozen=True)
class KubeSettings:
    namespace: str = "default"
    namespace_given: bool = False
    image: str = DEFAULT_IMAGE
    service_account: str | None = None
    conn_id: str = DEFAULT_CONN_ID
    deploy_timeout_s: float = 900.0
    istio_sticky: bool = True
    istio_gateways: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_dns_label(self.namespace, "namespace")
        if self.service_account is not None:
            check_dns_label(self.service_account, "service account")
        if "{version}" not in self.image or any(c.isspace() for c in self.image):
            raise KubeConfigError(f"image template {self.image!r} must contain {{version}} and "
                                  "no spaces")
        try:
            self.image.format(model="m", version="v")
        except (KeyError, IndexError, ValueError) as exc:
            raise KubeConfigError(f"image template {self.image!r}: only {{model}} and "
                                  f"{{version}} may be used ({exc})") from None
        if not self.deploy_timeout_s > 0:
            raise KubeConfigError(f"deploy timeout must be > 0 s, got {self.deploy_timeout_s}")

    def image_for(self, model: str, version: str) -> str:
        return self.image.format(model=model, version=version)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "KubeSettings":
        env = os.environ if env is None else env
        mode = env.get("PADDLE_CANARY_ISTIO_MODE") or "sticky"
        if mode not in ("sticky", "weighted"):
            raise KubeConfigError(
                f"PADDLE_CANARY_ISTIO_MODE must be sticky or weighted, got {mode!r}")
        try:
            timeout = float(env.get("PADDLE_CANARY_K8S_DEPLOY_TIMEOUT_S") or 900)
        except ValueError:
            raise KubeConfigError("PADDLE_CANARY_K8S_DEPLOY_TIMEOUT_S must be a number") from None
        namespace = env.get("PADDLE_CANARY_K8S_NAMESPACE")
        gateways = tuple(g.strip() for g in (env.get("PADDLE_CANARY_ISTIO_GATEWAYS") or "")
                         .split(",") if g.strip())
        return cls(namespace=namespace or "default", namespace_given=bool(namespace),
                   image=env.get("PADDLE_CANARY_K8S_IMAGE") or DEFAULT_IMAGE,
                   service_account=env.get("PADDLE_CANARY_K8S_SERVICE_ACCOUNT") or None,
                   conn_id=env.get("PADDLE_CANARY_K8S_CONN_ID") or DEFAULT_CONN_ID,
                   deploy_timeout_s=timeout, istio_sticky=mode == "sticky",
                   istio_gateways=gateways)


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where and with what a pod runs: GPUs (a limit), CPU/memory, node selector, tolerations."""

    gpus: int = 0
    resources: dict = dataclasses.field(default_factory=dict)
    node_selector: dict = dataclasses.field(default_factory=dict)
    tolerations: tuple = ()

    def resource_requirements(self) -> dict:
        """``resources`` of the container: GPUs go in limits only (Kubernetes requires a GPU
        request, when given, to equal the limit; leaving it out does that)."""
        out = {k: dict(v) for k, v in self.resources.items()}
        if self.gpus:
            out.setdefault("limits", {})[GPU_RESOURCE] = str(self.gpus)
        return out

    def to_dict(self) -> dict:
        return {"gpus": self.gpus, "resources": self.resource_requirements(),
                "node_selector": dict(self.node_selector),
                "tolerations": [dict(t) for t in self.tolerations]}


@dataclasses.dataclass(frozen=True)
class ModelKube:
    """The ``kubernetes:`` section of one model's ``model.yaml``, checked."""

    replicas: int = 1
    serving: Placement = Placement()
    validation: Placement = Placement(gpus=1, tolerations=(GPU_TOLERATION,))

    @classmethod
    def from_model_yaml(cls, raw: dict | None, where: str = "model.yaml") -> "ModelKube":
        """From the whole ``model.yaml`` mapping (only its ``kubernetes`` key is read)."""
        section = (raw or {}).get("kubernetes")
        if section is None:
            return cls()
        where = f"{where}: kubernetes"
        _mapping(section, where, ("serving", "validation"))
        serving = section.get("serving") or {}
        _mapping(serving, f"{where}.serving", ("replicas", *_PLACEMENT_KEYS))
        replicas = serving.get("replicas", 1)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 100:
            raise KubeConfigError(f"{where}.serving.replicas must be an integer 1..100, "
                                  f"got {replicas!r}")
        return cls(replicas=replicas,
                   serving=_placement({k: v for k, v in serving.items() if k != "replicas"},
                                      f"{where}.serving", default_gpus=0),
                   validation=_placement(section.get("validation") or {},
                                         f"{where}.validation", default_gpus=1))


_PLACEMENT_KEYS = ("gpus", "resources", "node_selector", "tolerations")


def _mapping(value: Any, where: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise KubeConfigError(f"{where} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise KubeConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} "
                              f"(known: {', '.join(allowed)})")


def _placement(raw: dict, where: str, default_gpus: int) -> Placement:
    _mapping(raw, where, _PLACEMENT_KEYS)
    gpus = raw.get("gpus", default_gpus)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= 16:
        raise KubeConfigError(f"{where}.gpus must be an integer 0..16, got {gpus!r}")

    resources = raw.get("resources") or {}
    _mapping(resources, f"{where}.resources", ("requests", "limits"))
    for kind, values in resources.items():
        _mapping(values, f"{where}.resources.{kind}", _RESOURCE_NAMES)
        for name, quantity in values.items():
            if not isinstance(quantity, (str, int)) or isinstance(quantity, bool) or \
                    not _QUANTITY.fullmatch(str(quantity)):
                raise KubeConfigError(f"{where}.resources.{kind}.{name}: {quantity!r} is not a "
                                      "Kubernetes quantity (e.g. 500m, 2, 4Gi)")
    resources = {k: {n: str(q) for n, q in v.items()} for k, v in resources.items() if v}

    selector = raw.get("node_selector") or {}
    if not isinstance(selector, dict):
        raise KubeConfigError(f"{where}.node_selector must be a mapping of labels")
    for key, value in selector.items():
        if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key) or \
                not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
            raise KubeConfigError(f"{where}.node_selector: {key!r}: {value!r} is not a "
                                  "Kubernetes label (quote values such as \"true\")")

    tolerations = raw.get("tolerations")
    if tolerations is None:
        tolerations = [GPU_TOLERATION] if gpus else []
    if not isinstance(tolerations, list):
        raise KubeConfigError(f"{where}.tolerations must be a list")
    checked = []
    for i, t in enumerate(tolerations):
        at = f"{where}.tolerations[{i}]"
        _mapping(t, at, ("key", "operator", "value", "effect", "toleration_seconds"))
        operator = t.get("operator", "Equal")
        if operator not in ("Equal", "Exists"):
            raise KubeConfigError(f"{at}.operator must be Equal or Exists, got {operator!r}")
        if operator == "Exists" and t.get("value"):
            raise KubeConfigError(f"{at}: operator Exists takes no value")
        if "effect" in t and t["effect"] not in _EFFECTS:
            raise KubeConfigError(f"{at}.effect must be one of {', '.join(_EFFECTS)}")
        if "key" in t and (not isinstance(t["key"], str) or not _LABEL_KEY.fullmatch(t["key"])):
            raise KubeConfigError(f"{at}.key {t['key']!r} is not a valid taint key")
        seconds = t.get("toleration_seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
            raise KubeConfigError(f"{at}.toleration_seconds must be an integer")
        out = {"key": t.get("key"), "operator": operator, "value": t.get("value"),
               "effect": t.get("effect"), "tolerationSeconds": seconds}
        checked.append({k: v for k, v in out.items() if v is not None})
    return Placement(gpus=gpus, resources=resources, node_selector=dict(selector),
                     tolerations=tuple(checked))
