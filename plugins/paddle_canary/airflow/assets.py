"""The Airflow asset a registration updates; its events schedule ``model_release``."""

from airflow.sdk import Asset

from paddle_canary.airflow_rest import REGISTERED_VERSIONS_URI

# One asset for the whole registry; each event's ``extra`` names {"model", "version"}.
REGISTERED_VERSIONS = Asset(name="paddle_canary_registered_versions", uri=REGISTERED_VERSIONS_URI)
