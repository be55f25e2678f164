"""End to end: series that breach a shipped rule -> real Prometheus (rules evaluated every
second) -> real Alertmanager (1 s grouping) -> the local webhook receiver, firing and resolved.

The serving series come from the real ``ServingMetrics`` behind a stand-in /metrics; the
gateway's release series from :class:`ReleaseSeries` (the gateway does not export them yet).
"""

from __future__ import annotations

import time

import pytest
from ops_live import ReleaseSeries, ServingStandIn, add_static_target, api, start_prometheus

from paddle_canary import process
from paddle_canary.ops.alertmanager import AlertmanagerServer, render_config

pytestmark = pytest.mark.slow

MODEL = "risk-score"


def _alerts(received, status: str, alertname: str) -> list[dict]:
    """Alerts named ``alertname`` in webhook payloads of ``status``."""
    return [a for r in received if r.path == "/alerts" and r.json["status"] == status
            for a in r.json["alerts"] if a["labels"]["alertname"] == alertname]


@pytest.fixture
def stack(tmp_path, webhook_receiver):
    started = []
    try:
        am = AlertmanagerServer(tmp_path / "alertmanager", render_config(
            webhook_receiver.url_for("/alerts"), slack_url=webhook_receiver.url_for("/slack"),
            group_wait_s=1, group_interval_s=1, repeat_interval_s=3600)).start()
        started.append(am)
        release = ReleaseSeries().start()
        started.append(release)
        stable = ServingStandIn(MODEL, "v1").start()
        candidate = ServingStandIn(MODEL, "v2").start()
        started += [stable, candidate]
        prom = start_prometheus(tmp_path / "prometheus", alertmanager=am.address)
        started.append(prom)
        add_static_target(prom.targets_dir, "gateway", release.address)
        for s in (stable, candidate):
            prom.add_target(MODEL, s.version, [s.address])
        yield dict(am=am, prom=prom, release=release, stable=stable, candidate=candidate,
                   receiver=webhook_receiver)
    finally:
        for part in reversed(started):
            part.stop()


def _scraped(prom_url: str, query: str) -> bool:
    return bool(api(prom_url, "/api/v1/query", {"query": query})["result"])


def test_candidate_error_burst_reaches_the_webhook_and_slack(stack):
    release, stable, candidate = stack["release"], stack["stable"], stack["candidate"]
    receiver, prom = stack["receiver"], stack["prom"]
    release.set(MODEL, weight=5, since=time.time(), stable="v1", candidate="v2",
                step_seconds=3600)
    # counters at 0 scraped first, so the errors below are an increase inside the window
    process.wait_until(lambda: _scraped(prom.url, 'paddle_canary_requests_total{version="v2"}')
                       and _scraped(prom.url, 'paddle_canary_gateway_backend_info'), 20,
                       what="Prometheus to scrape the candidate and the gateway series")
    import numpy as np

    for _ in range(50):
        stable.metrics.scored(np.array([0.2]), ["approve"], 0.002)
    for _ in range(5):
        candidate.metrics.scored(np.array([0.2]), ["approve"], 0.002)
    for _ in range(10):
        candidate.metrics.failed(0.002)

    receiver.wait_for(lambda r: _alerts([r], "firing", "PaddleCanaryCandidateErrorBurst"),
                      timeout=45)
    (alert,) = _alerts(receiver.received, "firing", "PaddleCanaryCandidateErrorBurst")[:1]
    assert alert["labels"]["model"] == MODEL
    assert (alert["labels"]["version"], alert["labels"]["severity"], alert["labels"]["gate"],
            alert["labels"]["check"]) == ("v2", "critical", "errors", "burst")
    assert alert["annotations"]["summary"].startswith("risk-score candidate v2: burst of ")
    # a link to the rule's query (host: Prometheus' --web.external-url, not set here)
    assert "/graph?g0.expr=paddle_canary" in alert["generatorURL"]
    # the same notification in the Slack-compatible format, on its own URL
    (slack,) = receiver.wait_for(
        lambda r: r.path == "/slack" and "PaddleCanaryCandidateErrorBurst"
        in r.json["attachments"][0]["title"], timeout=15)[:1]
    attachment = slack.json["attachments"][0]
    assert attachment["title"] == "[FIRING] PaddleCanaryCandidateErrorBurst risk-score"
    assert "risk-score candidate v2: burst of " in attachment["text"]
    # the stable version, healthy, raised nothing
    assert not [a for r in receiver.received if r.path == "/alerts"
                for a in r.json["alerts"] if a["labels"].get("version") == "v1"]


def test_stuck_release_fires_then_resolves_when_the_weight_moves(stack):
    release, receiver, prom = stack["release"], stack["receiver"], stack["prom"]
    # weight 25 held for 4000 s of a plan that holds it 600 s (+ 300 s grace)
    release.set(MODEL, weight=25, since=time.time() - 4000, stable="v1", candidate="v2",
                step_seconds=600)
    receiver.wait_for(lambda r: _alerts([r], "firing", "PaddleCanaryReleaseStuck"), timeout=45)
    alert = _alerts(receiver.received, "firing", "PaddleCanaryReleaseStuck")[0]
    assert alert["labels"]["model"] == MODEL
    # held 4000 s (1h 6m 40s) plus the seconds until the alert fired
    assert alert["annotations"]["summary"].startswith(
        "risk-score: release held at weight 25 % for 1h ")
    # the release moves on: the alert resolves and the receiver is told
    release.set(MODEL, weight=35, since=time.time(), stable="v1", candidate="v2",
                step_seconds=600)
    receiver.wait_for(lambda r: _alerts([r], "resolved", "PaddleCanaryReleaseStuck"),
                      timeout=45)
    assert not api(prom.url, "/api/v1/alerts")["alerts"] or all(
        a["labels"]["alertname"] != "PaddleCanaryReleaseStuck"
        for a in api(prom.url, "/api/v1/alerts")["alerts"])
