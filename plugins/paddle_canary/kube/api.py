"""Calls to the Kubernetes API server through the official ``kubernetes`` client.

:func:`connect` builds the three API objects the code uses (core v1, apps/v1, custom objects)
from the Airflow Connection (inside Airflow), else the pod's service account, else the user's
kubeconfig. :func:`call` makes one call and
turns what goes wrong into the caller's own error class with a message a person can act on
(404/409/403/422 explained, an unreachable API server named as such); a 404 can instead return a
value (``missing=None``). :func:`as_dict` gives every answer as the JSON dict the API server
sent (the client returns model objects for built-in kinds and dicts for custom resources).

Writes send ``fieldValidation=Strict``: a field the schema does not know is refused (400) rather
than silently pruned, which is what the API server does by default.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

FIELD_MANAGER = "paddle-canary"
STRICT = "Strict"
MERGE_PATCH = "application/merge-patch+json"

_RAISE = object()


@dataclasses.dataclass
class KubeApis:
    """The API objects of one cluster: ``core`` (CoreV1Api), ``apps`` (AppsV1Api),
    ``custom`` (CustomObjectsApi). Tests pass the fake API server's."""

    core: Any
    apps: Any
    custom: Any


def connect(error: type[Exception], conn_id: str | None = None) -> KubeApis:
    """Clients for the cluster of the Airflow Connection ``conn_id`` when one is registered as
    a settings source (inside Airflow), else in-cluster credentials, else the kubeconfig;
    ``error`` when none works."""
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise error("Kubernetes support needs the kubernetes client: "
                    "pip install 'paddle-canary[k8s]'") from exc
    from paddle_canary import settings_sources
    try:
        api_client = settings_sources.first("kubernetes", conn_id) if conn_id else None
    except Exception as exc:  # noqa: BLE001 - a bad Connection is the caller's error, named
        raise error(str(exc)) from exc
    if api_client is None:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            try:
                config.load_kube_config()
            except (config.ConfigException, OSError) as exc:
                raise error("no Kubernetes credentials: no Airflow Connection "
                            f"{conn_id or '(none named)'}, not running in a pod and no usable "
                            f"kubeconfig ({exc})") from exc
    return KubeApis(core=client.CoreV1Api(api_client), apps=client.AppsV1Api(api_client),
                    custom=client.CustomObjectsApi(api_client))


def status_message(exc: BaseException) -> str:
    """The ``message`` of the API server's Status body, else the HTTP reason."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        return str(message) if message else body[:500]
    return str(getattr(exc, "reason", "") or exc)


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:
        from urllib3.exceptions import HTTPError as Urllib3Error
    except ImportError:  # pragma: no cover - urllib3 comes with the kubernetes client
        return False
    return isinstance(exc, Urllib3Error)


def call(what: str, fn: Callable, *args, error: type[Exception], rbac: str = "",
         missing: Any = _RAISE, not_found: str = "", **kwargs) -> Any:
    """``fn(*args, **kwargs)``; failures become ``error`` with ``what`` and the server's reason.

    ``missing``: returned on 404 instead of raising. ``rbac``: the permissions the caller needs,
    named in the message of a 401/403. ``not_found``: what a 404 may mean, added to its message.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - classified below, re-raised when unknown
        if isinstance(exc, error):
            raise
        status = getattr(exc, "status", None)
        if isinstance(status, int) and status:
            if status == 404 and missing is not _RAISE:
                return missing
            message = _explain(what, status, status_message(exc), rbac)
            if status == 404 and not_found:
                message = f"{message}; {not_found}"
            raise error(message) from exc
        if is_connection_error(exc):
            raise error(f"{what}: cannot reach the Kubernetes API server ({exc})") from exc
        raise


def _explain(what: str, status: int, message: str, rbac: str) -> str:
    if status == 404:
        return f"{what}: not found (404: {message})"
    if status in (401, 403):
        need = f"; the caller needs {rbac}" if rbac else ""
        return f"{what}: permission denied ({status}: {message}){need}"
    if status == 409:
        return (f"{what}: conflict (409: {message}); the object changed since it was read or "
                "already exists; nothing was changed, try again")
    if status in (400, 422):
        return f"{what}: rejected as invalid ({status}: {message}); nothing was changed"
    return f"{what}: Kubernetes API error {status}: {message}"


_SERIALIZER = None


def as_dict(obj: Any) -> Any:
    """The JSON form of an API answer (camelCase keys), whether a client model or a dict."""
    if obj is None or isinstance(obj, dict):
        return obj
    global _SERIALIZER
    if _SERIALIZER is None:
        from kubernetes.client import ApiClient
        _SERIALIZER = ApiClient()
    return _SERIALIZER.sanitize_for_serialization(obj)
