"""A ready fake-backed Kubernetes + Istio stack for tests: :func:`fake_cluster`.

The release controller's tests (runtime=kubernetes, router=istio) build their runtime and
router here; both talk to one :class:`FakeKube`, so what the runtime deploys and what the
router routes can be asserted on the same stored objects.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fakes.kube_api import FakeKube
from paddle_canary.kube.config import KubeSettings
from paddle_canary.runtime.kubernetes import KubernetesRuntime
from paddle_canary.traffic.istio import IstioRouter

NAMESPACE = "ml"
IMAGE = "registry.example.com/ml/{model}-serving:{version}"


@dataclasses.dataclass
class FakeCluster:
    kube: FakeKube
    router: IstioRouter
    runtime: KubernetesRuntime
    settings: KubeSettings


def fake_cluster(registry_root: Path | str | None = None, *, namespace: str = NAMESPACE,
                 sticky: bool = True, deploy_timeout_s: float = 5.0,
                 kube: FakeKube | None = None) -> FakeCluster:
    """An :class:`IstioRouter` and a :class:`KubernetesRuntime` on one fake API server.

    ``registry_root``: the registry whose ``model.yaml`` gives replicas/GPUs (default: none,
    one replica without GPU). Deploys poll every 10 ms and give up after ``deploy_timeout_s``.
    """
    kube = kube or FakeKube()
    settings = KubeSettings(namespace=namespace, namespace_given=True, image=IMAGE,
                            deploy_timeout_s=deploy_timeout_s, istio_sticky=sticky)
    registry = None
    if registry_root is not None:
        from paddle_canary.registry import Registry
        registry = Registry(registry_root)
    runtime = KubernetesRuntime.from_settings(settings, registry, apis=kube.apis(), poll_s=0.01)
    router = IstioRouter.from_settings(settings, api=kube.custom)
    return FakeCluster(kube=kube, router=router, runtime=runtime, settings=settings)


@pytest.fixture
def kube_cluster(monkeypatch, registry_root):
    """A fake cluster behind the *default* clients: ``paddle_canary.kube.api.connect`` answers
    with the fake's APIs and the settings come from the environment, so code that builds its
    runtime and router from settings (the factories) gets them without being told about the
    fake. Yields the :class:`FakeCluster` (its ``router``/``runtime`` are built the same way).

    Use from another test area: ``from fakes.cluster import kube_cluster  # noqa: F401`` in its
    conftest.py (the session fixture ``registry_root`` comes from tests/conftest.py).
    """
    from paddle_canary.kube import api as kube_api
    from paddle_canary.registry import Registry

    kube = FakeKube()
    for key, value in {"PADDLE_CANARY_K8S_NAMESPACE": NAMESPACE, "PADDLE_CANARY_K8S_IMAGE": IMAGE,
                       "PADDLE_CANARY_K8S_DEPLOY_TIMEOUT_S": "5",
                       "PADDLE_CANARY_ISTIO_MODE": "sticky"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(kube_api, "connect", lambda error, conn_id=None: kube.apis())
    settings = KubeSettings.from_env()
    yield FakeCluster(kube=kube, router=IstioRouter.from_settings(settings),
                      runtime=KubernetesRuntime.from_settings(settings, Registry(registry_root),
                                                              poll_s=0.01),
                      settings=settings)
