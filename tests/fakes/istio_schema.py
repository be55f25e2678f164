"""Istio's own CRD schemas (vendored in tests/traffic/istio_fixtures/istio-crds.json) applied
the way the Kubernetes API server applies a structural schema, plus the checks of Istio's
validating webhook that concern the objects paddle-canary writes.

- Unknown fields: an object node with ``properties`` (or with neither ``properties`` nor
  ``additionalProperties``) and without ``x-kubernetes-preserve-unknown-fields`` keeps only its
  listed fields; the API server silently *prunes* the others (default ``fieldValidation``) or
  refuses them with 400 (``Strict``). :func:`unknown_fields` finds them; :func:`prune` drops
  them; the JSON Schema from :func:`to_json_schema` refuses them (``additionalProperties:
  false``), so a typo (``mirrorPercentage: {valu: 5}``, ``config_patches``) fails a test
  instead of disappearing.
- Values: types, enums, ``required``, ``oneOf``/``anyOf``/``not``, ``nullable``,
  ``x-kubernetes-int-or-string`` are checked with jsonschema. Not evaluated: the CEL rules
  (``x-kubernetes-validations``; none concern fields paddle-canary writes: they check
  durations, label wildcards, EnvoyFilter targetRefs/waypoint) and ``format`` (the API server
  checks few formats; int32 ranges are not among the schema's own minimum/maximum).
- Webhook (istiod, pkg/config/validation in Istio 1.30.3): destination weight >= 0, a route
  with several destinations must not total 0, subset names are DNS-1123 labels, destination
  host is not ``*``, mirror percentage in 0..100.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema

CRDS_FILE = Path(__file__).resolve().parents[1] / "traffic" / "istio_fixtures" / "istio-crds.json"
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# What the API server itself checks of every object's envelope (ObjectMeta, roughly).
_ENVELOPE = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "maxLength": 253,
                 "pattern": _DNS1123_SUBDOMAIN.pattern},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    }},
}


@lru_cache(maxsize=1)
def vendored() -> dict:
    """``{"istio_version", "commit", "kinds": {kind: {"apiVersion", "openAPIV3Schema"}}}``."""
    return json.loads(CRDS_FILE.read_text())


def kind_schema(kind: str) -> dict:
    return vendored()["kinds"][kind]["openAPIV3Schema"]


def api_version(kind: str) -> str:
    return vendored()["kinds"][kind]["apiVersion"]


def _preserves(node: dict) -> bool:
    return bool(node.get("x-kubernetes-preserve-unknown-fields"))


def _is_object(node: dict) -> bool:
    t = node.get("type")
    return t == "object"


def to_json_schema(node):
    """A structural schema node as JSON Schema, unknown fields refused (see the docstring)."""
    if not isinstance(node, dict):
        return node
    out: dict = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = to_json_schema(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        elif key == "nullable" or key.startswith("x-kubernetes-"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("allOf", []).append({"anyOf": [{"type": "integer"}, {"type": "string"}]})
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if _is_object(node) and not _preserves(node) and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def _walk_unknown(obj, node: dict, path: str, found: list[str]) -> None:
    if not isinstance(node, dict):
        return
    if isinstance(obj, dict) and _is_object(node):
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        for key, value in obj.items():
            if key in props:
                _walk_unknown(value, props[key], f"{path}.{key}", found)
            elif isinstance(extra, dict):
                _walk_unknown(value, extra, f"{path}.{key}", found)
            elif not _preserves(node) and extra is not True:
                found.append(f"{path}.{key}")
    elif isinstance(obj, list) and isinstance(node.get("items"), dict):
        for i, value in enumerate(obj):
            _walk_unknown(value, node["items"], f"{path}[{i}]", found)


def _top(kind: str) -> dict:
    schema = copy.deepcopy(kind_schema(kind))
    schema.setdefault("properties", {}).update(
        {k: v for k, v in _ENVELOPE.items() if k != "metadata"})
    schema["properties"]["metadata"] = {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True}
    return schema


def unknown_fields(obj: dict) -> list[str]:
    """Paths of the fields of ``obj`` that Istio's schema for its kind does not know."""
    found: list[str] = []
    _walk_unknown(obj, _top(obj["kind"]), "", found)
    return [p.lstrip(".") for p in found]


def prune(obj: dict) -> dict:
    """``obj`` as the API server stores it by default: unknown fields dropped."""
    out = copy.deepcopy(obj)
    for path in unknown_fields(obj):
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        target = out
        for part in parts[:-1]:
            target = target[int(part[1:-1])] if part.startswith("[") else target[part]
        target.pop(parts[-1], None)
    return out


@lru_cache(maxsize=8)
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = to_json_schema(_top(kind))
    schema["properties"]["metadata"] = _ENVELOPE["metadata"]
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind",
                                                                     "metadata"})
    return jsonschema.Draft202012Validator(schema)


def schema_errors(obj: dict, *, unknown: bool = True) -> list[str]:
    """Everything the CRD schema refuses in ``obj`` (unknown fields too, unless ``unknown``
    is False: then only value errors, as after pruning)."""
    kind = obj.get("kind")
    if kind not in vendored()["kinds"]:
        return [f"kind {kind!r} is not one of the vendored Istio kinds"]
    if obj.get("apiVersion") != api_version(kind):
        return [f"apiVersion {obj.get('apiVersion')!r}: the vendored {kind} schema is "
                f"{api_version(kind)}"]
    errors = []
    for err in _validator(kind).iter_errors(obj if unknown else prune(obj)):
        where = ".".join(str(p) for p in err.absolute_path) or "(root)"
        errors.append(f"{where}: {err.message}")
    return sorted(errors)


def webhook_errors(obj: dict) -> list[str]:
    """What istiod's validating webhook refuses among the fields paddle-canary writes."""
    spec = obj.get("spec") or {}
    errors = []

    def destination(d: dict | None, where: str) -> None:
        d = d or {}
        if d.get("host") == "*":
            errors.append(f"{where}: invalid destination host *")
        if "subset" in d and not _DNS1123_LABEL.fullmatch(str(d["subset"])):
            errors.append(f"{where}: subset name is invalid: {d['subset']}")

    if obj.get("kind") == "VirtualService":
        for i, route in enumerate(spec.get("http") or []):
            dests = route.get("route") or []
            for j, d in enumerate(dests):
                destination(d.get("destination"), f"http[{i}].route[{j}]")
                if (d.get("weight") or 0) < 0:
                    errors.append(f"http[{i}].route[{j}]: weight {d['weight']} < 0")
            if len(dests) > 1 and sum(d.get("weight") or 0 for d in dests) == 0:
                errors.append(f"http[{i}]: total destination weight = 0")
            if "mirror" in route:
                destination(route["mirror"], f"http[{i}].mirror")
            value = (route.get("mirrorPercentage") or {}).get("value")
            if value is not None and not 0 <= value <= 100:
                errors.append(f"http[{i}]: mirror percentage must be in 0..100 (it has {value})")
    if obj.get("kind") == "DestinationRule":
        for i, subset in enumerate(spec.get("subsets") or []):
            if not _DNS1123_LABEL.fullmatch(str(subset.get("name", ""))):
                errors.append(f"subsets[{i}]: subset name is invalid: {subset.get('name')}")
    return errors


def istio_errors(obj: dict) -> list[str]:
    """Schema (unknown fields included) and webhook errors together; [] when valid."""
    errors = schema_errors(obj)
    return errors or webhook_errors(obj)
