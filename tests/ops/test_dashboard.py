"""The Grafana dashboard JSON: shipped per model, importable as it is, one query per panel
aimed at the model's series. (Its queries run against a real Prometheus in
test_dashboard_live.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paddle_canary.analysis.config import GateConfig
from paddle_canary.ops import dashboard
from paddle_canary.registry import RegistryError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_dashboards_are_the_rendering_of_the_registry():
    boards = dashboard.render_registry(REPO / "model_registry")
    assert sorted(p.stem for p in dashboard.DASHBOARD_DIR.glob("*.json")) == sorted(boards)
    for model, board in boards.items():
        path = dashboard.DASHBOARD_DIR / f"{model}.json"
        assert path.read_text() == dashboard.to_json(board), (
            f"{path} is stale: run python -m paddle_canary.ops.dashboard -o images/grafana")


def test_dashboard_has_the_issue_panels_and_annotations():
    board = json.loads((dashboard.DASHBOARD_DIR / "risk-score.json").read_text())
    titles = [p["title"] for p in board["panels"]]
    assert titles == ["Candidate weight", "Requests per version", "P95 latency per version",
                      "Rejection rate per version", "Error rate per version",
                      "Score quantiles per version", "Score distribution: $version"]
    assert [a["name"] for a in board["annotations"]["list"]] == [
        "Annotations & Alerts", "Verdicts", "Alerts"]
    assert board["uid"] == "paddle-canary-risk-score"
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for p in board["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24


def test_every_query_is_for_the_model_and_goes_to_the_chosen_prometheus():
    board = dashboard.render("risk-score")
    for where, q in dashboard.queries(board):
        assert 'model="risk-score"' in q["expr"], where
    for p in board["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(t["datasource"] == p["datasource"] for t in p["targets"])
    (ds,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert (ds["name"], ds["query"]) == ("datasource", "prometheus")


def test_p95_panel_draws_the_models_latency_limit():
    board = dashboard.render("risk-score", GateConfig.from_dict({"latency_p95": {"max_ms": 50}}))
    (p95,) = [p for p in board["panels"] if p["title"] == "P95 latency per version"]
    steps = p95["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": 0.05}
    assert "50 ms" in p95["description"]


def test_uid_fits_grafana_for_long_model_names():
    long_name = "m" * 63
    assert len(dashboard.uid(long_name)) <= 40
    assert dashboard.uid(long_name) != dashboard.uid("m" * 62)
    with pytest.raises(RegistryError):
        dashboard.render('risk"} or vector(1) #')


def test_cli_writes_one_file_per_model(tmp_path, capsys):
    assert dashboard.main(["-o", str(tmp_path)]) == 0
    assert (tmp_path / "risk-score.json").read_text() == (
        dashboard.DASHBOARD_DIR / "risk-score.json").read_text()
    assert dashboard.main(["risk-score"]) == 0
    assert json.loads(capsys.readouterr().out)["uid"] == "paddle-canary-risk-score"
    with pytest.raises(SystemExit):
        dashboard.main(["no-such-model"])
