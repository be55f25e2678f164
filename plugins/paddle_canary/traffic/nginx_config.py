"""The gateway's state and how it becomes an nginx.conf.

:class:`GatewayState` is everything the config depends on: the listening ports, timeouts and one
:class:`~paddle_canary.traffic.base.ModelRoute` per model. It is kept as JSON in the gateway's
workdir so another process (``paddle-canary gateway set-weight``, an Airflow task) can drive the
same running nginx. :func:`render` is pure: state in, config text out.
"""

from __future__ import annotations

import dataclasses
import json
import time
import os
import pwd
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from paddle_canary.traffic.base import ModelRoute, RouterError
from paddle_canary.traffic.buckets import BUCKETS
from paddle_canary.traffic.nginx_template import (MIRROR_SETTINGS, MODEL_TEMPLATE, PROXY_SETTINGS,
                                                   TEMPLATE, ConfTemplate)

_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")
# Model names reach nginx in location paths, split keys and variable suffixes.
_MODEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MIRROR_HEADER = "X-Canary-Mirror"


def backend_address(url: str | None) -> str:
    """``http://host:port`` -> ``host:port``; anything else is refused with a clear error."""
    if not isinstance(url, str):
        raise RouterError(f"backend must be an http://host:port URL, got {url!r}")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if (parts.scheme != "http" or not parts.hostname or not _HOST.match(parts.hostname)
            or port is None or not 0 < port < 65536 or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username or parts.password):
        raise RouterError(f"backend must be an http://host:port URL, got {url!r}")
    return f"{parts.hostname}:{port}"


def check_model(model: str) -> str:
    if not isinstance(model, str) or not _MODEL.match(model):
        raise RouterError(f"model name {model!r} cannot be routed by nginx: lower-case letters, "
                          "digits and '-', at most 63 characters")
    return model


def check_route(route: ModelRoute) -> ModelRoute:
    """Names and addresses nginx can carry; RouterError naming the first that it cannot."""
    check_model(route.model)
    for backend in (route.stable, route.candidate):
        if backend is None:
            continue
        if not _VERSION.match(backend.version):
            raise RouterError(f"{route.model}: version {backend.version!r} cannot be routed")
        backend_address(backend.url)
    return route


@dataclasses.dataclass(frozen=True)
class GatewayState:
    workdir: str
    port: int
    status_port: int
    routes: tuple[ModelRoute, ...] = ()
    default_model: str | None = None
    generation: int = 0
    read_timeout_s: int = 10
    fail_timeout_s: int = 5
    mirror_timeout_ms: int = 500
    worker_processes: int = 1
    # model -> unix time its current weight took effect (for the gateway's /metrics)
    weight_since: dict = dataclasses.field(default_factory=dict)

    def replace(self, **changes) -> "GatewayState":
        return dataclasses.replace(self, **changes)

    def route(self, model: str) -> ModelRoute | None:
        return next((r for r in self.routes if r.model == model), None)

    def with_route(self, route: ModelRoute) -> "GatewayState":
        """This state with ``route`` replacing the model's route (or added); the first model
        routed becomes the default one (served on the unprefixed paths)."""
        check_route(route)
        others = tuple(r for r in self.routes if r.model != route.model)
        routes = tuple(sorted(others + (route,), key=lambda r: r.model))
        since = dict(self.weight_since)
        old = self.route(route.model)
        if old is None or old.weight != route.weight or route.model not in since:
            since[route.model] = time.time()
        return self.replace(routes=routes, default_model=self.default_model or route.model,
                            weight_since=since)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["routes"] = [r.to_dict() for r in self.routes]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "GatewayState":
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
        data["routes"] = tuple(ModelRoute.from_dict(r) for r in data.get("routes") or ())
        return cls(**data)


def _split_parts(weight: int) -> str:
    """``split_clients`` body: ``weight`` 1% parts to the candidate first, the rest to stable.

    A 0% part is invalid in nginx, and ``100%`` alone leaves the single top hash value
    unmatched, so 0 and 100 render as a lone ``*``.
    """
    if weight == 0:
        return "        * stable;"
    if weight == BUCKETS:
        return "        * candidate;"
    return "\n".join(["        1% candidate;"] * weight + ["        * stable;"])


def _bucket_parts() -> str:
    lines = [f"        1% {b};" for b in range(BUCKETS - 1)] + [f"        * {BUCKETS - 1};"]
    return "\n".join(lines)


def _mirror_parts(share: int) -> str:
    if share == 0:
        return '        * "";'
    if share == 100:
        return "        * 1;"
    return f"        {share}% 1;\n        * \"\";"


def _user_directive(workdir: Path) -> str:
    # As root, nginx would drop its workers to "nobody", who cannot write our temp dirs.
    if os.geteuid() != 0:
        return ""
    try:
        owner = pwd.getpwuid(workdir.stat().st_uid).pw_name
    except (KeyError, FileNotFoundError):
        owner = "root"
    return f"user {owner};"


def _header_var(name: str) -> str:
    return "$http_" + name.lower().replace("-", "_")


def _served_by(route: ModelRoute) -> dict[str, str]:
    """Which upstream address belongs to which side (for the access log's served_by)."""
    out = {backend_address(route.stable.url): "stable"}
    if route.candidate is not None:
        out.setdefault(backend_address(route.candidate.url), "candidate")
    return out


