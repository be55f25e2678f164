"""The Istio router: each model's route is a VirtualService and a DestinationRule, written
through the Kubernetes API server and read back from it.

Objects are rendered by :mod:`paddle_canary.traffic.istio_objects` (see there for the sticky
bucket routes, mirroring and the header route). Versions are addressed by subset, so backends
carry no URL (``Backend(version)``); the runtime that runs them (``runtime.kubernetes``) labels
their pods so that the subsets select them.

How a change is applied, so that no request is routed to a subset that does not exist:

1. the DestinationRule gets the union of the subsets the live VirtualService uses and the ones
   the new route needs;
2. the VirtualService is replaced by one JSON merge patch carrying the ``resourceVersion`` it
   was read at (a concurrent edit fails with 409 instead of being overwritten);
3. the DestinationRule is narrowed to the new route's subsets.

A failed call leaves the previous route serving (step 1 only adds subsets). Writes use
``fieldValidation=Strict``, so a field Istio's schema does not know is refused, not pruned.
"The data plane serves it" means here: the API server holds exactly the objects written. Envoy
picks them up asynchronously (istiod pushes within seconds); Istio reports per-proxy sync only
when its status feature is on, which this router does not rely on.

RBAC the caller needs in the namespace: ``get``, ``list``, ``create``, ``patch`` on
``virtualservices`` and ``destinationrules`` in the ``networking.istio.io`` group.
"""

from __future__ import annotations

from paddle_canary.kube import api as kube_api
from paddle_canary.kube import names
from paddle_canary.traffic import istio_objects as objects
from paddle_canary.traffic.base import (HEADER_ROUTE, MANY_MODELS, MIRROR, ModelRoute,
                                        RouterError, RouterHealth, TrafficRouter)
from paddle_canary.traffic.buckets import bucket

RBAC = ("get, list, create and patch on virtualservices and destinationrules "
        "(networking.istio.io)")


def bucket_header(user_id: str | bytes | None,
                  header: str = objects.BUCKET_HEADER) -> dict[str, str]:
    """The header an application gateway sets itself when no EnvoyFilter computes it.

    ``{header: "0".."99"}`` for a user ID (the same bucket nginx and the Lua filter give),
    ``{}`` when there is no user ID: such requests go to stable.
    """
    if not user_id:
        return {}
    return {header: str(bucket(user_id))}


def default_custom_objects_api(conn_id: str | None = None):
    """``kubernetes.client.CustomObjectsApi`` from the Airflow Connection ``conn_id`` (inside
    Airflow), else in-cluster credentials, else the kubeconfig."""
    return kube_api.connect(RouterError, conn_id).custom


