"""Pure rendering of the Kubernetes objects the Istio router manages, and reading them back.

Nothing here talks to a cluster; :mod:`paddle_canary.traffic.istio` does the API calls.

Objects (all ``networking.istio.io/v1`` unless noted):

- ``DestinationRule``: one subset per version, selected by the pod labels
  ``app: <model>-serving`` and ``version: <version>``.
- ``VirtualService``: the routes that move the canary. Two modes:

  * weighted (``sticky=False``): one route, two destinations weighted ``100-w`` / ``w``.
    Every request is split afresh: a user may see both versions.
  * sticky (default): per-user routing on a bucket header (``x-canary-bucket``, a decimal
    ``0``..``99`` computed from the user ID with nginx's MurmurHash2, see
    :data:`LUA_BUCKET_FILTER`).
    Istio's ``consistentHash`` keeps a user on a *pod*, not on a *version* (istio/istio#19630),
    so the version is chosen by header match rules generated from the weight:

    1. ``<model>-candidate``: bucket matches :func:`candidate_bucket_regex` (buckets ``0..w-1``),
       left out at ``w = 0``;
    2. ``<model>-stable``: any other valid bucket (``0``..``99``);
    3. ``<model>-no-bucket``: no header, or a value that is not a bucket; goes to stable.
       These requests are counted by route name: Envoy's access log ``%ROUTE_NAME%`` (in
       Istio's default access-log format) reads ``<model>-no-bucket``.

    A user in bucket ``b`` sees the candidate exactly when ``b < w``, so raising the weight
    only adds users to the canary, as nginx's ``split_clients`` does on one machine.

- ``EnvoyFilter`` (``networking.istio.io/v1alpha3``): a Lua filter on the ingress gateway (or on
  the caller's sidecar) that sets the bucket header from ``x-user-id``.
- ``Deployment`` / ``Service`` (``apps/v1``, ``v1``): the serving workload those subsets select.

Header matches use Envoy's ``safe_regex`` (RE2), which must match the *whole* value; the
regexes are anchored anyway. Istio's webhook accepts weight 0 (``weight < 0`` is refused, and
a route with several destinations must not total 0), so weighted mode always lists both
destinations, which keeps the object's shape the same at every weight.
"""

from __future__ import annotations

import hashlib
import re
from string import Template

from paddle_canary.traffic.base import check_weight
from paddle_canary.traffic.buckets import BUCKETS, PART_SPAN
from paddle_canary.traffic.base import RouterError

GROUP = "networking.istio.io"
VERSION = "v1"
VS_PLURAL = "virtualservices"
DR_PLURAL = "destinationrules"
ENVOY_FILTER_API_VERSION = "networking.istio.io/v1alpha3"

BUCKET_HEADER = "x-canary-bucket"
USER_HEADER = "x-user-id"  # telemetry.USER_HEADER, lower-cased as Istio header keys must be

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "paddle-canary"
MODEL_LABEL = "paddle-canary/model"

SERVING_PORT = 8000

# Any bucket 0..99 in canonical decimal form (no sign, no leading zero).
VALID_BUCKET_REGEX = "^([0-9]|[1-9][0-9])$"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_HEADER_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class IstioObjectError(RouterError, ValueError):
    """An argument that cannot become a valid Istio/Kubernetes object, or a live object that
    paddle-canary did not write and will not interpret."""


# ---------------------------------------------------------------- names

def check_dns_label(value: object, what: str) -> str:
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise IstioObjectError(
            f"{what} {value!r} is not a DNS-1123 label (lower-case letters, digits, inner '-', "
            "at most 63 characters)")
    return value


def check_header_name(value: object, what: str = "header name") -> str:
    if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value):
        raise IstioObjectError(
            f"{what} {value!r} must be lower-case letters and digits separated by '-' "
            "(Istio header match keys must be lower case)")
    return value


def version_label(version: object) -> str:
    """The ``version`` pod label for a registry version; refused if Kubernetes cannot hold it."""
    if not isinstance(version, str) or not _LABEL_VALUE.fullmatch(version):
        raise IstioObjectError(
            f"version {version!r} cannot be a Kubernetes label value (at most 63 characters, "
            "letters, digits, '-', '_', '.', starting and ending with a letter or digit)")
    return version


def subset_name(version: object) -> str:
    """The DestinationRule subset name for a version (Istio wants a DNS-1123 label).

    A version that already is one is used as is. Otherwise it is lower-cased with ``.``/``_``
    turned into ``-`` and suffixed with 8 hex digits of its SHA-1, so that ``V1.2`` and ``v1-2``
    never share a subset.
    """
    label = version_label(version)
    if _DNS_LABEL.fullmatch(label):
        return label
    digest = hashlib.sha1(label.encode()).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9-]", "-", label.lower())[:54].strip("-") or "v"
    return f"{base}-{digest}"


