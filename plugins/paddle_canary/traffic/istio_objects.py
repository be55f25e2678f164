"""Pure rendering of the Istio objects the Istio router manages, and reading them back.

Nothing here talks to a cluster; :mod:`paddle_canary.traffic.istio` makes the API calls.

Per model (all ``networking.istio.io/v1``, named ``<model>-serving`` like the model's Service):

- ``DestinationRule``: one subset per routed version (stable, and the candidate when there is
  one), selecting pods labelled ``app: <model>-serving, version: <version>``. Subset names are
  :func:`names.version_slug` of the version.
- ``VirtualService``: the routes of one :class:`ModelRoute`, evaluated in order by Envoy:

  1. ``<model>-header`` (with a header route only): requests whose header equals the value go
     to the candidate at any weight (an ``exact`` match, the header name lower-cased as Istio
     requires; the name as given is kept in an annotation so it reads back unchanged);
  2. the split, in one of two modes:

     * sticky (default): per-user routing on a bucket header (``x-canary-bucket``, ``0``..``99``
       from the user ID with nginx's MurmurHash2, set by :data:`LUA_BUCKET_FILTER`). Istio's
       ``consistentHash`` keeps a user on a *pod*, not on a *version* (istio/istio#19630), so
       the version is chosen by header matches generated from the weight:
       ``<model>-candidate`` (buckets ``0..w-1``, left out at ``w = 0``), ``<model>-stable``
       (any other bucket), ``<model>-no-bucket`` (no or invalid header: stable; Envoy's
       access log ``%ROUTE_NAME%`` counts them). A user in bucket ``b`` sees the candidate
       exactly when ``b < w``, so raising the weight only adds users, as nginx's
       ``split_clients`` does on one machine.
     * weighted (``sticky=False``): one route ``<model>-split`` with two destinations weighted
       ``100-w`` / ``w``; every request is split afresh.

  3. Mirroring: the routes that send requests to stable carry ``mirror`` (the candidate subset)
     and ``mirrorPercentage.value`` (the mirror share); Envoy sends that share of stable's
     requests to the candidate too and discards its answers. (Weighted mode mirrors the whole
     split route, so it mirrors only at weight 0.)

  Without a candidate: one route ``<model>-stable`` and a DestinationRule with one subset.

- ``EnvoyFilter`` (``networking.istio.io/v1alpha3``): a Lua filter on the ingress gateway (or on
  the caller's sidecar) that sets the bucket header from ``x-user-id``.

Reading back (:func:`read_route`) accepts only what :func:`http_routes` renders for some route:
anything else (a hand edit, another owner, the other mode) raises :class:`IstioObjectError`
rather than a guess. Header matches use Envoy's ``safe_regex`` (RE2, whole-value match); the
regexes are anchored anyway. Istio's webhook accepts weight 0 but not a multi-destination route
totalling 0, so weighted mode always lists both destinations (100/0 at weight 0).
"""

from __future__ import annotations

import re
from string import Template

from paddle_canary.kube import names
# Re-exported: the labels every object paddle-canary writes carries.
from paddle_canary.kube.names import (MANAGED_BY, MANAGED_BY_LABEL, MODEL_LABEL,  # noqa: F401
                                      is_managed)
from paddle_canary.traffic.base import (Backend, HeaderRoute, ModelRoute, RouterError,
                                        check_weight)
from paddle_canary.traffic.buckets import BUCKETS, PART_SPAN

GROUP = "networking.istio.io"
VERSION = "v1"
VS_PLURAL = "virtualservices"
DR_PLURAL = "destinationrules"
ENVOY_FILTER_API_VERSION = "networking.istio.io/v1alpha3"

BUCKET_HEADER = "x-canary-bucket"
USER_HEADER = "x-user-id"  # telemetry.USER_HEADER, lower-cased as Istio header keys must be
HEADER_NAME_ANNOTATION = "paddle-canary/header-route-name"

# Any bucket 0..99 in canonical decimal form (no sign, no leading zero).
VALID_BUCKET_REGEX = "^([0-9]|[1-9][0-9])$"

_HEADER_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class IstioObjectError(RouterError, ValueError):
    """An argument that cannot become a valid Istio object, or a live object that
    paddle-canary did not write and will not interpret."""


