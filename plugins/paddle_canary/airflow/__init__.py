"""The Airflow side of paddle-canary: operators, triggers, notifiers. Importing it registers
the Airflow Connection as the first source of Prometheus settings (see connections)."""

from paddle_canary.airflow.connections import prometheus_from_connection as _prometheus_source
from paddle_canary.settings_sources import register_prometheus_source as _register

_register(_prometheus_source)
