"""Where settings come from besides the environment: sources registered at import time.

Outside Airflow (the CLI, the local stack, tests) the environment is the only source
(:class:`Settings`). Inside Airflow, ``paddle_canary.airflow`` registers sources that read
Airflow's own settings first, so a deployment configures paddle-canary the Airflow way; the
environment stays the fallback:

- ``prometheus``: ``source(settings)`` → a PrometheusProvider (Connection ``prometheus_default``)
- ``registry``: ``source()`` → the model registry's root (Variable ``paddle_canary_registry``)
- ``kubernetes``: ``source(conn_id)`` → a ``kubernetes.client.ApiClient`` (the Kubernetes
  provider's Connection, default ``kubernetes_default``)
- ``image_registry``: ``source()`` → ``(registry host, auth_config)`` for pushing and pulling
  serving images (the Docker provider's Connection ``docker_default``)

Each source answers None to let the next one (or the environment) answer. Plain Python: no
Airflow import here.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

KINDS = ("prometheus", "registry", "kubernetes", "image_registry")
_SOURCES: dict[str, list[Callable[..., Any]]] = {kind: [] for kind in KINDS}


def register(kind: str, source: Callable[..., Any]) -> None:
    if kind not in _SOURCES:
        raise ValueError(f"unknown settings source kind {kind!r}; one of {KINDS}")
    if source not in _SOURCES[kind]:
        _SOURCES[kind].append(source)


def first(kind: str, *args: Any) -> Any:
    """The first registered ``kind`` source's answer that is not None, else None."""
    for source in _SOURCES[kind]:
        answer = source(*args)
        if answer is not None:
            return answer
    return None


def prometheus_provider(settings):
    """The metrics provider: the first registered source that answers, else
    ``settings.prometheus_url`` (``PADDLE_CANARY_PROMETHEUS_URL``)."""
    from paddle_canary.analysis.provider import PrometheusProvider
    return first("prometheus", settings) or PrometheusProvider(settings.prometheus_url)
