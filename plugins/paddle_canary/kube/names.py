"""Names and labels of the Kubernetes objects paddle-canary manages.

Per model: the Service ``<model>-serving`` (the host Istio routes), the VirtualService and the
DestinationRule of the same name. Per version: a Deployment and a Service
``<model>-serving-<slug>`` whose pods carry ``app: <model>-serving`` and ``version: <version>``
(Istio's conventions, so a DestinationRule subset selects them) and paddle-canary's own labels.
Object names longer than 63 characters, or not starting with a letter (Service names must), are
shortened with a hash so that two versions never share a name.
"""

from __future__ import annotations

import hashlib
import re

from paddle_canary.errors import UserError

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "paddle-canary"
MODEL_LABEL = "paddle-canary/model"
VERSION_LABEL = "paddle-canary/version"
APP_LABEL = "app"            # Istio's convention: the workload
ISTIO_VERSION_LABEL = "version"  # Istio's convention: what a DestinationRule subset selects

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class KubeNameError(UserError, ValueError):
    """A model, version or namespace that cannot name or label a Kubernetes object."""


def check_dns_label(value: object, what: str) -> str:
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise KubeNameError(
            f"{what} {value!r} is not a DNS-1123 label (lower-case letters, digits, inner '-', "
            "at most 63 characters)")
    return value


def version_label(version: object) -> str:
    """The ``version`` pod label for a registry version; refused if Kubernetes cannot hold it."""
    if not isinstance(version, str) or not _LABEL_VALUE.fullmatch(version):
        raise KubeNameError(
            f"version {version!r} cannot be a Kubernetes label value (at most 63 characters, "
            "letters, digits, '-', '_', '.', starting and ending with a letter or digit)")
    return version


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def version_slug(version: object) -> str:
    """A DNS-1123 label for a version (DestinationRule subset names, object name suffixes).

    A version that already is one is used as is. Otherwise it is lower-cased with ``.``/``_``
    turned into ``-`` and suffixed with 8 hex digits of its SHA-1, so that ``V1.2`` and ``v1-2``
    never share a slug.
    """
    label = version_label(version)
    if _DNS_LABEL.fullmatch(label):
        return label
    base = re.sub(r"[^a-z0-9-]", "-", label.lower())[:54].strip("-") or "v"
    return f"{base}-{_digest(label)}"


def object_name(*parts: str) -> str:
    """``parts`` joined by ``-`` as a DNS-1035 label (valid for every kind, Services included)."""
    name = "-".join(parts)
    if _DNS1035.fullmatch(name):
        return name
    base = re.sub(r"[^a-z0-9-]", "-", name.lower())
    if not base[:1].isalpha():
        base = "pc-" + base
    return f"{base[:54].rstrip('-')}-{_digest(name)}"


def serving_app(model: str) -> str:
    """The model's ``app`` label and the name of its Service, VirtualService, DestinationRule."""
    return object_name(check_dns_label(model, "model name"), "serving")


def version_object_name(model: str, version: str) -> str:
    """The name of a version's Deployment and Service."""
    return object_name(serving_app(model), version_slug(version))


def model_host(model: str, namespace: str) -> str:
    """The cluster host name of the model's Service (what the VirtualService routes)."""
    return f"{serving_app(model)}.{check_dns_label(namespace, 'namespace')}.svc.cluster.local"


def version_host(model: str, version: str, namespace: str) -> str:
    return (f"{version_object_name(model, version)}."
            f"{check_dns_label(namespace, 'namespace')}.svc.cluster.local")


def managed_labels(model: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, MODEL_LABEL: check_dns_label(model, "model name")}


def pod_labels(model: str, version: str) -> dict[str, str]:
    """The labels of a version's pods: Istio's app/version and paddle-canary's model/version."""
    return {APP_LABEL: serving_app(model), ISTIO_VERSION_LABEL: version_label(version),
            MODEL_LABEL: model, VERSION_LABEL: version}


def selector(labels: dict[str, str]) -> str:
    """A label selector string matching every label in ``labels``."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def is_managed(obj: dict) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY
