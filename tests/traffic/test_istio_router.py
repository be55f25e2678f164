"""IstioRouter against a fake ``CustomObjectsApi``.

No Kubernetes API server can run here, so the API server is a fake: it keeps objects in a dict,
records every call, enforces what a real one would for these calls (404 on a missing object,
409 on create-if-exists or a stale ``metadata.resourceVersion`` in a patch, RFC 7386 merge
patch, 422 for an object the CRD schema subset rejects) and can be told to fail a call with a
status. The calls made for a fresh rollout are compared with a recorded list in
istio_fixtures/ (regenerate with UPDATE_ISTIO_FIXTURES=1 after a deliberate change, and read
the diff).
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from paddle_canary.errors import UserError
from paddle_canary.traffic import istio_objects as objects
from paddle_canary.traffic.base import InvalidWeight
from paddle_canary.traffic.istio import IstioRouter, default_custom_objects_api
from paddle_canary.traffic.base import RouterError

FIXTURES = Path(__file__).resolve().parent / "istio_fixtures"
SCHEMA = json.loads((FIXTURES / "istio-networking-subset.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
MODEL, NS = "risk-score", "ml"


def merge_patch(target, patch):
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


def api_exception(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason={403: "Forbidden", 404: "Not Found",
                                              409: "Conflict", 422: "Unprocessable Entity"}
                       .get(status, "Error"))
    exc.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": message, "code": status})
    return exc


class FakeCustomObjectsApi:
    """Enough of ``kubernetes.client.CustomObjectsApi`` for the router, in memory."""

    def __init__(self):
        self.store: dict[tuple[str, str, str], dict] = {}
        self.calls: list[list] = []
        self._failures: dict[str, list[BaseException]] = {}
        self._rv = 100
        self.before_patch = None  # called as before_patch(self) just before a patch applies

    def fail_next(self, method: str, error: BaseException) -> None:
        self._failures.setdefault(method, []).append(error)

    def _enter(self, method: str, **args) -> None:
        self.calls.append([method, copy.deepcopy(args)])
        assert args.pop("group") == objects.GROUP and args.pop("version") == objects.VERSION
        queue = self._failures.get(method)
        if queue:
            raise queue.pop(0)

    def _bump(self, obj: dict) -> dict:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        return obj

    def _check(self, obj: dict) -> None:
        try:
            VALIDATOR.validate(obj)
        except jsonschema.ValidationError as exc:
            raise api_exception(422, f"{obj.get('kind')} is invalid: {exc.message}") from None

    def get_namespaced_custom_object(self, group, version, namespace, plural, name, **kw):
        self._enter("get", group=group, version=version, namespace=namespace, plural=plural,
                    name=name, **kw)
        try:
            return copy.deepcopy(self.store[(plural, namespace, name)])
        except KeyError:
            raise api_exception(404, f'{plural}.networking.istio.io "{name}" not found') from None

    def create_namespaced_custom_object(self, group, version, namespace, plural, body, **kw):
        self._enter("create", group=group, version=version, namespace=namespace,
                    plural=plural, body=body, **kw)
        key = (plural, namespace, body["metadata"]["name"])
        if key in self.store:
            raise api_exception(409, f'{plural} "{key[2]}" already exists')
        obj = copy.deepcopy(body)
        self._check(obj)
        obj["metadata"]["uid"] = f"uid-{len(self.store)}"
        self.store[key] = self._bump(obj)
        return copy.deepcopy(obj)

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body, **kw):
        self._enter("patch", group=group, version=version, namespace=namespace, plural=plural,
                    name=name, body=body, **kw)
        assert isinstance(body, dict), "the client sends a dict body as a merge patch"
        if self.before_patch:
            hook, self.before_patch = self.before_patch, None
            hook(self)
        key = (plural, namespace, name)
        if key not in self.store:
            raise api_exception(404, f'{plural} "{name}" not found')
        current = self.store[key]
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv is not None and wanted_rv != current["metadata"]["resourceVersion"]:
            raise api_exception(409, "Operation cannot be fulfilled on "
                                f'{plural}.networking.istio.io "{name}": the object has been '
                                "modified; please apply your changes to the latest version")
        patched = merge_patch(current, body)
        self._check(patched)
        self.store[key] = self._bump(patched)
        return copy.deepcopy(patched)

    def vs(self) -> dict:
        return self.store[("virtualservices", NS, f"{MODEL}-serving")]

    def dr(self) -> dict:
        return self.store[("destinationrules", NS, f"{MODEL}-serving")]


@pytest.fixture
def api():
    return FakeCustomObjectsApi()


def router(api, stable="v1", candidate="v2", **kw) -> IstioRouter:
    return IstioRouter(MODEL, NS, stable=stable, candidate=candidate, api=api, **kw)


def methods(api) -> list[str]:
    return [f"{m} {a['plural']}" for m, a in api.calls]


# ---------------------------------------------------------------- the recorded rollout

def test_fresh_rollout_makes_the_recorded_calls(api):
    r = router(api)
    r.set_weight(5)
    r.set_weight(15)
    assert r.verify_weight(15)
    recorded = FIXTURES / "calls-sticky-fresh-5-15.json"
    if os.environ.get("UPDATE_ISTIO_FIXTURES"):
        recorded.write_text(json.dumps(api.calls, indent=1) + "\n")
    assert api.calls == json.loads(recorded.read_text())
    assert methods(api) == [
        "get destinationrules", "create destinationrules",
        "get virtualservices", "create virtualservices",
        "get destinationrules",  # unchanged: no patch
        "get virtualservices", "patch virtualservices",
        "get virtualservices",
    ]
    # The weight change is one merge patch guarded by the resourceVersion it was read at.
    patch = api.calls[6][1]
    assert patch["body"]["metadata"] == {"resourceVersion": "102"}
    assert patch["field_manager"] == "paddle-canary"


def stored_candidate_buckets(api) -> set[int]:
    """Buckets the stored VirtualService sends to the candidate (Envoy full-match semantics)."""
    first = api.vs()["spec"]["http"][0]
    if first["name"] != f"{MODEL}-candidate":
        return set()
    regex = first["match"][0]["headers"]["x-canary-bucket"]["regex"]
    return {b for b in range(100) if re.fullmatch(regex, str(b))}


def test_sweep_reads_back_every_step(api):
    r = router(api)
    for w in [0, 5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 100, 0]:
        r.set_weight(w)
        assert r.weight() == w
        assert r.verify_weight(w)
        assert not r.verify_weight((w + 5) % 101)
        assert stored_candidate_buckets(api) == set(range(w))
    r.set_weight(40)
    r.reset()
    assert r.weight() == 0
    assert stored_candidate_buckets(api) == set()


def test_weighted_mode_round_trip(api):
    r = router(api, sticky=False)
    for w in (0, 5, 15, 100):
        r.set_weight(w)
        assert r.verify_weight(w)
        (route,) = api.vs()["spec"]["http"]
        assert [d["weight"] for d in route["route"]] == [100 - w, w]


# ---------------------------------------------------------------- failures keep the old weight

@pytest.mark.parametrize("status,message,expect", [
    (403, 'virtualservices.networking.istio.io "risk-score-serving" is forbidden: User '
          '"system:serviceaccount:ml:airflow" cannot patch resource', "permission denied"),
    (409, "the object has been modified", "conflict"),
    (422, "VirtualService is invalid: spec.http[0].route[0].weight: Invalid value",
     "rejected as invalid"),
    (500, "etcdserver: request timed out", "Kubernetes API error 500"),
])
def test_failed_patch_leaves_previous_weight(api, status, message, expect):
    r = router(api)
    r.set_weight(5)
    before = copy.deepcopy(api.vs())
    api.fail_next("patch", api_exception(status, message))
    with pytest.raises(RouterError, match=expect) as info:
        r.set_weight(15)
    assert message in str(info.value)
    assert isinstance(info.value, UserError)  # the CLI prints it, no traceback
    assert api.vs() == before
    assert r.weight() == 5 and r.verify_weight(5)


def test_concurrent_edit_is_not_overwritten(api):
    ours, theirs = router(api), router(api)
    ours.set_weight(5)
    api.before_patch = lambda fake: theirs.set_weight(50)  # lands between our read and patch
    with pytest.raises(RouterError, match="409"):
        ours.set_weight(15)
    assert ours.weight() == 50
    ours.set_weight(15)  # running the step again works
    assert ours.verify_weight(15)


def test_rejected_object_is_reported_and_nothing_changes(api):
    r = router(api)
    r.set_weight(5)
    before = copy.deepcopy(api.store)
    # A router whose rendering the API server's schema refuses (weight field misspelt).
    bad = router(api)
    good = bad.virtual_service

    def misspelt(w):
        vs = good(w)
        destination = vs["spec"]["http"][0]["route"][0]
        destination["wieght"] = destination.pop("weight")
        return vs

    bad.virtual_service = misspelt
    with pytest.raises(RouterError, match="422"):
        bad.set_weight(15)
    assert api.store == before


def test_missing_crds_say_so(api):
    api.fail_next("create", api_exception(404, "the server could not find the requested resource"))
    with pytest.raises(RouterError, match="CRDs installed"):
        router(api).set_weight(5)
    assert api.store == {}


@pytest.mark.parametrize("error", [
    MaxRetryError(None, "/apis", reason=NewConnectionError(None, "Connection refused")),
    ConnectionRefusedError(111, "Connection refused"),
])
def test_unreachable_api_server(api, error):
    api.fail_next("get", error)
    with pytest.raises(RouterError, match="cannot reach the Kubernetes API server"):
        router(api).set_weight(5)


# ---------------------------------------------------------------- refusing to guess or clobber

def test_invalid_weight_makes_no_call(api):
    r = router(api)
    for bad in (-1, 101, 5.5, "15", None, True):
        with pytest.raises(InvalidWeight):
            r.set_weight(bad)
        with pytest.raises(InvalidWeight):
            r.verify_weight(bad)
    assert api.calls == []


def test_bad_versions_fail_before_any_call(api):
    with pytest.raises(objects.IstioObjectError):
        router(api, stable="v1", candidate="v1")
    with pytest.raises(objects.IstioObjectError):
        router(api, candidate="v2.")
    with pytest.raises(objects.IstioObjectError):
        IstioRouter("Risk", NS, stable="v1", candidate="v2", api=api)
    assert api.calls == []


def test_foreign_virtual_service_is_left_alone(api):
    theirs = objects.virtual_service(MODEL, NS, objects.default_host(MODEL, NS), "v1", "v2", 30)
    del theirs["metadata"]["labels"]
    api.store[("virtualservices", NS, f"{MODEL}-serving")] = api._bump(copy.deepcopy(theirs))
    r = router(api)
    with pytest.raises(RouterError, match="not labelled"):
        r.set_weight(5)
    with pytest.raises(RouterError, match="not labelled"):
        r.weight()
    assert "patch" not in [m for m, _ in api.calls]


def test_hand_edited_routes_are_not_interpreted(api):
    r = router(api)
    r.set_weight(15)
    api.vs()["spec"]["http"][0]["match"][0]["headers"]["x-canary-bucket"]["regex"] = "^1[0-4]$"
    with pytest.raises(RouterError, match="refusing to guess"):
        r.weight()
    r.set_weight(15)  # writing again restores the known shape
    assert r.verify_weight(15)


def test_weight_before_any_virtual_service(api):
    with pytest.raises(RouterError, match="set a weight first"):
        router(api).weight()


# ---------------------------------------------------------------- releases and options

def test_next_release_updates_subsets_before_routes(api):
    router(api, "v1", "v2").set_weight(100)
    api.calls.clear()
    nxt = router(api, "v2", "v3")
    nxt.set_weight(0)
    assert methods(api) == ["get destinationrules", "patch destinationrules",
                            "get virtualservices", "patch virtualservices"]
    assert [s["name"] for s in api.dr()["spec"]["subsets"]] == ["v2", "v3"]
    assert nxt.verify_weight(0)
    with pytest.raises(RouterError, match="other versions"):
        router(api, "v1", "v2").weight()


def test_odd_version_names_get_valid_subsets(api):
    r = router(api, stable="2024.06.01", candidate="V2_rc1")
    r.set_weight(5)
    assert r.verify_weight(5)
    labels = {s["name"]: s["labels"]["version"] for s in api.dr()["spec"]["subsets"]}
    assert sorted(labels.values()) == ["2024.06.01", "V2_rc1"]


def test_gateways_are_added_and_removed(api):
    router(api, gateways=["istio-system/public"], hosts=["risk.example.com"]).set_weight(5)
    assert api.vs()["spec"]["gateways"] == ["istio-system/public"]
    plain = router(api)
    plain.set_weight(5)
    assert "gateways" not in api.vs()["spec"]
    assert api.vs()["spec"]["hosts"] == [objects.default_host(MODEL, NS)]


def test_default_client_without_credentials_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(RouterError, match="no Kubernetes credentials"):
        default_custom_objects_api()
