"""Every query of the dashboard against a real Prometheus scraping two real `paddle-canary
serve` processes (risk-score v1 and v2) under traffic: each parses, and answers with the
series and values its panel expects. Grafana itself cannot run here, so its variables are
substituted the way Grafana does before it sends a query.

The gateway's release series (weight, roles, verdict times) come from the stand-in
:class:`ReleaseSeries`; the Alerts annotation reads the ALERTS series of the shipped rules.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time

import pytest
from ops_live import ReleaseSeries, add_static_target, api, start_prometheus

from paddle_canary import process, telemetry
from paddle_canary.ops import dashboard
from paddle_canary.registry import Registry
from paddle_canary.runtime.local import ServeProcess

pytestmark = pytest.mark.slow

MODEL = "risk-score"
VERSIONS = ("v1", "v2")
RATE_INTERVAL = "10s"  # Grafana: max(4 x scrape interval, step + scrape interval)


def grafana_expr(expr: str, version: str | None = None) -> str:
    """``expr`` with Grafana's variables as it substitutes them: a multi-value ``$version``
    (All) becomes an alternation, a repeated panel's ``$version`` the panel's version."""
    out = (expr.replace("$__rate_interval", RATE_INTERVAL)
           .replace("$version", version or "(" + "|".join(VERSIONS) + ")"))
    assert "$" not in out, out
    return out


class Traffic:
    """Batches of reference rows sent to both versions from a thread, until stopped."""

    def __init__(self, ports: list[int]) -> None:
        rows = Registry().card(MODEL, "v1").reference_inputs()
        self.bodies = [json.dumps({"user_id": f"user-{i}", "instances":
                                   rows[i % len(rows): i % len(rows) + 20].tolist()}).encode()
                       for i in range(0, 200, 20)]
        self.ports = ports
        self.stop_event = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in self.ports]
        i = 0
        while not self.stop_event.is_set():
            conn = conns[i % len(conns)]
            try:
                conn.request("POST", "/predict/batch", self.bodies[i % len(self.bodies)],
                             {"Content-Type": "application/json"})
                conn.getresponse().read()
                self.sent += 1
            except (OSError, http.client.HTTPException):
                conn.close()
            i += 1
            self.stop_event.wait(0.02)
        for c in conns:
            c.close()

    def __enter__(self) -> "Traffic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(15)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Prometheus, the release stand-in and v1/v2 serving, with traffic and a weight change
    behind them; yields (prometheus url, start, end, verdict times)."""
    tmp = tmp_path_factory.mktemp("dashboard")
    started: list = []
    try:
        release = ReleaseSeries().start()
        started.append(release)
        serving = [ServeProcess(MODEL, v, tmp, registry_root=Registry().root)
                   for v in VERSIONS]
        started += serving
        prom = start_prometheus(tmp / "prometheus")
        started.append(prom)
        for s in serving:
            s.wait_ready()
            prom.add_target(MODEL, s.version, [s.address])
        add_static_target(prom.targets_dir, "gateway", release.address)
        t0 = time.time()
        # held far longer than planned, so the shipped rules raise PaddleCanaryReleaseStuck
        release.set(MODEL, weight=5, since=t0 - 5000, stable="v1", candidate="v2",
                    step_seconds=600)
        release.verdict(MODEL, "v2", 5, "pass", at=t0 - 30)

        def increased(version: str) -> bool:
            q = (f'increase({telemetry.REQUESTS}{{model="{MODEL}",version="{version}",'
                 f'outcome="ok"}}[{RATE_INTERVAL}])')
            result = api(prom.url, "/api/v1/query", {"query": q})["result"]
            return bool(result) and float(result[0]["value"][1]) > 0

        with Traffic([s.port for s in serving]):
            process.wait_until(lambda: all(increased(v) for v in VERSIONS), 60,
                               what="Prometheus to see traffic on both versions")
            release.set(MODEL, weight=25, since=t0 - 4000, stable="v1", candidate="v2",
                        step_seconds=600)
            release.verdict(MODEL, "v2", 25, "inconclusive", at=time.time())
            process.wait_until(
                lambda: api(prom.url, "/api/v1/query", {
                    "query": f'max({dashboard.series.GATEWAY_WEIGHT}{{model="{MODEL}"}}) == 25'
                })["result"], 20, what="Prometheus to scrape weight 25")
            process.wait_until(
                lambda: api(prom.url, "/api/v1/query", {
                    "query": f'ALERTS{{model="{MODEL}",alertstate="firing"}}'})["result"],
                20, what="the stuck-release alert to fire")
        yield prom.url, t0, time.time(), release
    finally:
        for part in reversed(started):
            part.stop()


