"""The Airflow side of paddle-canary: operators, triggers, notifiers. Importing it registers
Airflow's Variables and Connections as the first sources of settings (see connections)."""

from paddle_canary import settings_sources as _sources
from paddle_canary.airflow import connections as _connections

_sources.register("prometheus", _connections.prometheus_from_connection)
_sources.register("registry", _connections.registry_from_variable)
_sources.register("kubernetes", _connections.kube_client_from_connection)
_sources.register("image_registry", _connections.image_registry_from_connection)