def serving_app(model: str) -> str:
    return f"{check_dns_label(model, 'model name')}-serving"


def default_host(model: str, namespace: str) -> str:
    return f"{serving_app(model)}.{check_dns_label(namespace, 'namespace')}.svc.cluster.local"


def _metadata(name: str, namespace: str, model: str) -> dict:
    return {
        "name": name,
        "namespace": check_dns_label(namespace, "namespace"),
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, MODEL_LABEL: model},
    }


# ---------------------------------------------------------------- bucket regexes

def _digit_class(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def candidate_bucket_regex(weight: int) -> str | None:
    """An anchored RE2 regex matching exactly the decimal buckets ``0..weight-1``.

    ``None`` at weight 0 (no bucket goes to the candidate). Examples: 5 -> ``^[0-4]$``,
    15 -> ``^([0-9]|1[0-4])$``, 100 -> ``^([0-9]|[1-9][0-9])$``.
    """
    w = check_weight(weight)
    if w == 0:
        return None
    top = w - 1
    if top < 10:
        return f"^{_digit_class(0, top)}$"
    tens, units = divmod(top, 10)
    parts = ["[0-9]"]
    if units == 9:
        parts.append(f"{_digit_class(1, tens)}[0-9]")
    else:
        if tens > 1:
            parts.append(f"{_digit_class(1, tens - 1)}[0-9]")
        parts.append(f"{tens}{_digit_class(0, units)}")
    return "^(" + "|".join(parts) + ")$"


_WEIGHT_OF_REGEX = {candidate_bucket_regex(w): w for w in range(1, BUCKETS + 1)}


def weight_of_bucket_regex(regex: str) -> int:
    """Inverse of :func:`candidate_bucket_regex`; refuses any regex it did not generate."""
    try:
        return _WEIGHT_OF_REGEX[regex]
    except (KeyError, TypeError):
        raise IstioObjectError(
            f"bucket regex {regex!r} was not generated by paddle-canary; refusing to guess "
            "the weight it stands for") from None


# ---------------------------------------------------------------- DestinationRule

def destination_rule(model: str, namespace: str, host: str, versions: dict[str, str]) -> dict:
    """A DestinationRule with one subset per entry of ``versions`` (subset name -> version
    label), each selecting pods labelled ``app: <model>-serving, version: <label>``."""
    app = serving_app(model)
    if not versions:
        raise IstioObjectError("a DestinationRule needs at least one version")
    subsets = []
    for name, label in versions.items():
        subsets.append({
            "name": check_dns_label(name, "subset name"),
            "labels": {"app": app, "version": version_label(label)},
        })
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DestinationRule",
        "metadata": _metadata(app, namespace, model),
        "spec": {"host": _check_host(host), "subsets": subsets},
    }


def _check_host(host: object) -> str:
    if not isinstance(host, str) or not host or host == "*" or any(c.isspace() for c in host):
        raise IstioObjectError(f"invalid destination host {host!r}")
    return host


# ---------------------------------------------------------------- VirtualService

def _destination(host: str, subset: str, weight: int) -> dict:
    return {"destination": {"host": host, "subset": subset}, "weight": weight}


def http_routes(model: str, host: str, stable: str, candidate: str, weight: int, *,
                sticky: bool = True, bucket_header: str = BUCKET_HEADER) -> list[dict]:
    """The ``spec.http`` list for ``weight`` (see the module docstring for the two modes)."""
    w = check_weight(weight)
    host = _check_host(host)
    check_dns_label(stable, "stable subset")
    check_dns_label(candidate, "candidate subset")
    if stable == candidate:
        raise IstioObjectError(f"stable and candidate are the same subset {stable!r}")
    check_dns_label(model, "model name")
    if not sticky:
        return [{
            "name": f"{model}-split",
            "route": [_destination(host, stable, 100 - w), _destination(host, candidate, w)],
        }]
    check_header_name(bucket_header, "bucket header")
    routes = []
    regex = candidate_bucket_regex(w)
    if regex is not None:
        routes.append({
            "name": f"{model}-candidate",
            "match": [{"headers": {bucket_header: {"regex": regex}}}],
            "route": [_destination(host, candidate, 100)],
        })
    routes.append({
        "name": f"{model}-stable",
        "match": [{"headers": {bucket_header: {"regex": VALID_BUCKET_REGEX}}}],
        "route": [_destination(host, stable, 100)],
    })
    routes.append({"name": f"{model}-no-bucket", "route": [_destination(host, stable, 100)]})
    return routes


