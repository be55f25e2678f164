"""Settings the Airflow way, registered as sources of :mod:`paddle_canary.settings_sources` when
this package is imported; without them the environment is used as before:

- Prometheus: the Connection ``prometheus_default`` (HTTP: host, port, schema; login/password
  for basic auth; extra ``{"bearer_token": ...}``), else ``PADDLE_CANARY_PROMETHEUS_URL``.
- The model registry: the Variable ``paddle_canary_registry`` (an absolute directory), else
  ``PADDLE_CANARY_REGISTRY``.
- Kubernetes (runtime, Istio router; the validation pod already used it): the Kubernetes
  provider's Connection ``PADDLE_CANARY_K8S_CONN_ID`` (default ``kubernetes_default``: in
  cluster, a kubeconfig path or a kubeconfig in its extra, a context), else the pod's service
  account, else ``~/.kube/config``.
- The image registry serving images are pushed to and pulled from: the Docker provider's
  Connection ``docker_default`` (host = the registry, login/password), else
  ``PADDLE_CANARY_IMAGE_REGISTRY`` without credentials.

Each is looked up where it is used (a Variable or Connection changed in the UI applies to the
next task), through Airflow's secrets backends: the metadata database, ``AIRFLOW_VAR_*`` /
``AIRFLOW_CONN_*`` environment variables, or a configured backend.
"""

from __future__ import annotations

import logging
from pathlib import Path

from paddle_canary.errors import UserError

log = logging.getLogger(__name__)

PROMETHEUS_CONN_ID = "prometheus_default"
REGISTRY_VARIABLE = "paddle_canary_registry"
DOCKER_CONN_ID = "docker_default"


def _connection(conn_id: str):
    """The Airflow Connection ``conn_id``, or None when there is none."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def prometheus_from_connection(settings, conn_id: str = PROMETHEUS_CONN_ID):
    """A PrometheusProvider from the Connection ``conn_id``, or None when there is none."""
    from paddle_canary.analysis.provider import PrometheusProvider
    conn = _connection(conn_id)
    if conn is None:
        return None
    provider = PrometheusProvider.from_connection(conn)
    log.info("Prometheus from Airflow Connection %s: %s", conn_id, provider.url)
    return provider


def registry_from_variable(key: str = REGISTRY_VARIABLE) -> Path | None:
    """The registry root the Variable ``key`` names, or None when it is not set. A value that
    is not an absolute directory is refused (a typo must not release from somewhere else)."""
    from airflow.sdk import Variable
    value = (Variable.get(key, default=None) or "").strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute() or not path.is_dir():
        raise UserError(f"the Airflow Variable {key} is {value!r}: it must be the absolute path "
                        "of the model registry's directory")
    return path


def kube_client_from_connection(conn_id: str):
    """A ``kubernetes.client.ApiClient`` from the Kubernetes provider's Connection ``conn_id``,
    or None when there is no such Connection."""
    if not conn_id or _connection(conn_id) is None:
        return None
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    try:
        client = KubernetesHook(conn_id=conn_id).get_conn()
    except Exception as exc:  # noqa: BLE001 - the hook raises many kinds; the caller names it
        raise UserError(f"the Airflow Connection {conn_id} gives no usable Kubernetes "
                        f"credentials: {exc}") from exc
    log.info("Kubernetes from Airflow Connection %s: %s", conn_id, client.configuration.host)
    return client


def image_registry_from_connection(conn_id: str = DOCKER_CONN_ID):
    """``(registry, auth_config)`` from the Docker provider's Connection ``conn_id`` (host =
    the registry, e.g. ``registry.example.com:5000``; login/password), or None."""
    conn = _connection(conn_id)
    if conn is None or not conn.host:
        return None
    registry = conn.host.split("://", 1)[-1].rstrip("/")
    if conn.port:
        registry = f"{registry}:{conn.port}"
    auth = ({"username": conn.login, "password": conn.password or "",
             "serveraddress": registry} if conn.login else None)
    return registry, auth