def check_header_name(value: object, what: str = "header name") -> str:
    if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value):
        raise IstioObjectError(
            f"{what} {value!r} must be lower-case letters and digits separated by '-' "
            "(Istio header match keys must be lower case)")
    return value


def _names(fn, *args):
    """Run a names helper, reporting its errors as Istio object errors."""
    try:
        return fn(*args)
    except names.KubeNameError as exc:
        raise IstioObjectError(str(exc)) from None


def _check_host(host: object) -> str:
    if not isinstance(host, str) or not host or host == "*" or any(c.isspace() for c in host):
        raise IstioObjectError(f"invalid destination host {host!r}")
    return host


def _metadata(model: str, namespace: str, annotations: dict | None = None) -> dict:
    meta = {"name": _names(names.serving_app, model),
            "namespace": _names(names.check_dns_label, namespace, "namespace"),
            "labels": names.managed_labels(model)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


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

def route_versions(route: ModelRoute) -> list[str]:
    """The versions a route needs subsets for: stable, then the candidate."""
    return [route.stable.version] + ([route.candidate.version] if route.candidate else [])


def subsets(model: str, versions: list[str]) -> list[dict]:
    """DestinationRule subsets for ``versions``, each selecting that version's pods."""
    app = _names(names.serving_app, model)
    out = []
    for version in versions:
        out.append({"name": _names(names.version_slug, version),
                    "labels": {names.APP_LABEL: app,
                               names.ISTIO_VERSION_LABEL: _names(names.version_label, version)}})
    if len({s["name"] for s in out}) != len(out):
        raise IstioObjectError(f"versions {versions} need distinct subsets")
    return out


def destination_rule(model: str, namespace: str, host: str, versions: list[str]) -> dict:
    """A DestinationRule with one subset per version in ``versions`` (in that order)."""
    if not versions:
        raise IstioObjectError("a DestinationRule needs at least one version")
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DestinationRule",
        "metadata": _metadata(model, namespace),
        "spec": {"host": _check_host(host), "subsets": subsets(model, versions)},
    }


# ---------------------------------------------------------------- VirtualService

def _destination(host: str, subset: str, weight: int) -> dict:
    return {"destination": {"host": host, "subset": subset}, "weight": weight}


def _mirrored(route: dict, host: str, candidate: str | None, mirror: int) -> dict:
    if mirror:
        route["mirror"] = {"host": host, "subset": candidate}
        route["mirrorPercentage"] = {"value": float(mirror)}
    return route


def http_routes(model: str, host: str, stable: str, candidate: str | None, weight: int = 0, *,
                mirror: int = 0, header: HeaderRoute | None = None, sticky: bool = True,
                bucket_header: str = BUCKET_HEADER) -> list[dict]:
    """The ``spec.http`` list (see the module docstring). ``stable``/``candidate`` are subset
    names; ``candidate`` None routes everything to stable."""
    w = check_weight(weight)
    m = check_weight(mirror, "mirror share")
    host = _check_host(host)
    _names(names.check_dns_label, model, "model name")
    _names(names.check_dns_label, stable, "stable subset")
    if candidate is None:
        if w or m or header:
            raise IstioObjectError(f"{model}: weight, mirror or header route without a candidate")
        return [{"name": f"{model}-stable", "route": [_destination(host, stable, 100)]}]
    _names(names.check_dns_label, candidate, "candidate subset")
    if stable == candidate:
        raise IstioObjectError(f"stable and candidate are the same subset {stable!r}")
    routes: list[dict] = []
    if header is not None:
        routes.append({
            "name": f"{model}-header",
            "match": [{"headers": {header.name.lower(): {"exact": header.value}}}],
            "route": [_destination(host, candidate, 100)],
        })
    if not sticky:
        if m and w:
            raise IstioObjectError(
                f"{model}: a weighted Istio split mirrors every request of its route, the "
                f"candidate's too; mirroring {m} % needs weight 0 or the sticky mode")
        routes.append(_mirrored({
            "name": f"{model}-split",
            "route": [_destination(host, stable, 100 - w), _destination(host, candidate, w)],
        }, host, candidate, m))
        return routes
    check_header_name(bucket_header, "bucket header")
    regex = candidate_bucket_regex(w)
    if regex is not None:
        routes.append({
            "name": f"{model}-candidate",
            "match": [{"headers": {bucket_header: {"regex": regex}}}],
            "route": [_destination(host, candidate, 100)],
        })
    routes.append(_mirrored({
        "name": f"{model}-stable",
        "match": [{"headers": {bucket_header: {"regex": VALID_BUCKET_REGEX}}}],
        "route": [_destination(host, stable, 100)],
    }, host, candidate, m))
    routes.append(_mirrored({"name": f"{model}-no-bucket",
                             "route": [_destination(host, stable, 100)]}, host, candidate, m))
    return routes