class IstioRouter(TrafficRouter):
    """Routes every model of one namespace with Istio (see the module docstring).

    ``api``: a ``CustomObjectsApi`` (default: built from the pod's service account or the
    kubeconfig at the first call). ``sticky``: per-user buckets (default) or a per-request
    weighted split. ``gateways``: Istio gateways the VirtualServices bind to (``ns/name``);
    ``hosts``: per model, the host names those gateways serve it under (default: the model's
    Service host).
    """

    kind = "istio"
    supports = frozenset({MIRROR, HEADER_ROUTE, MANY_MODELS})
    routes_by_url = False  # subsets select pods by their version label

    def __init__(self, namespace: str, *, api=None, sticky: bool = True,
                 gateways: list[str] | tuple[str, ...] | None = None,
                 hosts: dict[str, list[str]] | None = None,
                 bucket_header: str = objects.BUCKET_HEADER, conn_id: str | None = None):
        self.conn_id = conn_id
        self.namespace = objects._names(names.check_dns_label, namespace, "namespace")
        self.sticky = bool(sticky)
        self.gateways = list(gateways) if gateways else None
        self.hosts = {m: list(h) for m, h in (hosts or {}).items()}
        self.bucket_header = objects.check_header_name(bucket_header, "bucket header")
        self._api = api
        self._applied: dict[str, ModelRoute] = {}

    @classmethod
    def from_settings(cls, settings, api=None) -> "IstioRouter":
        """From :class:`paddle_canary.kube.config.KubeSettings` (namespace, mode, gateways)."""
        return cls(settings.namespace, api=api, sticky=settings.istio_sticky,
                   gateways=list(settings.istio_gateways) or None, conn_id=settings.conn_id)

    # ---------------------------------------------------------------- API plumbing

    @property
    def api(self):
        if self._api is None:
            self._api = default_custom_objects_api(self.conn_id)
        return self._api

    def _call(self, what: str, method: str, *args, **kwargs):
        return kube_api.call(what, getattr(self.api, method), *args, error=RouterError,
                             rbac=RBAC, **kwargs)

    def _get(self, plural: str, kind: str, model: str) -> dict | None:
        name = names.serving_app(model)
        obj = self._call(f"reading {kind} {self.namespace}/{name}",
                         "get_namespaced_custom_object", objects.GROUP, objects.VERSION,
                         self.namespace, plural, name, missing=None)
        if obj is not None and not names.is_managed(obj):
            raise RouterError(
                f"{kind} {self.namespace}/{name} exists but is not labelled "
                f"{names.MANAGED_BY_LABEL}={names.MANAGED_BY}; paddle-canary will not read or "
                "change an object it did not create (rename or delete it, or label it if it "
                "is ours)")
        return obj

    def _write(self, plural: str, live: dict | None, desired: dict, what: str) -> dict:
        """Create ``desired``, or make the live object's spec exactly ``desired``'s."""
        kind, name = desired["kind"], desired["metadata"]["name"]
        if live is None:
            return self._call(f"creating {kind} {self.namespace}/{name} ({what})",
                              "create_namespaced_custom_object", objects.GROUP, objects.VERSION,
                              self.namespace, plural, desired,
                              field_manager=kube_api.FIELD_MANAGER,
                              field_validation=kube_api.STRICT,
                              not_found="are Istio's networking.istio.io CRDs installed and "
                                        f"does namespace {self.namespace!r} exist?")
        spec = dict(desired["spec"])
        for key in (live.get("spec") or {}):
            spec.setdefault(key, None)  # merge patch: null removes what we no longer render
        annotations = {k: None for k in (live["metadata"].get("annotations") or {})
                       if k.startswith("paddle-canary/")}
        annotations.update(desired["metadata"].get("annotations") or {})
        metadata = {"resourceVersion": live["metadata"].get("resourceVersion")}
        if annotations:
            metadata["annotations"] = annotations
        return self._call(f"updating {kind} {self.namespace}/{name} ({what})",
                          "patch_namespaced_custom_object", objects.GROUP, objects.VERSION,
                          self.namespace, plural, name, {"metadata": metadata, "spec": spec},
                          field_manager=kube_api.FIELD_MANAGER,
                          field_validation=kube_api.STRICT)

    # ---------------------------------------------------------------- rendering

    def render(self, route: ModelRoute) -> tuple[dict, dict]:
        """``(DestinationRule, VirtualService)`` for ``route`` in this router's settings."""
        return objects.render(route, self.namespace, sticky=self.sticky, gateways=self.gateways,
                              hosts=self.hosts.get(route.model),
                              bucket_header=self.bucket_header)

    def _host(self, model: str) -> str:
        return objects._names(names.model_host, model, self.namespace)

    # ---------------------------------------------------------------- the router

    def apply(self, route: ModelRoute) -> None:
        self.check_supported(route)
        desired_dr, desired_vs = self.render(route)  # bad input fails before any call
        what = (f"{route.model}: {route.stable.version}"
                + (f" -> {route.candidate.version} at {route.weight} %" if route.candidate
                   else " only"))
        live_vs = self._get(objects.VS_PLURAL, "VirtualService", route.model)
        live_dr = self._get(objects.DR_PLURAL, "DestinationRule", route.model)

        # 1. Subsets for both the live routes and the new ones.
        wanted = desired_dr["spec"]["subsets"]
        known = {s["name"]: s for s in ((live_dr or {}).get("spec") or {}).get("subsets") or []}
        keep = [known[n] for n in sorted(objects.referenced_subsets(live_vs))
                if n in known and n not in {s["name"] for s in wanted}]
        union = dict(desired_dr, spec={**desired_dr["spec"], "subsets": wanted + keep})
        if live_dr is None or live_dr.get("spec") != union["spec"]:
            live_dr = self._write(objects.DR_PLURAL, live_dr, union, "subsets for the change")
        # 2. The routes.
        if live_vs is None or live_vs.get("spec") != desired_vs["spec"] or \
                _ours(live_vs) != _ours(desired_vs):
            self._write(objects.VS_PLURAL, live_vs, desired_vs, what)
        # 3. Only the subsets the new routes use.
        if live_dr.get("spec") != desired_dr["spec"]:
            self._write(objects.DR_PLURAL, live_dr, desired_dr, "drop unused subsets")
        self._applied[route.model] = route
        # Wait until the API server serves what was written (read back, not assumed).
        live = self.live(route.model)
        if live != route:
            raise RouterError(f"the API server does not hold the route written for "
                              f"{route.model}: asked {route.to_dict()}, "
                              f"holds {live.to_dict() if live else None}")

    def live(self, model: str) -> ModelRoute | None:
        vs = self._get(objects.VS_PLURAL, "VirtualService", model)
        if vs is None:
            return None
        dr = self._get(objects.DR_PLURAL, "DestinationRule", model)
        return objects.read_route(vs, dr, model, self._host(model), sticky=self.sticky,
                                  bucket_header=self.bucket_header)

    def _list(self, plural: str, kind: str) -> list[dict]:
        answer = self._call(f"listing {kind}s in {self.namespace}",
                            "list_namespaced_custom_object", objects.GROUP, objects.VERSION,
                            self.namespace, plural,
                            label_selector=f"{names.MANAGED_BY_LABEL}={names.MANAGED_BY}")
        return list((answer or {}).get("items") or [])

    def models(self) -> list[str]:
        found = {(vs["metadata"].get("labels") or {}).get(names.MODEL_LABEL)
                 for vs in self._list(objects.VS_PLURAL, "VirtualService")}
        return sorted(m for m in found if m)

    def health(self) -> RouterHealth:
        """Up: the API server answers. In sync: every model's objects read back as a route
        paddle-canary writes, and each route this router applied is the one served."""
        try:
            models = self.models()
        except RouterError as exc:
            return RouterHealth(up=False, in_sync=False, detail=str(exc))
        problems = []
        for model in sorted(set(models) | set(self._applied)):
            try:
                live = self.live(model)
            except RouterError as exc:
                problems.append(f"{model}: {exc}")
                continue
            wanted = self._applied.get(model)
            if wanted is not None and live != wanted:
                problems.append(f"{model}: serves {live.to_dict() if live else None}, "
                                f"was given {wanted.to_dict()}")
        return RouterHealth(up=True, in_sync=not problems,
                            detail="; ".join(problems) or f"{len(models)} model(s) routed")


def _ours(obj: dict) -> dict:
    """The annotations paddle-canary writes on an object."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if k.startswith("paddle-canary/")}