def _model_block(state: GatewayState, mid: str, route: ModelRoute) -> str:
    stable = backend_address(route.stable.url)
    candidate = backend_address(route.candidate.url) if route.candidate else stable
    header = route.header
    if header is None:
        header_map = (f"    map $http_x_user_id $route_{mid} {{\n"
                      f"        default $user_route_{mid};\n    }}\n")
    else:
        header_map = (f"    map {_header_var(header.name)} $route_{mid} {{\n"
                      f"        {json.dumps(header.value)} header;\n"
                      f"        default $user_route_{mid};\n    }}\n")
    return ConfTemplate(MODEL_TEMPLATE).substitute(
        mid=mid, model=route.model,
        stable_addr=stable, candidate_addr=candidate,
        candidate_backup=f"        server {stable} backup;" if route.candidate else "",
        split_parts=_split_parts(route.weight), bucket_parts=_bucket_parts(),
        mirror_parts=_mirror_parts(route.mirror if route.candidate else 0),
        header_map=header_map, fail_timeout_s=int(state.fail_timeout_s))


def _proxy_location(settings: str, mid: str, route: ModelRoute, where: str) -> str:
    """One ``location`` that proxies a model's requests (its prefix, or the default paths)."""
    mirror = (f"            mirror /_canary_mirror/{mid};\n            mirror_request_body on;\n"
              if route.candidate and route.mirror else "")
    return (f"        location {where} {{\n"
            f"            set $canary_model {route.model};\n"
            f"            set $canary_route $route_{mid};\n"
            f"            set $canary_bucket $log_bucket_{mid};\n"
            f"            set $canary_weight {route.weight};\n"
            f"{mirror}"
            f"            proxy_pass http://$upstream_{mid}$path_{mid};\n"
            f"{settings}"
            f"        }}\n")


def render(state: GatewayState, template: str | None = None) -> str:
    """The nginx.conf for ``state``. ``template`` overrides the built-in one (same placeholders)."""
    prefix = Path(state.workdir).resolve()
    values = {"read_timeout_s": int(state.read_timeout_s), "mirror_header": MIRROR_HEADER,
              "mirror_timeout_ms": int(state.mirror_timeout_ms)}
    proxy = ConfTemplate(PROXY_SETTINGS).substitute(values)
    mirror = ConfTemplate(MIRROR_SETTINGS).substitute(values)
    blocks, locations, status_routes, served = [], [], [], {}
    status = {"generation": int(state.generation), "default_model": state.default_model,
              "routes": {}}
    for index, route in enumerate(state.routes):
        check_route(route)
        mid = f"m{index}"
        blocks.append(_model_block(state, mid, route))
        locations.append(_proxy_location(proxy, mid, route, f"^~ /models/{route.model}/"))
        if route.model == state.default_model:
            locations.append(_proxy_location(proxy, mid, route, "/"))
        if route.candidate and route.mirror:
            locations.append(f"        location = /_canary_mirror/{mid} {{\n"
                             f"            internal;\n"
                             f"            if ($mirror_{mid} = \"\") {{ return 204; }}\n"
                             f"            proxy_pass http://{mid}_mirror$path_{mid};\n"
                             f"{mirror}"
                             f"        }}\n")
        status_routes.append(f"        location = /canary/route/{route.model} {{\n"
                             f"            return 200 \"$route_{mid} $bucket_{mid}\\n\";\n"
                             f"        }}\n")
        status["routes"][route.model] = route.to_dict()
        for addr, side in _served_by(route).items():
            served.setdefault(addr, side)
    if state.route(state.default_model or "") is None:
        locations.append("        location / {\n"
                         "            set $canary_model \"\";\n"
                         "            set $canary_route none;\n"
                         "            set $canary_bucket null;\n"
                         "            set $canary_weight 0;\n"
                         "            default_type application/json;\n"
                         "            return 503 '{\"error\":\"no model is routed here\"}\\n';\n"
                         "        }\n")
    served_map = "\n".join(f'        "~(^|, ){re.escape(addr)}$" {side};'
                           for addr, side in served.items())
    return ConfTemplate(template or TEMPLATE).substitute(
        prefix=str(prefix),
        user_directive=_user_directive(prefix),
        worker_processes=int(state.worker_processes),
        port=int(state.port),
        status_port=int(state.status_port),
        generation=int(state.generation),
        model_blocks="\n".join(blocks),
        served_by=served_map,
        locations="".join(locations),
        status_routes="".join(status_routes),
        metrics=metrics_text(state),
        state_json=json.dumps(status, separators=(",", ":"), sort_keys=True),
    )


def metrics_text(state: GatewayState) -> str:
    """The gateway's Prometheus series (names in ``paddle_canary.ops.series``): per model the
    live weight, when it took effect, and which version is routed in which role."""
    lines = []
    for name, what in (("paddle_canary_gateway_weight", "Candidate share of users in percent."),
                       ("paddle_canary_gateway_weight_since_seconds",
                        "Unix time the current weight took effect."),
                       ("paddle_canary_gateway_backend_info",
                        "1 per routed version and its role (stable or candidate).")):
        lines += [f"# HELP {name} {what}", f"# TYPE {name} gauge"]
    for route in state.routes:
        m = route.model
        lines.append(f'paddle_canary_gateway_weight{{model="{m}"}} {route.weight}')
        lines.append(f'paddle_canary_gateway_weight_since_seconds{{model="{m}"}} '
                     f'{state.weight_since.get(m, 0.0):.3f}')
        for role, backend in (("stable", route.stable), ("candidate", route.candidate)):
            if backend is not None:
                lines.append(f'paddle_canary_gateway_backend_info{{model="{m}",'
                             f'version="{backend.version}",role="{role}"}} 1')
    return "\\n".join(lines) + "\\n"


def status_document(text: str) -> dict[str, Any]:
    """Parse the status server's /canary/state answer."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("routes"), dict):
        raise ValueError("not a gateway status document")
    return data