def virtual_service(route: ModelRoute, namespace: str, host: str | None = None, *,
                    sticky: bool = True, gateways: list[str] | None = None,
                    hosts: list[str] | None = None,
                    bucket_header: str = BUCKET_HEADER) -> dict:
    """The VirtualService serving ``route``. ``host``: the model's Service (default
    ``<model>-serving.<namespace>.svc.cluster.local``); ``hosts`` defaults to ``[host]`` (give
    the external host names when ``gateways`` names an ingress gateway; without ``gateways``
    the rules apply to the mesh's sidecars)."""
    host = host or _names(names.model_host, route.model, namespace)
    candidate = _names(names.version_slug, route.candidate.version) if route.candidate else None
    spec: dict = {
        "hosts": list(hosts) if hosts else [_check_host(host)],
        "http": http_routes(route.model, host, _names(names.version_slug, route.stable.version),
                            candidate, route.weight, mirror=route.mirror, header=route.header,
                            sticky=sticky, bucket_header=bucket_header),
    }
    if gateways:
        spec["gateways"] = list(gateways)
    annotations = {HEADER_NAME_ANNOTATION: route.header.name} if route.header else None
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": _metadata(route.model, namespace, annotations),
        "spec": spec,
    }


def render(route: ModelRoute, namespace: str, host: str | None = None, *, sticky: bool = True,
           gateways: list[str] | None = None, hosts: list[str] | None = None,
           bucket_header: str = BUCKET_HEADER) -> tuple[dict, dict]:
    """``(DestinationRule, VirtualService)`` for ``route``. Istio addresses versions by subset:
    a backend with a URL (nginx's kind) is refused."""
    for backend in (route.stable, route.candidate):
        if backend is not None and backend.url is not None:
            raise IstioObjectError(
                f"{route.model}: Istio routes versions by subset; backend {backend.version} "
                f"has a URL ({backend.url}), which the Istio router cannot route to")
    host = host or _names(names.model_host, route.model, namespace)
    return (destination_rule(route.model, namespace, host, route_versions(route)),
            virtual_service(route, namespace, host, sticky=sticky, gateways=gateways,
                            hosts=hosts, bucket_header=bucket_header))


# ---------------------------------------------------------------- reading back

def _subset_versions(dr: dict | None, model: str) -> dict[str, str]:
    """Subset name -> version of a DestinationRule paddle-canary wrote for ``model``."""
    if dr is None:
        return {}
    name = (dr.get("metadata") or {}).get("name", "?")
    if not is_managed(dr):
        raise IstioObjectError(f"DestinationRule {name!r} is not labelled "
                               f"{MANAGED_BY_LABEL}={MANAGED_BY}; refusing to read it")
    app = _names(names.serving_app, model)
    out = {}
    for subset in (dr.get("spec") or {}).get("subsets") or []:
        labels = subset.get("labels") or {}
        version = labels.get(names.ISTIO_VERSION_LABEL)
        if labels.get(names.APP_LABEL) != app or not version or \
                subset.get("name") != _names(names.version_slug, version):
            raise IstioObjectError(f"DestinationRule {name!r} subset {subset.get('name')!r} is "
                                   "not one paddle-canary writes; refusing to guess")
        out[subset["name"]] = version
    return out


def referenced_subsets(vs: dict | None) -> set[str]:
    """Every subset a VirtualService routes or mirrors to."""
    found: set[str] = set()
    for route in ((vs or {}).get("spec") or {}).get("http") or []:
        for dest in route.get("route") or []:
            subset = (dest.get("destination") or {}).get("subset")
            if subset:
                found.add(subset)
        subset = (route.get("mirror") or {}).get("subset")
        if subset:
            found.add(subset)
    return found


