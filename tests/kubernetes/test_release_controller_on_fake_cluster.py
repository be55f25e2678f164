"""A whole release driven by the release controller with runtime=kubernetes (the plan's field)
and router=istio (the settings), both built by the factories against the fake API server: the
controller names neither. No cluster can run on these machines; see README "Running on
Kubernetes" for what only a real cluster can show."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from doubles import CountsProvider
from paddle_canary.kube import names
from paddle_canary.release import controller
from paddle_canary.release import events as ev
from paddle_canary.settings import Settings
from paddle_canary.traffic.base import Backend, ModelRoute

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from analysis_helpers import counts  # noqa: E402

MODEL, NS = "risk-score", "ml"


@pytest.fixture
def settings(tmp_path, registry_root, monkeypatch):
    root = tmp_path / "registry"
    shutil.copytree(registry_root, root, ignore=shutil.ignore_patterns("release.lock", ".lock"))
    s = Settings(home=tmp_path / "home", registry_root=root,
                 prometheus_url="http://127.0.0.1:9", router="istio")
    for key, value in s.to_env().items():
        monkeypatch.setenv(key, value)
    return s


def start(settings, kube_cluster, provider):
    plan = controller.prepare({"model": MODEL, "version": "v2", "runtime": "kubernetes",
                               "steps": [5, 50, 100], "approvals_before": []},
                              run_id="k8s-run", settings=settings)
    release = controller.open_release(plan, settings, provider=provider)
    assert release.runtime.kind == "kubernetes" and release.router.kind == "istio"
    kube_cluster.runtime.deploy(MODEL, "v1")
    kube_cluster.router.apply(ModelRoute(MODEL, stable=Backend("v1")))
    return release


def test_a_release_on_kubernetes_with_istio_is_promoted(settings, kube_cluster):
    rng = np.random.default_rng(5)
    provider = CountsProvider({"v1": counts(rng, "v1", 60000), "v2": counts(rng, "v2", 60000)})
    release = start(settings, kube_cluster, provider)
    release.deploy()
    assert release.router.live(MODEL) == ModelRoute(MODEL, Backend("v1"), Backend("v2"))
    for step, weight in enumerate((5, 50, 100), 1):
        release.set_step_weight(step, weight)
        verdict = release.judge(since=0.0, step=step, weight=weight)
        assert verdict["gates"][0]["status"] == "pass" and verdict["status"] != "fail"
    release.promote()
    vs = kube_cluster.kube.get("virtualservices", NS, names.serving_app(MODEL))
    from paddle_canary.traffic.istio_objects import referenced_subsets
    assert referenced_subsets(vs) == {"v2"}
    assert release.registry.pointers(MODEL).stable == "v2"
    release.teardown()
    assert [e.version for e in release.runtime.endpoints(MODEL)] == ["v2"]
    assert release.finish("k8s-run")["outcome"] == "promoted"


def test_an_unready_candidate_on_kubernetes_is_rolled_back(settings, kube_cluster):
    release = start(settings, kube_cluster, CountsProvider())
    release.deploy()
    release.set_step_weight(1, 5)
    kube_cluster.kube.set_pods(MODEL, "v2", "crashloop")
    verdict = release.judge(since=0.0, step=1, weight=5)
    assert verdict["gates"][0]["status"] in ("fail", "inconclusive")
    with pytest.raises(controller.ReleaseFailed, match="refused"):
        release.set_step_weight(2, 50)
    release.record_failure("step_01.analyze", verdict["reason"])
    assert release.rollback()["incomplete"] == []
    assert release.router.live(MODEL) == ModelRoute(MODEL, Backend("v1"))
    assert release.runtime.probe(MODEL, "v2").state == "gone"
    assert release.registry.status(MODEL, "v2") == "rejected"
    assert ev.outcome(release.events()) == "rolled_back"
