"""The URL a version is reached at by name on a user network is a valid host name, whatever
made the container (no engine: the container as the Docker API describes it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from paddle_canary.runtime.docker import DockerRuntime
from paddle_canary.traffic.nginx_config import backend_address

CID = "4f6c2a9b8e1d" + "0" * 52


def container(name: str, aliases: list[str] | None) -> SimpleNamespace:
    labels = {"io.paddle-canary.model": "risk-score", "io.paddle-canary.version": "v1"}
    networks = {"net": {"Aliases": aliases, "IPAddress": "172.18.0.5"}}
    return SimpleNamespace(name=name, id=CID, labels=labels,
                           attrs={"NetworkSettings": {"Networks": networks, "Ports": {}}})


@pytest.mark.parametrize("name, aliases, host", [
    ("pc-default-risk-score-v1", None, "pc-default-risk-score-v1"),   # the runtime's own
    # docker-compose v1's `stable` service: <project>_<service>_1 and the alias <service>
    ("pct463981d6_stable_1", ["stable", CID[:12]], "stable"),
    ("pct463981d6_stable_1", [CID[:12]], CID[:12]),                     # no usable alias
    ("pct463981d6_stable_1", None, CID[:12]),
])
def test_a_container_is_reached_by_a_name_the_gateway_accepts(name, aliases, host):
    rt = DockerRuntime(client=object(), network="net", address="name")
    endpoint = rt._endpoint(container(name, aliases))
    assert endpoint.url == f"http://{host}:8080"
    assert backend_address(endpoint.url) == f"{host}:8080"   # nginx's check takes it
