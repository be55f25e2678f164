"""Settings the Airflow way: Prometheus from the Connection ``prometheus_default`` (with its
auth), the environment as the fallback. The Connection is given the way a deployment may give
it, as an ``AIRFLOW_CONN_*`` variable, and the provider's requests reach a real local HTTP
server (tests/notify_sinks.py's receiver), which records their headers."""

from __future__ import annotations

import base64
import json

import pytest

from paddle_canary.analysis.provider import QueryError
from paddle_canary.settings import Settings


@pytest.fixture
def settings(tmp_path, airflow_home):
    return Settings(home=tmp_path, registry_root=tmp_path, prometheus_url="http://127.0.0.1:9")


def test_without_the_connection_the_environment_url_is_used(settings, monkeypatch):
    import paddle_canary.airflow  # noqa: F401 - registers the Connection source
    from paddle_canary.settings_sources import prometheus_provider
    monkeypatch.delenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", raising=False)
    assert prometheus_provider(settings).url == "http://127.0.0.1:9"


def test_the_connection_wins_and_its_credentials_are_sent(settings, monkeypatch,
                                                          webhook_receiver):
    import paddle_canary.airflow  # noqa: F401
    from paddle_canary.settings_sources import prometheus_provider
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", json.dumps(
        {"conn_type": "http", "host": webhook_receiver.host, "port": webhook_receiver.port,
         "login": "scraper", "password": "s3cret-pw"}))
    provider = prometheus_provider(settings)
    assert provider.url == webhook_receiver.url
    # the receiver answers {}, not a Prometheus result: a QueryError (was a bare KeyError)
    with pytest.raises(QueryError, match="answered garbage"):
        provider.query("up")
    (request,) = webhook_receiver.wait_for(lambda r: r.path.startswith("/api/v1/query"))
    assert request.headers["authorization"] == \
        "Basic " + base64.b64encode(b"scraper:s3cret-pw").decode()


def test_a_bearer_token_in_the_extra_is_sent(settings, monkeypatch, webhook_receiver):
    import paddle_canary.airflow  # noqa: F401
    from paddle_canary.settings_sources import prometheus_provider
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", json.dumps(
        {"conn_type": "http", "host": f"http://{webhook_receiver.host}",
         "port": webhook_receiver.port, "extra": {"bearer_token": "tok-123456"}}))
    with pytest.raises(QueryError):
        prometheus_provider(settings).query("up")
    (request,) = webhook_receiver.wait_for()
    assert request.headers["authorization"] == "Bearer tok-123456"
