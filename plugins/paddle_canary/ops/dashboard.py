"""A Grafana dashboard per model: weight over time, traffic, P95, rejection and error rate per
version, score distribution per version, verdicts and alerts as annotations.

Rendered as Grafana's dashboard JSON (schema 39, Grafana 10.x/11.x) for one model; queries go to
a Prometheus data source chosen by the ``datasource`` variable, so the file imports as it is
(UI, HTTP API or file provisioning). The committed ``images/grafana/<model>.json`` files are
this module's rendering of ``model_registry/`` (a test fails when one is stale)::

    python -m paddle_canary.ops.dashboard --registry model_registry -o images/grafana/

Queries use Grafana's ``$__rate_interval`` and the ``version`` variable (all versions the model
has exported, multi-select). :func:`queries` lists every query with its panel, for the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from paddle_canary import telemetry
from paddle_canary.analysis.config import GateConfig
from paddle_canary.ops import series
from paddle_canary.settings import REPO

DASHBOARD_DIR = REPO / "images" / "grafana"
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
SCORE_QUANTILES = (0.1, 0.5, 0.9)


def uid(model: str) -> str:
    """A stable dashboard UID (Grafana allows 40 characters; model names have up to 63)."""
    full = f"paddle-canary-{model}"
    if len(full) <= 40:
        return full
    return f"paddle-canary-{hashlib.sha256(model.encode()).hexdigest()[:26]}"


def _target(expr: str, legend: str, ref: str = "A", **extra: Any) -> dict:
    return {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend,
            "range": True, "instant": False, "editorMode": "code", **extra}


def _timeseries(title: str, targets: list[dict], unit: str, grid: tuple[int, int, int, int],
                description: str, *, min_: float | None = 0, max_: float | None = None,
                thresholds: list[dict] | None = None, step: bool = False) -> dict:
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {"drawStyle": "line", "lineWidth": 2, "fillOpacity": 0, "showPoints": "never",
                   "lineInterpolation": "stepAfter" if step else "linear", "spanNulls": False,
                   "thresholdsStyle": {"mode": "line" if thresholds else "off"}},
        "thresholds": {"mode": "absolute",
                       "steps": [{"color": "green", "value": None}, *(thresholds or [])]},
    }
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    x, y, w, h = grid
    return {"type": "timeseries", "title": title, "description": description, "datasource": DS,
            "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "none"}}}


def render(model: str, gates: GateConfig | None = None) -> dict:
    """The dashboard of ``model``; ``gates`` (its model.yaml's) draw the P95 limit line."""
    from paddle_canary.registry import check_model_name

    check_model_name(model)
    gates = gates or GateConfig.from_dict()
    m = f'model="{model}"'
    v = 'version=~"$version"'
    rate = "[$__rate_interval]"
    served = (f'sum by (version) (rate({telemetry.REQUESTS}{{{m}, {v}, '
              f'outcome!="invalid_input"}}{rate}))')
    panels = [
        _timeseries(
            "Candidate weight", [_target(f"max({series.GATEWAY_WEIGHT}{{{m}}})", "weight")],
            "percent", (0, 0, 12, 8),
            "Share of users the gateway sends to the candidate (live, read from the gateway).",
            max_=100, step=True),
        _timeseries(
            "Requests per version", [_target(served, "{{version}}")], "reqps", (12, 0, 12, 8),
            "Answerable /predict requests per second (invalid input excluded)."),
        _timeseries(
            "P95 latency per version",
            [_target(f"histogram_quantile(0.95, sum by (version, le) "
                     f"(rate({telemetry.REQUEST_LATENCY}_bucket{{{m}, {v}}}{rate})))",
                     "{{version}}")],
            "s", (0, 8, 12, 8),
            f"P95 of /predict latency; the line is the latency gate's max_ms "
            f"({gates.latency_p95.max_ms:g} ms).",
            thresholds=[{"color": "red", "value": gates.latency_p95.max_ms / 1000}]),
        _timeseries(
            "Rejection rate per version",
            [_target(f'sum by (version) (rate({telemetry.DECISIONS}{{{m}, {v}, '
                     f'decision="reject"}}{rate}))\n  / sum by (version) '
                     f'(rate({telemetry.DECISIONS}{{{m}, {v}}}{rate}))', "{{version}}")],
            "percentunit", (12, 8, 12, 8),
            f"Share of scored rows decided 'reject'. The rejection-rate gate allows "
            f"{gates.rejection_rate.max_abs_diff_pp:g} pp between candidate and stable.",
            max_=1),
        _timeseries(
            "Error rate per version",
            [_target(f'sum by (version) (rate({telemetry.REQUESTS}{{{m}, {v}, '
                     f'outcome="error"}}{rate}))\n  / {served}', "{{version}}")],
            "percentunit", (0, 16, 12, 8),
            f"Requests the model or server failed, of the answerable ones. The errors gate "
            f"allows {gates.errors.max_abs_diff_pp:g} pp between candidate and stable.",
            max_=1),
        _timeseries(
            "Score quantiles per version",
            [_target(f"histogram_quantile({q:g}, sum by (version, le) "
                     f"(rate({telemetry.SCORE}_bucket{{{m}, {v}}}{rate})))",
                     f"{{{{version}}}} p{int(q * 100)}", ref=chr(ord("A") + i))
             for i, q in enumerate(SCORE_QUANTILES)],
            "none", (12, 16, 12, 8),
            "10th, 50th and 90th percentile of the scores each version returns.", max_=1),
        {"type": "heatmap", "title": "Score distribution: $version",
         "description": "Scores returned per 0.05-wide bucket over time (one panel per "
                        "version).",
         "datasource": DS, "repeat": "version", "repeatDirection": "h", "maxPerRow": 4,
         "gridPos": {"x": 0, "y": 24, "w": 12, "h": 8},
         "targets": [_target(f'sum by (le) (rate({telemetry.SCORE}_bucket{{{m}, '
                             f'version="$version"}}{rate}))', "{{le}}", format="heatmap")],
         "fieldConfig": {"defaults": {}, "overrides": []},
         "options": {"calculate": False, "cellGap": 1, "yAxis": {"axisPlacement": "left"},
                     "rowsFrame": {"layout": "le"},
                     "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                     "tooltip": {"mode": "single", "yHistogram": False},
                     "legend": {"show": True}}},
    ]
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    annotations = [
        {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
         "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
         "name": "Annotations & Alerts", "type": "dashboard"},
        {"name": "Verdicts", "datasource": DS, "enable": True, "iconColor": "purple",
         "expr": (f"max by (version, weight, status) "
                  f"({series.RELEASE_VERDICT_TIME}{{{m}}}) * 1000"),
         "step": "1m", "useValueForTime": True,
         "titleFormat": "{{status}} at {{weight}} %", "textFormat": "candidate {{version}}",
         "tagKeys": "status,version"},
        {"name": "Alerts", "datasource": DS, "enable": True, "iconColor": "red",
         "expr": f'max by (alertname, version, severity) (ALERTS{{{m}, alertstate="firing"}})',
         "step": "1m", "useValueForTime": False,
         "titleFormat": "{{alertname}}", "textFormat": "{{version}}",
         "tagKeys": "severity,version"},
    ]
    templating = [
        {"name": "datasource", "label": "Prometheus", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "options": []},
        {"name": "version", "label": "Version", "type": "query", "datasource": DS,
         "query": {"query": f"label_values({telemetry.MODEL_INFO}{{{m}}}, version)",
                   "refId": "versions"},
         "definition": f"label_values({telemetry.MODEL_INFO}{{{m}}}, version)",
         "multi": True, "includeAll": True, "current": {}, "refresh": 2, "sort": 3,
         "hide": 0, "options": []},
    ]
    return {
        "uid": uid(model), "title": f"paddle-canary: {model}",
        "description": f"Canary releases of {model} (rendered by paddle_canary.ops.dashboard).",
        "tags": ["paddle-canary", model], "editable": True, "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "timezone": "",
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "annotations": {"list": annotations},
        "templating": {"list": templating},
        "panels": panels,
    }


def queries(dashboard: dict) -> Iterator[tuple[str, dict]]:
    """``(where, query)`` for every PromQL query: panel targets, annotations, variables."""
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield f"panel {panel['title']!r} {target['refId']}", target
    for ann in dashboard["annotations"]["list"]:
        if "expr" in ann:
            yield f"annotation {ann['name']!r}", ann
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            yield f"variable {var['name']!r}", {"expr": var["definition"]}


def to_json(dashboard: dict) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=False) + "\n"


