"""The Istio router: moves the canary by patching a VirtualService through the official
``kubernetes`` client, and reads the weight back from the VirtualService the API server holds.

Objects are rendered by :mod:`paddle_canary.traffic.istio_objects` (see there for the sticky
bucket routes). Every call goes through a ``CustomObjectsApi``-like object, so tests pass a fake;
the default one is built lazily from the pod's service account or the user's kubeconfig.

RBAC the caller needs in the model's namespace: ``get``, ``create``, ``patch`` on
``virtualservices`` and ``destinationrules`` in the ``networking.istio.io`` group.
"""

from __future__ import annotations

import json

from paddle_canary.traffic import istio_objects as objects
from paddle_canary.traffic.base import TrafficRouter, check_weight
from paddle_canary.traffic.buckets import bucket
from paddle_canary.traffic.base import RouterError

FIELD_MANAGER = "paddle-canary"


def bucket_header(user_id: str | bytes | None,
                  header: str = objects.BUCKET_HEADER) -> dict[str, str]:
    """The header an application gateway sets itself when no EnvoyFilter computes it.

    ``{header: "0".."99"}`` for a user ID (the same bucket nginx and the Lua filter give),
    ``{}`` when there is no user ID: such requests go to stable.
    """
    if not user_id:
        return {}
    return {header: str(bucket(user_id))}


def default_custom_objects_api():
    """``kubernetes.client.CustomObjectsApi`` with in-cluster credentials, else the kubeconfig."""
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise RouterError("the Istio router needs the kubernetes client: "
                          "pip install 'paddle-canary[k8s]'") from exc
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as exc:
            raise RouterError("no Kubernetes credentials: not running in a pod and no usable "
                              f"kubeconfig ({exc})") from exc
    return client.CustomObjectsApi()


