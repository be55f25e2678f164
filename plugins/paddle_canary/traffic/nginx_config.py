"""The gateway's state and how it becomes an nginx.conf.

:class:`GatewayState` is everything the config depends on; it is kept as JSON in the gateway's
workdir so another process (``paddle-canary gateway set-weight``, an Airflow task) can drive the
same running nginx. :func:`render` is pure: state in, config text out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
from pathlib import Path
from urllib.parse import urlsplit

from paddle_canary.traffic.base import RouterError
from paddle_canary.traffic.base import check_weight
from paddle_canary.traffic.buckets import BUCKETS
from paddle_canary.traffic.nginx_template import TEMPLATE, ConfTemplate

_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")


def backend_address(url: str) -> str:
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


@dataclasses.dataclass(frozen=True)
class GatewayState:
    workdir: str
    port: int
    status_port: int
    stable_url: str
    candidate_url: str | None = None
    weight: int = 0
    generation: int = 0
    read_timeout_s: int = 10
    fail_timeout_s: int = 5
    worker_processes: int = 1

    def replace(self, **changes) -> "GatewayState":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "GatewayState":
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _split_parts(weight: int) -> str:
    """``split_clients`` body: ``weight`` 1% parts to the candidate first, the rest to stable.

    A 0% part is invalid in nginx, and ``100%`` alone leaves the single top hash value
    unmatched, so 0 and 100 render as a lone ``*``.
    """
    if weight == 0:
        return "        * stable;"
    if weight == BUCKETS:
        return "        * candidate;"
    lines = ["        1% candidate;"] * weight + ["        * stable;"]
    return "\n".join(lines)


def _bucket_parts() -> str:
    lines = [f"        1% {b};" for b in range(BUCKETS - 1)] + [f"        * {BUCKETS - 1};"]
    return "\n".join(lines)


def _user_directive(workdir: Path) -> str:
    # As root, nginx would drop its workers to "nobody", who cannot write our temp dirs.
    if os.geteuid() != 0:
        return ""
    try:
        owner = pwd.getpwuid(workdir.stat().st_uid).pw_name
    except (KeyError, FileNotFoundError):
        owner = "root"
    return f"user {owner};"


def render(state: GatewayState, template: str | None = None) -> str:
    """The nginx.conf for ``state``. ``template`` overrides the built-in one (same placeholders)."""
    weight = check_weight(state.weight)
    stable = backend_address(state.stable_url)
    if state.candidate_url is None:
        if weight:
            raise RouterError(f"weight {weight} needs a candidate backend; none is configured")
        candidate, backup = stable, ""
    else:
        candidate = backend_address(state.candidate_url)
        backup = f"        server {stable} backup;"
    prefix = Path(state.workdir).resolve()
    status = {"weight": weight, "generation": state.generation, "stable": stable,
              "candidate": candidate if state.candidate_url is not None else None}
    return ConfTemplate(template or TEMPLATE).substitute(
        prefix=str(prefix),
        user_directive=_user_directive(prefix),
        worker_processes=int(state.worker_processes),
        port=int(state.port),
        status_port=int(state.status_port),
        stable_addr=stable,
        candidate_addr=candidate,
        candidate_backup=backup,
        stable_re=re.escape(stable),
        candidate_re=re.escape(candidate),
        split_parts=_split_parts(weight),
        bucket_parts=_bucket_parts(),
        weight=weight,
        generation=int(state.generation),
        read_timeout_s=int(state.read_timeout_s),
        fail_timeout_s=int(state.fail_timeout_s),
        state_json=json.dumps(status, separators=(",", ":")),
    )