def query_range(url: str, expr: str, start: float, end: float) -> list[dict]:
    """A 1 s step range query whose last point is ``end`` itself (what was seen by then)."""
    start = end - math.ceil(end - start)
    return api(url, "/api/v1/query_range",
               {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"})[
        "result"]


def finite(result: list[dict]) -> list[float]:
    return [float(v) for s in result for _, v in s["values"] if math.isfinite(float(v))]


def by_version(result: list[dict]) -> dict[str, list[float]]:
    assert all(set(s["metric"]) == {"version"} for s in result), [s["metric"] for s in result]
    return {s["metric"]["version"]: [float(v) for _, v in s["values"]] for s in result}


def _panel(board: dict, title: str) -> dict:
    return next(p for p in board["panels"] if p["title"] == title)


def test_every_query_parses_and_answers(live):
    url, start, end, _ = live
    board = dashboard.render(MODEL)
    for where, q in dashboard.queries(board):
        if where.startswith("variable"):
            continue  # label_values() is Grafana's, not PromQL: see the variable test
        result = query_range(url, grafana_expr(q["expr"], version="v1"), start, end)
        assert result, f"{where}: no data"


def test_weight_panel_follows_the_gateway(live):
    url, start, end, _ = live
    (target,) = _panel(dashboard.render(MODEL), "Candidate weight")["targets"]
    (series,) = query_range(url, grafana_expr(target["expr"]), start, end)
    assert series["metric"] == {}
    values = [float(v) for _, v in series["values"]]
    assert set(values) == {5.0, 25.0} and values[-1] == 25.0


@pytest.mark.parametrize("title,low,high", [
    ("Requests per version", 0.0, 1e6),
    ("P95 latency per version", 0.0, 2.5),
    ("Rejection rate per version", 0.0, 1.0),
    ("Error rate per version", 0.0, 0.0),
    ("Score quantiles per version", 0.0, 1.0),
])
def test_per_version_panels_have_one_series_per_version(live, title, low, high):
    url, start, end, _ = live
    for target in _panel(dashboard.render(MODEL), title)["targets"]:
        result = query_range(url, grafana_expr(target["expr"]), start, end)
        per = by_version(result)
        assert sorted(per) == list(VERSIONS), (title, target["refId"])
        for version, values in per.items():
            vals = [v for v in values if math.isfinite(v)]
            assert vals, (title, version)
            assert all(low <= v <= high for v in vals), (title, version, vals)
    if title == "Requests per version":
        assert all(max(v) > 0 for v in per.values())


def test_score_heatmap_has_every_bucket_for_its_version(live):
    url, start, end, _ = live
    panel = _panel(dashboard.render(MODEL), "Score distribution: $version")
    assert panel["repeat"] == "version"
    (target,) = panel["targets"]
    assert target["format"] == "heatmap"
    want = {float(e) for e in telemetry.SCORE_BUCKETS} | {math.inf}
    for version in VERSIONS:
        result = query_range(url, grafana_expr(target["expr"], version), start, end)
        assert all(set(s["metric"]) == {"le"} for s in result)
        les = {s["metric"]["le"] for s in result}
        assert {float(x) for x in les} == want, version  # float("+Inf") is inf
        inf = next(s for s in result if s["metric"]["le"] == "+Inf")
        assert max(finite([inf])) > 0  # scored rows per second reached the top bucket


def test_verdict_annotations_sit_at_the_verdict_times(live):
    url, start, end, release = live
    ann = next(a for a in dashboard.render(MODEL)["annotations"]["list"]
               if a["name"] == "Verdicts")
    assert ann["useValueForTime"] is True
    result = query_range(url, grafana_expr(ann["expr"]), start, end)
    got = {(s["metric"]["version"], s["metric"]["weight"], s["metric"]["status"]):
           {float(v) for _, v in s["values"]} for s in result}
    want = {(m_v[1], m_v[2], m_v[3]): at * 1000 for m_v, at in release._verdicts.items()}
    assert set(got) == set(want)
    for key, values in got.items():
        (value,) = values  # one time per series: Grafana draws one annotation
        assert value == pytest.approx(want[key], abs=1.0)


def test_alert_annotations_show_the_firing_rules(live):
    url, start, end, _ = live
    ann = next(a for a in dashboard.render(MODEL)["annotations"]["list"] if a["name"] == "Alerts")
    result = query_range(url, grafana_expr(ann["expr"]), start, end)
    assert {s["metric"]["alertname"] for s in result} == {"PaddleCanaryReleaseStuck"}
    assert all(s["metric"]["severity"] == "warning" for s in result)


def test_version_variable_lists_the_models_versions(live):
    url, _, _, _ = live
    (var,) = [v for v in dashboard.render(MODEL)["templating"]["list"] if v["name"] == "version"]
    # Grafana runs label_values(SELECTOR, version) as the label-values API with a match[]
    selector = var["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
    values = api(url, "/api/v1/label/version/values", {"match[]": selector})
    assert values == list(VERSIONS)