def _status_message(exc: BaseException) -> str:
    """The ``message`` of the API server's Status body, else the HTTP reason."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
        return body[:500]
    return str(getattr(exc, "reason", "") or exc)


class IstioRouter(TrafficRouter):
    """Sticky (bucket header) or weighted canary split between two versions of one model.

    ``stable`` and ``candidate`` are registry versions; their pods carry the labels
    ``app: <model>-serving`` and ``version: <version>`` (see
    :func:`istio_objects.serving_deployment`). ``host`` defaults to the model's Service,
    ``<model>-serving.<namespace>.svc.cluster.local``.
    """

    def __init__(self, model: str, namespace: str, host: str | None = None, *,
                 stable: str, candidate: str, sticky: bool = True, api=None,
                 gateways: list[str] | None = None, hosts: list[str] | None = None,
                 bucket_header: str = objects.BUCKET_HEADER):
        self.model = objects.check_dns_label(model, "model name")
        self.namespace = objects.check_dns_label(namespace, "namespace")
        self.host = host or objects.default_host(model, namespace)
        self.stable_version = stable
        self.candidate_version = candidate
        self.stable = objects.subset_name(stable)
        self.candidate = objects.subset_name(candidate)
        if self.stable == self.candidate:
            raise objects.IstioObjectError(
                f"stable and candidate are the same version {stable!r}")
        self.sticky = bool(sticky)
        self.gateways = list(gateways) if gateways else None
        self.hosts = list(hosts) if hosts else None
        self.bucket_header = objects.check_header_name(bucket_header, "bucket header")
        self.name = objects.serving_app(model)
        self._api = api
        # Render once now: bad input fails here, before any call to the cluster.
        self._http(0)
        self.destination_rule()

    # ---------------------------------------------------------------- API plumbing

    @property
    def api(self):
        if self._api is None:
            self._api = default_custom_objects_api()
        return self._api

    def _call(self, what: str, method: str, *args, **kwargs):
        """Call ``api.<method>``; API and connection failures become :class:`RouterError`."""
        try:
            return getattr(self.api, method)(*args, **kwargs)
        except RouterError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised if unknown
            status = getattr(exc, "status", None)
            if isinstance(status, int) and status:
                raise _api_error(what, status, _status_message(exc), self.namespace) from exc
            if _is_connection_error(exc):
                raise RouterError(
                    f"{what}: cannot reach the Kubernetes API server ({exc})") from exc
            raise

    def _get(self, plural: str, kind: str) -> dict | None:
        """The live object, or None when it does not exist (404)."""
        try:
            return self._call(f"reading {kind} {self.namespace}/{self.name}",
                              "get_namespaced_custom_object", objects.GROUP, objects.VERSION,
                              self.namespace, plural, self.name)
        except _NotFound:
            return None

    def _refuse_foreign(self, obj: dict, kind: str) -> None:
        if not objects.is_managed(obj):
            raise RouterError(
                f"{kind} {self.namespace}/{self.name} exists but is not labelled "
                f"{objects.MANAGED_BY_LABEL}={objects.MANAGED_BY}; paddle-canary will not change "
                "an object it did not create (rename or delete it, or label it if it is ours)")

    # ---------------------------------------------------------------- rendering

    def _http(self, weight: int) -> list[dict]:
        return objects.http_routes(self.model, self.host, self.stable, self.candidate, weight,
                                   sticky=self.sticky, bucket_header=self.bucket_header)

    def destination_rule(self) -> dict:
        return objects.destination_rule(self.model, self.namespace, self.host, {
            self.stable: objects.version_label(self.stable_version),
            self.candidate: objects.version_label(self.candidate_version),
        })

    def virtual_service(self, weight: int) -> dict:
        return objects.virtual_service(self.model, self.namespace, self.host, self.stable,
                                       self.candidate, weight, sticky=self.sticky,
                                       gateways=self.gateways, bucket_header=self.bucket_header,
                                       hosts=self.hosts)

    # ---------------------------------------------------------------- the router

    def ensure_destination_rule(self) -> None:
        """Create the DestinationRule, or patch its subsets to exactly {stable, candidate}.

        Done before any route points at a subset, so a route never names a missing subset.
        """
        desired = self.destination_rule()
        live = self._get(objects.DR_PLURAL, "DestinationRule")
        if live is None:
            self._call(f"creating DestinationRule {self.namespace}/{self.name}",
                       "create_namespaced_custom_object", objects.GROUP, objects.VERSION,
                       self.namespace, objects.DR_PLURAL, desired, field_manager=FIELD_MANAGER)
            return
        self._refuse_foreign(live, "DestinationRule")
        if live.get("spec") == desired["spec"]:
            return
        patch = {"metadata": {"resourceVersion": live["metadata"].get("resourceVersion")},
                 "spec": desired["spec"]}
        self._call(f"updating DestinationRule {self.namespace}/{self.name}",
                   "patch_namespaced_custom_object", objects.GROUP, objects.VERSION,
                   self.namespace, objects.DR_PLURAL, self.name, patch,
                   field_manager=FIELD_MANAGER)

    def set_weight(self, weight: int) -> None:
        """Route ``weight`` % to the candidate: DestinationRule first, then the VirtualService.

        The VirtualService is changed with one JSON merge patch carrying the resourceVersion it
        was read at, so a concurrent edit fails with 409 instead of being overwritten. A refused
        call leaves the previous routes (and weight) in place.
        """
        w = check_weight(weight)
        desired = self.virtual_service(w)
        self.ensure_destination_rule()
        live = self._get(objects.VS_PLURAL, "VirtualService")
        if live is None:
            result = self._call(f"creating VirtualService {self.namespace}/{self.name}",
                                "create_namespaced_custom_object", objects.GROUP,
                                objects.VERSION, self.namespace, objects.VS_PLURAL, desired,
                                field_manager=FIELD_MANAGER)
        else:
            self._refuse_foreign(live, "VirtualService")
            spec = dict(desired["spec"])
            spec.setdefault("gateways", None)  # merge patch: null removes gateways we dropped
            patch = {"metadata": {"resourceVersion": live["metadata"].get("resourceVersion")},
                     "spec": spec}
            result = self._call(f"setting weight {w} on VirtualService "
                                f"{self.namespace}/{self.name}", "patch_namespaced_custom_object", objects.GROUP,
                                objects.VERSION, self.namespace, objects.VS_PLURAL, self.name,
                                patch, field_manager=FIELD_MANAGER)
        if isinstance(result, dict) and "spec" in result:
            got = self._weight_of(result)
            if got != w:
                raise RouterError(f"the API server stored weight {got}, not {w}")

    def _weight_of(self, vs: dict) -> int:
        return objects.live_weight(vs, self.model, self.host, self.stable, self.candidate,
                                   sticky=self.sticky, bucket_header=self.bucket_header)

    def weight(self) -> int:
        """The weight the VirtualService held by the API server routes now."""
        live = self._get(objects.VS_PLURAL, "VirtualService")
        if live is None:
            raise RouterError(f"no VirtualService {self.namespace}/{self.name}: "
                              "set a weight first")
        return self._weight_of(live)

    def verify_weight(self, weight: int) -> bool:
        w = check_weight(weight)  # a bad weight is refused before any call
        return self.weight() == w


class _NotFound(RouterError):
    """404 from the API server (the object, or the Istio CRDs, do not exist)."""


def _api_error(what: str, status: int, message: str, namespace: str) -> RouterError:
    if status == 404:
        return _NotFound(f"{what}: not found (404: {message}); are Istio's networking.istio.io "
                         f"CRDs installed and does namespace {namespace!r} exist?")
    if status in (401, 403):
        return RouterError(
            f"{what}: permission denied ({status}: {message}); the caller needs get/create/patch "
            f"on virtualservices and destinationrules.networking.istio.io in {namespace!r}")
    if status == 409:
        return RouterError(f"{what}: conflict (409: {message}); the object changed since it was "
                           "read or already exists; nothing was changed, run the step again")
    if status == 422:
        return RouterError(f"{what}: rejected as invalid (422: {message}); nothing was changed")
    return RouterError(f"{what}: Kubernetes API error {status}: {message}")


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:
        from urllib3.exceptions import HTTPError as Urllib3Error
    except ImportError:  # pragma: no cover - urllib3 comes with the kubernetes client
        return False
    return isinstance(exc, Urllib3Error)
