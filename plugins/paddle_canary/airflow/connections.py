"""Settings the Airflow way: Prometheus from the Connection ``prometheus_default`` (HTTP: host,
port, schema; login/password for basic auth; extra ``{"bearer_token": ...}``), registered as a
source of :mod:`paddle_canary.settings_sources` when this package is imported. Without the
Connection, ``PADDLE_CANARY_PROMETHEUS_URL`` is used as before."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

PROMETHEUS_CONN_ID = "prometheus_default"


def prometheus_from_connection(settings, conn_id: str = PROMETHEUS_CONN_ID):
    """A PrometheusProvider from the Connection ``conn_id``, or None when there is none."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from paddle_canary.analysis.provider import PrometheusProvider
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    provider = PrometheusProvider.from_connection(conn)
    log.info("Prometheus from Airflow Connection %s: %s", conn_id, provider.url)
    return provider