def virtual_service(model: str, namespace: str, host: str, stable: str, candidate: str,
                    weight: int, sticky: bool = True, gateways: list[str] | None = None,
                    bucket_header: str = BUCKET_HEADER, hosts: list[str] | None = None) -> dict:
    """The VirtualService sending ``weight`` % of users (sticky) or requests to ``candidate``.

    ``hosts`` defaults to ``[host]``; give the external host names when ``gateways`` names an
    ingress gateway. Without ``gateways`` the rules apply to sidecars in the mesh.
    """
    spec: dict = {
        "hosts": list(hosts) if hosts else [_check_host(host)],
        "http": http_routes(model, host, stable, candidate, weight, sticky=sticky,
                            bucket_header=bucket_header),
    }
    if gateways:
        spec["gateways"] = list(gateways)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": _metadata(serving_app(model), namespace, model),
        "spec": spec,
    }


def is_managed(obj: dict) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def live_weight(vs: dict, model: str, host: str, stable: str, candidate: str, *,
                sticky: bool = True, bucket_header: str = BUCKET_HEADER) -> int:
    """The candidate weight a VirtualService read back from the API server routes.

    Only objects paddle-canary wrote are read: the live ``spec.http`` must equal what
    :func:`http_routes` renders for some weight with these versions and mode. Anything else
    (another owner, a hand edit, other versions, the other mode) raises
    :class:`IstioObjectError` rather than a guess.
    """
    name = (vs.get("metadata") or {}).get("name", "?")
    if not is_managed(vs):
        raise IstioObjectError(
            f"VirtualService {name!r} is not labelled {MANAGED_BY_LABEL}={MANAGED_BY}; "
            "paddle-canary does not read weights from objects it did not write")
    http = (vs.get("spec") or {}).get("http")
    if not isinstance(http, list) or not http:
        raise IstioObjectError(f"VirtualService {name!r} has no http routes")
    try:
        if sticky:
            first = http[0]
            if first.get("name") == f"{model}-candidate":
                regex = first["match"][0]["headers"][bucket_header]["regex"]
                weight = weight_of_bucket_regex(regex)
            else:
                weight = 0
        else:
            weight = http[0]["route"][1]["weight"]
            check_weight(weight)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise IstioObjectError(
            f"VirtualService {name!r} is not in the {'sticky' if sticky else 'weighted'} shape "
            f"paddle-canary writes ({type(exc).__name__}: {exc}); refusing to guess its weight"
        ) from None
    expected = http_routes(model, host, stable, candidate, weight, sticky=sticky,
                           bucket_header=bucket_header)
    if http != expected:
        raise IstioObjectError(
            f"VirtualService {name!r} differs from what paddle-canary writes for "
            f"{stable} -> {candidate} at {weight}% ({'sticky' if sticky else 'weighted'}): "
            "it was edited by hand or written for other versions; refusing to guess")
    return weight


# ---------------------------------------------------------------- EnvoyFilter (bucket header)

# LuaJIT (Envoy's Lua runtime: Lua 5.1 + the `bit` library). Every product in mul32 stays below
# 2^53, so doubles compute it exactly. The hash is nginx's ngx_murmur_hash2 (seed 0) over the
# raw header bytes and the bucket is traffic.buckets.bucket(): min(hash // PART_SPAN, 99), the
# 1 % split_clients part the hash falls in. So a user is in the same bucket on both data planes.
LUA_BUCKET_FILTER = Template(r"""-- paddle-canary: canary bucket 0..99 from the user ID, as nginx
-- split_clients computes it.
local bit = require("bit")
local USER_HEADER = "$user_header"
local BUCKET_HEADER = "$bucket_header"
local TWO32 = 4294967296
local PART_SPAN = $part_span -- hash values in one 1 % split_clients part
local M_HI, M_LO = 0x5bd1, 0xe995 -- MurmurHash2's m = 0x5bd1e995, in 16-bit halves

local function u32(x) return x % TWO32 end -- bit ops return signed int32

local function mul32(a) -- a * m mod 2^32, exact in doubles
  return ((a * M_HI) % 65536 * 65536 + a * M_LO) % TWO32
end

local function murmur2(s) -- ngx_murmur_hash2
  local len = #s
  local h = len % TWO32
  local i = 1
  while len >= 4 do
    local b1, b2, b3, b4 = string.byte(s, i, i + 3)
    local k = mul32(b1 + b2 * 256 + b3 * 65536 + b4 * 16777216)
    k = mul32(u32(bit.bxor(k, bit.rshift(k, 24))))
    h = u32(bit.bxor(mul32(h), k))
    i = i + 4
    len = len - 4
  end
  if len == 3 then h = u32(bit.bxor(h, string.byte(s, i + 2) * 65536)) end
  if len >= 2 then h = u32(bit.bxor(h, string.byte(s, i + 1) * 256)) end
  if len >= 1 then h = mul32(u32(bit.bxor(h, string.byte(s, i)))) end
  h = mul32(u32(bit.bxor(h, bit.rshift(h, 13))))
  return u32(bit.bxor(h, bit.rshift(h, 15)))
end

local function bucket_of_hash(h) -- traffic.buckets.bucket
  return math.min((h - h % PART_SPAN) / PART_SPAN, 99)
end

paddle_canary_bucket = {murmur2 = murmur2, bucket_of_hash = bucket_of_hash}

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local user = headers:get(USER_HEADER)
  -- A client never chooses its own bucket: drop what it sent, then set ours.
  headers:remove(BUCKET_HEADER)
  if user ~= nil and user ~= "" then
    headers:replace(BUCKET_HEADER, tostring(bucket_of_hash(murmur2(user))))
  end
  -- Filters before this one may have picked a route already; pick again with the header.
  pcall(function() request_handle:clearRouteCache() end)
end
""")


