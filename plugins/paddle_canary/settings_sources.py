"""Where settings come from besides the environment: sources registered at import time.

Outside Airflow (the CLI, the local stack, tests) the environment is the only source
(:class:`Settings`). Inside Airflow, ``paddle_canary.airflow`` registers a source that reads
the Airflow Connection ``prometheus_default`` first, so a deployment configures Prometheus the
Airflow way; the environment stays the fallback. Plain Python: no Airflow import here.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

#: Each takes the Settings and returns a PrometheusProvider, or None to let the next one answer.
_PROMETHEUS_SOURCES: list[Callable[[Any], Any]] = []


def register_prometheus_source(source: Callable[[Any], Any]) -> None:
    if source not in _PROMETHEUS_SOURCES:
        _PROMETHEUS_SOURCES.append(source)


def prometheus_provider(settings):
    """The metrics provider: the first registered source that answers, else
    ``settings.prometheus_url`` (``PADDLE_CANARY_PROMETHEUS_URL``)."""
    from paddle_canary.analysis.provider import PrometheusProvider
    for source in _PROMETHEUS_SOURCES:
        provider = source(settings)
        if provider is not None:
            return provider
    return PrometheusProvider(settings.prometheus_url)