def read_route(vs: dict, dr: dict | None, model: str, host: str, *, sticky: bool = True,
               bucket_header: str = BUCKET_HEADER) -> ModelRoute:
    """The :class:`ModelRoute` a VirtualService (with its DestinationRule) read back from the API
    server serves. Only objects paddle-canary wrote in this router's mode are read; the live
    ``spec.http`` must equal what :func:`http_routes` renders for the route found."""
    name = (vs.get("metadata") or {}).get("name", "?")
    if not is_managed(vs):
        raise IstioObjectError(
            f"VirtualService {name!r} is not labelled {MANAGED_BY_LABEL}={MANAGED_BY}; "
            "paddle-canary does not read routes from objects it did not write")
    http = (vs.get("spec") or {}).get("http")
    if not isinstance(http, list) or not http:
        raise IstioObjectError(f"VirtualService {name!r} has no http routes")
    mode = "sticky" if sticky else "weighted"
    try:
        stable, candidate, weight, mirror, header = _parse(http, model, sticky, bucket_header,
                                                           vs)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise IstioObjectError(
            f"VirtualService {name!r} is not in the {mode} shape paddle-canary writes "
            f"({type(exc).__name__}: {exc}); refusing to guess its route") from None
    versions = _subset_versions(dr, model)
    if candidate is None and len(http) > 1:
        # A candidate at weight 0, unmirrored, without header route: named by the subsets.
        others = sorted(set(versions) - {stable})
        if len(others) != 1:
            raise IstioObjectError(
                f"VirtualService {name!r} routes users by bucket but names no candidate, and "
                f"DestinationRule subsets {sorted(versions)} do not say which one it is")
        candidate = others[0]
    for subset in (stable, candidate):
        if subset is not None and subset not in versions:
            raise IstioObjectError(f"VirtualService {name!r} routes to subset {subset!r}, which "
                                   "its DestinationRule does not define (requests would fail)")
    expected = http_routes(model, host, stable, candidate, weight, mirror=mirror, header=header,
                           sticky=sticky, bucket_header=bucket_header)
    if http != expected:
        raise IstioObjectError(
            f"VirtualService {name!r} differs from what paddle-canary writes for the route it "
            f"seems to hold ({mode}, {stable} -> {candidate} at {weight} %): it was edited by "
            "hand or written in the other mode; refusing to guess")
    return ModelRoute(model=model, stable=Backend(versions[stable]),
                      candidate=Backend(versions[candidate]) if candidate else None,
                      weight=weight, mirror=mirror, header=header)


def _parse(http: list[dict], model: str, sticky: bool, bucket_header: str, vs: dict):
    """``(stable, candidate, weight, mirror, header)`` as the routes say; checked afterwards
    by rendering them again."""
    i, candidate, header = 0, None, None
    if http[0]["name"] == f"{model}-header":
        ((key, match),) = http[0]["match"][0]["headers"].items()
        given = ((vs.get("metadata") or {}).get("annotations") or {}).get(HEADER_NAME_ANNOTATION)
        header = HeaderRoute(given if given and given.lower() == key else key, match["exact"])
        candidate = http[0]["route"][0]["destination"]["subset"]
        i = 1
    weight = 0
    if not sticky and http[i]["name"] == f"{model}-split":
        split = http[i]["route"]
        stable = split[0]["destination"]["subset"]
        candidate = split[1]["destination"]["subset"]
        weight = check_weight(split[1]["weight"])
        mirrored = http[i]
    else:
        if sticky and http[i]["name"] == f"{model}-candidate":
            weight = weight_of_bucket_regex(http[i]["match"][0]["headers"][bucket_header]["regex"])
            candidate = http[i]["route"][0]["destination"]["subset"]
            i += 1
        mirrored = http[i]
        if mirrored["name"] != f"{model}-stable":
            raise ValueError(f"route {mirrored['name']!r} where {model}-stable was expected")
        stable = mirrored["route"][0]["destination"]["subset"]
    mirror = 0
    if "mirror" in mirrored:
        candidate = mirrored["mirror"]["subset"]
        value = mirrored["mirrorPercentage"]["value"]
        if value != int(value):
            raise ValueError(f"mirror share {value} is not a whole percentage")
        mirror = check_weight(int(value), "mirror share")
    return stable, candidate, weight, mirror, header


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
        "metadata": {"name": _names(names.check_dns_label, name, "EnvoyFilter name"),
                     "namespace": _names(names.check_dns_label, namespace, "namespace"),
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