def render_registry(root: Path | str) -> dict[str, dict]:
    """``{model: dashboard}`` for every model in the registry at ``root``."""
    from paddle_canary.registry import Registry

    reg = Registry(root)
    return {m: render(m, GateConfig.from_dict(reg.model_defaults(m).get("gates")))
            for m in reg.models()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paddle_canary.ops.dashboard",
                                 description="Render a Grafana dashboard per model.")
    ap.add_argument("--registry", default=str(REPO / "model_registry"))
    ap.add_argument("-o", "--output-dir", help="write <model>.json here (default: stdout, "
                    "one model)")
    ap.add_argument("models", nargs="*", help="models (default: every model in the registry)")
    args = ap.parse_args(argv)
    boards = render_registry(args.registry)
    if args.models:
        unknown = sorted(set(args.models) - set(boards))
        if unknown:
            ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(boards)}")
        boards = {m: boards[m] for m in args.models}
    if not args.output_dir:
        if len(boards) != 1:
            ap.error("several models: give -o DIR or one model")
        sys.stdout.write(to_json(next(iter(boards.values()))))
        return 0
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for model, board in boards.items():
        tmp = out / f".{model}.json.tmp"
        tmp.write_text(to_json(board), encoding="utf-8")
        tmp.replace(out / f"{model}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