def lua_bucket_filter(user_header: str = USER_HEADER, bucket_header: str = BUCKET_HEADER) -> str:
    return LUA_BUCKET_FILTER.substitute(
        part_span=PART_SPAN,
        user_header=check_header_name(user_header, "user header"),
        bucket_header=check_header_name(bucket_header, "bucket header"))


def envoy_filter(namespace: str = "istio-system",
                 workload_labels: dict[str, str] | None = None,
                 context: str = "GATEWAY", user_header: str = USER_HEADER,
                 bucket_header: str = BUCKET_HEADER,
                 name: str = "paddle-canary-bucket") -> dict:
    """An EnvoyFilter inserting the bucket Lua filter before the router.

    Defaults: the ingress gateway (``istio: ingressgateway`` in ``istio-system``). For calls
    from inside the mesh use ``context="SIDECAR_OUTBOUND"`` with the *caller's* labels.
    """
    if context not in ("GATEWAY", "SIDECAR_OUTBOUND"):
        raise IstioObjectError(f"context must be GATEWAY or SIDECAR_OUTBOUND, got {context!r}")
    labels = workload_labels or {"istio": "ingressgateway"}
    return {
        "apiVersion": ENVOY_FILTER_API_VERSION,
        "kind": "EnvoyFilter",
        "metadata": {"name": check_dns_label(name, "EnvoyFilter name"),
                     "namespace": check_dns_label(namespace, "namespace"),
                     "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "spec": {
            "workloadSelector": {"labels": dict(labels)},
            "configPatches": [{
                "applyTo": "HTTP_FILTER",
                "match": {
                    "context": context,
                    "listener": {"filterChain": {"filter": {
                        "name": "envoy.filters.network.http_connection_manager",
                        "subFilter": {"name": "envoy.filters.http.router"},
                    }}},
                },
                "patch": {
                    "operation": "INSERT_BEFORE",
                    "value": {
                        "name": "envoy.filters.http.lua",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                            "default_source_code": {
                                "inline_string": lua_bucket_filter(user_header, bucket_header),
                            },
                        },
                    },
                },
            }],
        },
    }


# ---------------------------------------------------------------- serving workload

def serving_deployment(model: str, version: str, namespace: str, image: str, *,
                       gpus: int = 1, replicas: int = 1, port: int = SERVING_PORT) -> dict:
    """One Deployment per version, labelled so that the DestinationRule subset selects it."""
    app = serving_app(model)
    label = version_label(version)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise IstioObjectError(f"gpus must be a non-negative integer, got {gpus!r}")
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise IstioObjectError(f"invalid image {image!r}")
    labels = {"app": app, "version": label}
    container: dict = {
        "name": "serving",
        "image": image,
        "ports": [{"name": "http", "containerPort": port}],
        # Ready only when a real inference on reference rows succeeds; alive while it answers.
        "readinessProbe": {
            "httpGet": {"path": "/deep_health", "port": "http"},
            "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 6,
        },
    }
    pod_spec: dict = {"containers": [container]}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        pod_spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**_metadata(f"{app}-{subset_name(version)}", namespace, model),
                     "labels": {**labels, MANAGED_BY_LABEL: MANAGED_BY, MODEL_LABEL: model}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def serving_service(model: str, namespace: str, port: int = SERVING_PORT) -> dict:
    """The one Service in front of every version; the DestinationRule splits it by subset.

    The port is named ``http`` so that Istio treats the traffic as HTTP.
    """
    app = serving_app(model)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(app, namespace, model),
        "spec": {
            "selector": {"app": app},
            "ports": [{"name": "http", "port": port, "targetPort": "http",
                       "appProtocol": "http"}],
        },
    }
