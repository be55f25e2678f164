"""An in-memory Kubernetes API server, for tests: no cluster can run on these machines.

:class:`FakeKube` keeps objects and answers the calls paddle-canary makes through the official
``kubernetes`` client, with the client's own method names and return types (model objects such
as ``V1Deployment`` for built-in kinds, dicts for custom resources), and behaves as the real
API server does where the code depends on it:

- create / get / list (equality label selectors) / replace / patch / delete; 404 for a missing
  object, 409 for a create of an existing one or a write carrying a stale
  ``metadata.resourceVersion``; every write bumps ``resourceVersion``, a changed ``spec`` bumps
  ``metadata.generation``; ``status`` in a write body is ignored (status subresource);
- patch content types as the client picks them: custom objects get an RFC 7386 merge patch;
  built-in kinds take the content type given with ``_content_type`` (merge patch is
  implemented), and a dict body sent without one goes out as a JSON patch, which the real
  server refuses with 400 (a known client pitfall);
- schemas: Istio objects against Istio's own CRDs (``tests/fakes/istio_schema.py``), unknown
  fields pruned, or refused with 400 under ``fieldValidation=Strict``; value errors and
  istiod's webhook rules are 422. Deployments and Services against the Kubernetes schema of
  kubernetes-validate (unknown fields refused under Strict);
- a Deployment controller and a kubelet, both instant: a Deployment gets a ReplicaSet per
  template (with ``deployment.kubernetes.io/revision``) and its pods, whose state is ``ready``
  unless a test says otherwise (:meth:`FakeKube.set_pods`: ``unready`` for a failing
  ``/deep_health``, ``crashloop``, ``image-pull``, ``invalid-image``, ``unschedulable``);
  the Deployment's status follows (replicas, updated, ready, available); deleting it deletes its
  ReplicaSets and pods at once (the real garbage collector does it shortly after).

Not modelled: watches, server-side apply, strategic merge patch, admission other than the
webhook rules named, RBAC (use :meth:`fail_next` with a 403), namespaces as objects.
Failures: :meth:`fail_next` queues an exception for a method; :attr:`down` makes every call
fail as an unreachable server does (urllib3 ``MaxRetryError``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from typing import Any

import kubernetes_validate
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from fakes import istio_schema
from paddle_canary.kube.api import KubeApis

K8S_VERSION = "1.37.0"  # the kubernetes-validate schemas the fake checks built-in kinds with
REVISION = "deployment.kubernetes.io/revision"
_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            415: "Unsupported Media Type", 422: "Unprocessable Entity", 500: "Internal Error"}
POD_STATES = ("ready", "unready", "crashloop", "image-pull", "invalid-image", "unschedulable")


def api_exception(status: int, message: str, reason: str | None = None) -> ApiException:
    """The exception the client raises for an error answer, with a Status body."""
    exc = ApiException(status=status, reason=_REASONS.get(status, "Error"))
    exc.body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message,
                           "reason": reason or _REASONS.get(status, "").replace(" ", ""),
                           "code": status})
    return exc


def unreachable() -> MaxRetryError:
    return MaxRetryError(None, "/api", reason=NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _matches(labels: dict, selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.strip() not in labels:
            return False
    return True


class _Response:
    def __init__(self, data: dict):
        self.data = json.dumps(data)


# Resource kinds the fake serves: plural -> (apiVersion, kind, client model, list model).
KINDS = {
    "deployments": ("apps/v1", "Deployment", "V1Deployment", "V1DeploymentList"),
    "replicasets": ("apps/v1", "ReplicaSet", "V1ReplicaSet", "V1ReplicaSetList"),
    "services": ("v1", "Service", "V1Service", "V1ServiceList"),
    "pods": ("v1", "Pod", "V1Pod", "V1PodList"),
    "virtualservices": ("networking.istio.io/v1", "VirtualService", None, None),
    "destinationrules": ("networking.istio.io/v1", "DestinationRule", None, None),
    "envoyfilters": ("networking.istio.io/v1alpha3", "EnvoyFilter", None, None),
}


class FakeKube:
    """The fake API server; its client-shaped APIs are :attr:`core`, :attr:`apps`,
    :attr:`custom` (see the module docstring)."""

    def __init__(self, *, validate_builtin: bool = True):
        self.objects: dict[tuple[str, str, str], dict] = {}  # (plural, namespace, name) -> obj
        self.calls: list[tuple[str, dict]] = []
        self.down = False
        self.validate_builtin = validate_builtin
        self.pod_states: dict[tuple[str, str], str] = {}
        self._failures: dict[str, list[BaseException]] = {}
        # Called as hook(self, method) after every successful write and before every call
        # (method "before:<name>"): invariants checked at each step, concurrent edits.
        self.hooks: list = []
        self._rv = itertools.count(1000)
        self._uid = itertools.count(1)
        self._client = ApiClient()
        self.core = FakeCoreV1Api(self)
        self.apps = FakeAppsV1Api(self)
        self.custom = FakeCustomObjectsApi(self)

    # ---------------------------------------------------------------- test controls

    def apis(self) -> KubeApis:
        return KubeApis(core=self.core, apps=self.apps, custom=self.custom)

    def fail_next(self, method: str, error: BaseException) -> None:
        """The next call of ``method`` (a client method name) raises ``error``."""
        self._failures.setdefault(method, []).append(error)

    def set_pods(self, model: str, version: str, state: str) -> None:
        """Make the pods of ``model``/``version`` (now and later ones) be in ``state``."""
        assert state in POD_STATES, state
        self.pod_states[(model, version)] = state
        for (plural, ns, name) in list(self.objects):
            if plural == "deployments":
                self._reconcile(ns, name)

    def get(self, plural: str, namespace: str, name: str) -> dict | None:
        """The stored object (a copy), for assertions."""
        obj = self.objects.get((plural, namespace, name))
        return copy.deepcopy(obj)

    def names(self, plural: str, namespace: str | None = None) -> list[str]:
        return sorted(n for (p, ns, n) in self.objects
                      if p == plural and (namespace is None or ns == namespace))

    def put(self, obj: dict) -> dict:
        """Store ``obj`` as someone else (kubectl) would create it: no validation, no log."""
        plural = {v[1]: k for k, v in KINDS.items()}[obj["kind"]]
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{next(self._uid)}")
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("generation", 1)
        self.objects[(plural, meta["namespace"], meta["name"])] = obj
        if plural == "deployments":
            self._reconcile(meta["namespace"], meta["name"])
        return copy.deepcopy(obj)

    # ---------------------------------------------------------------- plumbing

    def enter(self, method: str, **args) -> None:
        self.calls.append((method, copy.deepcopy(args)))
        for hook in list(self.hooks):
            hook(self, f"before:{method}")
        if self.down:
            raise unreachable()
        queue = self._failures.get(method)
        if queue:
            raise queue.pop(0)

    def out(self, plural: str, obj: dict | None) -> Any:
        """What the client returns: a model object for built-in kinds, a dict for CRDs."""
        model = KINDS[plural][2]
        return copy.deepcopy(obj) if model is None else \
            self._client.deserialize(_Response(obj), model)

    def out_list(self, plural: str, items: list[dict]) -> Any:
        api_version, kind, _, list_model = KINDS[plural]
        body = {"apiVersion": api_version, "kind": f"{kind}List",
                "metadata": {"resourceVersion": str(next(self._rv))}, "items": items}
        return body if list_model is None else self._client.deserialize(_Response(body),
                                                                         list_model)

    def _body(self, body: Any) -> dict:
        """A request body as JSON (the client serialises models the same way)."""
        return json.loads(json.dumps(self._client.sanitize_for_serialization(body)))

    def _not_found(self, plural: str, name: str) -> ApiException:
        group = KINDS[plural][0].split("/")[0] if "/" in KINDS[plural][0] else ""
        resource = f"{plural}.{group}" if group and group != "apps" else plural
        if group == "apps":
            resource = f"{plural}.apps"
        return api_exception(404, f'{resource} "{name}" not found', "NotFound")

    def _validate(self, plural: str, obj: dict, field_validation: str | None) -> dict:
        """Check ``obj`` as the API server would; returns it as it would be stored."""
        strict = field_validation == "Strict"
        kind = obj.get("kind")
        name = obj.get("metadata", {}).get("name")
        if KINDS[plural][2] is None:
            unknown = istio_schema.unknown_fields(obj)
            if unknown and strict:
                raise api_exception(400, "strict decoding error: " + ", ".join(
                    f'unknown field "{p}"' for p in unknown), "BadRequest")
            obj = istio_schema.prune(obj)
            errors = istio_schema.schema_errors(obj) or istio_schema.webhook_errors(obj)
            if errors:
                raise api_exception(422, f'{kind}.networking.istio.io "{name}" is invalid: '
                                    + "; ".join(errors), "Invalid")
            return obj
        if self.validate_builtin and plural in ("deployments", "services"):
            body = {k: v for k, v in obj.items() if k != "status"}
            try:
                kubernetes_validate.validate(body, K8S_VERSION, strict=strict)
            except kubernetes_validate.ValidationError as exc:
                message = f'{kind} "{name}" is invalid: {exc}'
                status = 400 if "Additional properties" in str(exc) else 422
                raise api_exception(status, message, "Invalid") from None
        return obj

    # ---------------------------------------------------------------- generic operations

    def create(self, plural: str, namespace: str, body: Any, field_validation=None) -> dict:
        obj = self._body(body)
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", namespace) != namespace:
            raise api_exception(400, "the namespace of the provided object does not match "
                                     "the namespace sent on the request", "BadRequest")
        meta["namespace"] = namespace
        obj.setdefault("apiVersion", KINDS[plural][0])
        obj.setdefault("kind", KINDS[plural][1])
        key = (plural, namespace, meta.get("name"))
        if key in self.objects:
            raise api_exception(409, f'{plural} "{key[2]}" already exists', "AlreadyExists")
        if meta.get("resourceVersion"):
            raise api_exception(400, "resourceVersion should not be set on objects to be "
                                     "created", "BadRequest")
        obj.pop("status", None)
        obj = self._validate(plural, obj, field_validation)
        meta = obj["metadata"]
        meta.update(uid=f"uid-{next(self._uid)}", resourceVersion=str(next(self._rv)),
                    generation=1, creationTimestamp="2026-01-01T00:00:00Z")
        self.objects[key] = obj
        answer = copy.deepcopy(obj)  # the answer is what was written; controllers act after
        if plural == "deployments":
            self._reconcile(namespace, key[2])
        self._written("create")
        return answer

    def _written(self, what: str) -> None:
        for hook in list(self.hooks):
            hook(self, what)

    def read(self, plural: str, namespace: str, name: str) -> dict:
        try:
            return copy.deepcopy(self.objects[(plural, namespace, name)])
        except KeyError:
            raise self._not_found(plural, name) from None

    def list(self, plural: str, namespace: str, label_selector: str | None = None) -> list:
        return [copy.deepcopy(o) for (p, ns, _), o in sorted(self.objects.items())
                if p == plural and ns == namespace
                and _matches(o["metadata"].get("labels") or {}, label_selector)]

    def _store_update(self, plural: str, namespace: str, name: str, current: dict,
                      new: dict, field_validation) -> dict:
        new["metadata"]["namespace"] = namespace
        new["status"] = current.get("status")
        if new.get("status") is None:
            new.pop("status")
        for key in ("uid", "creationTimestamp", "generation"):
            if key in current["metadata"]:
                new["metadata"][key] = current["metadata"][key]
        new = self._validate(plural, new, field_validation)
        if new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[(plural, namespace, name)] = new
        answer = copy.deepcopy(new)
        if plural == "deployments":
            self._reconcile(namespace, name)
        self._written("update")
        return answer

    def _check_rv(self, plural: str, name: str, current: dict, wanted: str | None) -> None:
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise api_exception(409, f'Operation cannot be fulfilled on {plural} "{name}": the '
                                "object has been modified; please apply your changes to the "
                                "latest version and try again", "Conflict")

    def replace(self, plural: str, namespace: str, name: str, body: Any,
                field_validation=None) -> dict:
        current = self.read(plural, namespace, name)
        new = self._body(body)
        if new.get("metadata", {}).get("name") != name:
            raise api_exception(400, "the name of the object does not match the name on the "
                                     "URL", "BadRequest")
        self._check_rv(plural, name, current, new["metadata"].get("resourceVersion"))
        return self._store_update(plural, namespace, name, current, new, field_validation)

    def patch(self, plural: str, namespace: str, name: str, body: Any, content_type: str,
              field_validation=None) -> dict:
        if content_type == "application/json-patch+json" and not isinstance(body, list):
            raise api_exception(400, "json: cannot unmarshal object into Go value of type "
                                     "jsonpatch.Patch", "BadRequest")
        if content_type != "application/merge-patch+json":
            raise api_exception(415, f"the fake API server implements merge patches only, "
                                     f"not {content_type}", "UnsupportedMediaType")
        current = self.read(plural, namespace, name)
        patch = self._body(body)
        self._check_rv(plural, name, current,
                       (patch.get("metadata") or {}).get("resourceVersion"))
        new = merge_patch(current, {k: v for k, v in patch.items() if k != "status"})
        return self._store_update(plural, namespace, name, current, new, field_validation)

    def delete(self, plural: str, namespace: str, name: str) -> dict:
        obj = self.read(plural, namespace, name)
        del self.objects[(plural, namespace, name)]
        if plural == "deployments":
            for rs in self._owned("replicasets", namespace, obj["metadata"]["uid"]):
                self._delete_rs(namespace, rs)
        self._written("delete")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "kind": plural, "uid": obj["metadata"]["uid"]}}

    # ---------------------------------------------------------------- controller and kubelet

    def _owned(self, plural: str, namespace: str, uid: str) -> list[dict]:
        return [o for (p, ns, _), o in self.objects.items() if p == plural and ns == namespace
                and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]

    def _delete_rs(self, namespace: str, rs: dict) -> None:
        for pod in self._owned("pods", namespace, rs["metadata"]["uid"]):
            del self.objects[("pods", namespace, pod["metadata"]["name"])]
        self.objects.pop(("replicasets", namespace, rs["metadata"]["name"]), None)

    def _pod_status(self, labels: dict) -> dict:
        state = self.pod_states.get((labels.get("paddle-canary/model"),
                                     labels.get("paddle-canary/version")), "ready")
        cond = lambda t, s, reason=None, message=None: {  # noqa: E731
            k: v for k, v in {"type": t, "status": s, "reason": reason,
                              "message": message}.items() if v is not None}
        if state == "unschedulable":
            return {"phase": "Pending", "conditions": [cond(
                "PodScheduled", "False", "Unschedulable",
                "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.")]}
        waiting = {"crashloop": ("CrashLoopBackOff", "back-off 5m0s restarting failed container"),
                   "image-pull": ("ImagePullBackOff", 'Back-off pulling image'),
                   "invalid-image": ("InvalidImageName", "couldn't parse image name")}
        ready = state == "ready"
        container = {"name": "serving", "image": "", "imageID": "", "ready": ready,
                     "restartCount": 4 if state == "crashloop" else 0, "started": ready}
        if state in waiting:
            reason, message = waiting[state]
            container["state"] = {"waiting": {"reason": reason, "message": message}}
        else:
            container["state"] = {"running": {"startedAt": "2026-01-01T00:00:01Z"}}
        return {"phase": "Running" if state in ("ready", "unready", "crashloop") else "Pending",
                "conditions": [cond("PodScheduled", "True"),
                               cond("Ready", "True" if ready else "False")],
                "containerStatuses": [container]}

    def _reconcile(self, namespace: str, name: str) -> None:
        """The Deployment controller and the kubelet, in one instant step."""
        dep = self.objects[("deployments", namespace, name)]
        meta, spec = dep["metadata"], dep["spec"]
        template = spec["template"]
        digest = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        owned = self._owned("replicasets", namespace, meta["uid"])
        current = next((rs for rs in owned
                        if rs["metadata"]["labels"].get("pod-template-hash") == digest), None)
        if current is None:
            revision = 1 + max([int(rs["metadata"]["annotations"][REVISION]) for rs in owned],
                               default=0)
            labels = {**template["metadata"].get("labels", {}), "pod-template-hash": digest}
            current = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": f"{name}-{digest}", "namespace": namespace, "labels": labels,
                "annotations": {REVISION: str(revision)}, "uid": f"uid-{next(self._uid)}",
                "resourceVersion": str(next(self._rv)), "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                    "uid": meta["uid"], "controller": True}]},
                "spec": {"replicas": 0, "selector": spec["selector"], "template": template}}
            self.objects[("replicasets", namespace, current["metadata"]["name"])] = current
        meta.setdefault("annotations", {})[REVISION] = current["metadata"]["annotations"][REVISION]
        want = int(spec.get("replicas", 1))
        current["spec"]["replicas"] = want
        pods = sorted(self._owned("pods", namespace, current["metadata"]["uid"]),
                      key=lambda p: p["metadata"]["name"])
        for pod in pods[want:]:
            del self.objects[("pods", namespace, pod["metadata"]["name"])]
        for i in range(len(pods), want):
            pod_name = f"{current['metadata']['name']}-{i:05x}"
            self.objects[("pods", namespace, pod_name)] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": namespace,
                             "labels": dict(current["metadata"]["labels"]),
                             "annotations": dict(template["metadata"].get("annotations", {})),
                             "uid": f"uid-{next(self._uid)}",
                             "resourceVersion": str(next(self._rv)),
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                  "name": current["metadata"]["name"],
                                                  "uid": current["metadata"]["uid"],
                                                  "controller": True}]},
                "spec": copy.deepcopy(template["spec"])}
        pods = self._owned("pods", namespace, current["metadata"]["uid"])
        for pod in pods:
            pod["status"] = self._pod_status(pod["metadata"]["labels"])
        new_ready = sum(_ready(p) for p in pods)
        # maxUnavailable 0: old ReplicaSets go once the new pods are all ready.
        old = [rs for rs in owned if rs is not current]
        if new_ready >= want:
            for rs in old:
                self._delete_rs(namespace, rs)
            old = []
        old_pods = [p for rs in old for p in self._owned("pods", namespace, rs["metadata"]["uid"])]
        old_ready = sum(_ready(p) for p in old_pods)
        dep["status"] = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(pods) + len(old_pods),
            "updatedReplicas": len(pods),
            "readyReplicas": new_ready + old_ready,
            "availableReplicas": new_ready + old_ready,
            "conditions": [{"type": "Available",
                            "status": "True" if new_ready + old_ready >= want else "False"},
                           {"type": "Progressing", "status": "True",
                            "reason": "NewReplicaSetAvailable" if new_ready >= want
                            else "ReplicaSetUpdated"}],
        }
        for key in [k for k, v in dep["status"].items() if v == 0]:
            if key != "observedGeneration":
                del dep["status"][key]  # the real server omits zero counts
        meta["resourceVersion"] = str(next(self._rv))


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class _Api:
    def __init__(self, server: FakeKube):
        self.server = server


class FakeCustomObjectsApi(_Api):
    """``kubernetes.client.CustomObjectsApi``: the namespaced calls, dict in, dict out."""

    def _plural(self, group: str, version: str, plural: str) -> str:
        if plural not in KINDS or KINDS[plural][0] != f"{group}/{version}":
            raise api_exception(404, "the server could not find the requested resource",
                                "NotFound")
        return plural

    def get_namespaced_custom_object(self, group, version, namespace, plural, name, **kw):
        self.server.enter("get_namespaced_custom_object", group=group, version=version,
                          namespace=namespace, plural=plural, name=name, **kw)
        return self.server.read(self._plural(group, version, plural), namespace, name)

    def list_namespaced_custom_object(self, group, version, namespace, plural, **kw):
        self.server.enter("list_namespaced_custom_object", group=group, version=version,
                          namespace=namespace, plural=plural, **kw)
        plural = self._plural(group, version, plural)
        return self.server.out_list(plural, self.server.list(plural, namespace,
                                                             kw.get("label_selector")))

    def create_namespaced_custom_object(self, group, version, namespace, plural, body, **kw):
        self.server.enter("create_namespaced_custom_object", group=group, version=version,
                          namespace=namespace, plural=plural, body=body, **kw)
        plural = self._plural(group, version, plural)
        return self.server.create(plural, namespace, body, kw.get("field_validation"))

    def replace_namespaced_custom_object(self, group, version, namespace, plural, name, body,
                                         **kw):
        self.server.enter("replace_namespaced_custom_object", group=group, version=version,
                          namespace=namespace, plural=plural, name=name, body=body, **kw)
        plural = self._plural(group, version, plural)
        return self.server.replace(plural, namespace, name, body, kw.get("field_validation"))

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body,
                                       **kw):
        self.server.enter("patch_namespaced_custom_object", group=group, version=version,
                          namespace=namespace, plural=plural, name=name, body=body, **kw)
        plural = self._plural(group, version, plural)
        content_type = kw.get("_content_type") or self.server._client.select_header_content_type(
            ["application/merge-patch+json"], "PATCH", body)
        return self.server.patch(plural, namespace, name, body, content_type,
                                 kw.get("field_validation"))

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name, **kw):
        self.server.enter("delete_namespaced_custom_object", group=group, version=version,
                          namespace=namespace, plural=plural, name=name, **kw)
        return self.server.delete(self._plural(group, version, plural), namespace, name)


_BUILTIN_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
                        "application/strategic-merge-patch+json", "application/apply-patch+yaml",
                        "application/apply-patch+cbor"]


class _BuiltinApi(_Api):
    """The namespaced create/read/list/replace/patch/delete calls of one built-in kind."""

    def _op(self, op: str, plural: str, *args, **kw):
        singular = {"deployments": "deployment", "replicasets": "replica_set",
                    "services": "service", "pods": "pod"}[plural]
        method = {"create": f"create_namespaced_{singular}", "read": f"read_namespaced_{singular}",
                  "list": f"list_namespaced_{singular}",
                  "replace": f"replace_namespaced_{singular}",
                  "patch": f"patch_namespaced_{singular}",
                  "delete": f"delete_namespaced_{singular}"}[op]
        s = self.server
        if op == "create":
            namespace, body = args
            s.enter(method, namespace=namespace, body=s._body(body), **kw)
            return s.out(plural, s.create(plural, namespace, body, kw.get("field_validation")))
        if op == "read":
            name, namespace = args
            s.enter(method, name=name, namespace=namespace, **kw)
            return s.out(plural, s.read(plural, namespace, name))
        if op == "list":
            (namespace,) = args
            s.enter(method, namespace=namespace, **kw)
            return s.out_list(plural, s.list(plural, namespace, kw.get("label_selector")))
        if op == "replace":
            name, namespace, body = args
            s.enter(method, name=name, namespace=namespace, body=s._body(body), **kw)
            return s.out(plural, s.replace(plural, namespace, name, body,
                                           kw.get("field_validation")))
        if op == "patch":
            name, namespace, body = args
            s.enter(method, name=name, namespace=namespace, body=copy.deepcopy(body), **kw)
            content_type = kw.get("_content_type") or s._client.select_header_content_type(
                _BUILTIN_PATCH_TYPES, "PATCH", body)
            return s.out(plural, s.patch(plural, namespace, name, body, content_type,
                                         kw.get("field_validation")))
        name, namespace = args
        s.enter(method, name=name, namespace=namespace, **kw)
        status = s.delete(plural, namespace, name)
        return s._client.deserialize(_Response(status), "V1Status")


def _builtin(plural: str, singular: str):
    def make(op):
        def method(self, *args, **kw):
            return self._op(op, plural, *args, **kw)
        method.__name__ = f"{op}_namespaced_{singular}"
        return method
    return {f"{op}_namespaced_{singular}": make(op)
            for op in ("create", "read", "list", "replace", "patch", "delete")}


FakeAppsV1Api = type("FakeAppsV1Api", (_BuiltinApi,), {
    "__doc__": "``kubernetes.client.AppsV1Api``: Deployments and ReplicaSets.",
    **_builtin("deployments", "deployment"), **_builtin("replicasets", "replica_set")})
FakeCoreV1Api = type("FakeCoreV1Api", (_BuiltinApi,), {
    "__doc__": "``kubernetes.client.CoreV1Api``: Services and Pods.",
    **_builtin("services", "service"), **_builtin("pods", "pod")})
