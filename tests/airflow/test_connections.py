"""Settings the Airflow way, the environment as the fallback: Prometheus from the Connection
``prometheus_default`` (with its auth), the model registry from the Variable
``paddle_canary_registry``, Kubernetes from the provider's Connection ``kubernetes_default``,
the image registry and its login from ``docker_default``. They are given the way a deployment
may give them, as ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` variables (Airflow's own secrets
lookup), and the requests reach real local servers: an HTTP receiver that records headers
(tests/notify_sinks.py) standing in for Prometheus and the Kubernetes API server, and Debian's
docker-registry with basic auth."""

from __future__ import annotations

import base64
import contextlib
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


# --- the model registry: the Variable paddle_canary_registry ---------------------------------

def test_the_registry_variable_wins_over_the_environment(tmp_path, monkeypatch, airflow_home):
    import paddle_canary.airflow  # noqa: F401 - registers the Variable source
    elsewhere = tmp_path / "registry-from-variable"
    elsewhere.mkdir()
    monkeypatch.setenv("PADDLE_CANARY_REGISTRY", str(tmp_path / "from-env"))
    monkeypatch.delenv("AIRFLOW_VAR_PADDLE_CANARY_REGISTRY", raising=False)
    assert Settings.from_env().registry_root == tmp_path / "from-env"
    monkeypatch.setenv("AIRFLOW_VAR_PADDLE_CANARY_REGISTRY", str(elsewhere))
    assert Settings.from_env().registry_root == elsewhere


@pytest.mark.parametrize("value", ["model_registry", "/no/such/registry"])
def test_a_registry_variable_that_is_no_absolute_directory_is_refused(value, monkeypatch,
                                                                       airflow_home):
    import paddle_canary.airflow  # noqa: F401
    from paddle_canary.errors import UserError
    monkeypatch.setenv("AIRFLOW_VAR_PADDLE_CANARY_REGISTRY", value)
    with pytest.raises(UserError, match="Variable paddle_canary_registry is .* absolute path"):
        Settings.from_env()


# --- Kubernetes: the provider's Connection kubernetes_default --------------------------------

def _kubeconfig(server: str, token: str) -> dict:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "c", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}]}


def test_the_kubernetes_runtime_and_router_call_the_connections_cluster(monkeypatch, tmp_path,
                                                                        webhook_receiver,
                                                                        airflow_home):
    """The runtime and the Istio router reach the API server of the Connection's kubeconfig
    with its token (the receiver answers {}: whatever they make of that, the request went
    there), not the pod's service account or ~/.kube/config."""
    import paddle_canary.airflow  # noqa: F401
    from paddle_canary.kube.config import KubeSettings
    from paddle_canary.runtime.kubernetes import KubernetesRuntime
    from paddle_canary.traffic.istio import IstioRouter
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config to fall back on
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(
        {"conn_type": "kubernetes",
         "extra": {"kube_config": _kubeconfig(webhook_receiver.url, "k8s-tok-42")}}))
    settings = KubeSettings.from_env({"PADDLE_CANARY_K8S_NAMESPACE": "ml"})
    runtime = KubernetesRuntime.from_settings(settings)
    with contextlib.suppress(Exception):  # {} is no Deployment: the request is what counts
        runtime.probe("risk-score", "v1")
    (request,) = webhook_receiver.wait_for(lambda r: "/namespaces/ml/" in r.path)
    assert request.headers["authorization"] == "Bearer k8s-tok-42"
    assert request.path.startswith("/apis/apps/v1/namespaces/ml/deployments/")

    with contextlib.suppress(Exception):
        IstioRouter.from_settings(settings).live("risk-score")
    webhook_receiver.wait_for(lambda r: r.path.startswith("/apis/networking.istio.io/"))


def test_a_connection_without_usable_credentials_is_named(monkeypatch, airflow_home):
    import paddle_canary.airflow  # noqa: F401
    from paddle_canary.runtime.base import DeployError
    from paddle_canary.runtime.kubernetes import KubernetesRuntime
    monkeypatch.setenv("AIRFLOW_CONN_K8S_PROD", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": "/no/such/kubeconfig"}}))
    runtime = KubernetesRuntime("ml", conn_id="k8s_prod")
    with pytest.raises(DeployError, match="Connection k8s_prod gives no usable Kubernetes"):
        runtime.apis  # noqa: B018 - connects on first use


# --- the image registry: the Docker provider's Connection docker_default -------------------

@pytest.mark.slow
def test_docker_default_gives_the_image_registry_and_its_login(
        monkeypatch, airflow_home, private_image_registry, serving_images, docker_client,
        serving_base, registry_root):
    """Built images are pushed to the Connection's registry with its login, and the Docker
    runtime pulls them from there with it; without the login the registry refuses the push."""
    import urllib.request

    import paddle_canary.airflow  # noqa: F401
    from docker_fixtures import MODEL, REGISTRY_LOGIN
    from paddle_canary.images.build import ImageError, build_serving_image
    from paddle_canary.registry import Registry
    from paddle_canary.runtime.docker import DockerRuntime
    registry, (user, password) = private_image_registry, REGISTRY_LOGIN
    monkeypatch.delenv("PADDLE_CANARY_IMAGE_REGISTRY", raising=False)
    build = dict(base=serving_base, client=docker_client, log=lambda line: None)

    host, port = registry.split(":")
    monkeypatch.setenv("AIRFLOW_CONN_DOCKER_DEFAULT", json.dumps(
        {"conn_type": "docker", "host": host, "port": int(port)}))  # no login
    with pytest.raises(ImageError, match=rf"pushing {registry}/{MODEL}-serving:v1 failed"):
        build_serving_image(registry_root, MODEL, "v1", **build)

    monkeypatch.setenv("AIRFLOW_CONN_DOCKER_DEFAULT", json.dumps(
        {"conn_type": "docker", "host": registry, "login": user, "password": password}))
    ref = build_serving_image(registry_root, MODEL, "v1", **build)
    assert ref.pushed == f"{registry}/{MODEL}-serving:v1" and ref.digest.startswith("sha256:")
    tags = urllib.request.Request(f"http://{registry}/v2/{MODEL}-serving/tags/list", headers={
        "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()})
    with urllib.request.urlopen(tags, timeout=10) as resp:
        assert json.load(resp)["tags"] == ["v1"]

    runtime = DockerRuntime.from_env({}, registry_root=registry_root)
    assert (runtime.image_registry, runtime.registry_auth["username"]) == (registry, user)
    runtime._client = docker_client
    docker_client.images.remove(ref.pushed)  # the engine has it only in the registry now
    card = Registry(registry_root).card(MODEL, "v1")
    assert runtime._checked_image(MODEL, "v1", card) == ref.pushed
    assert docker_client.images.get(ref.pushed).id == ref.id
