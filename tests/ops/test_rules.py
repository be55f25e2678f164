"""The shipped Prometheus rules: valid, unit-tested with promtool, and in step with the gates."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from paddle_canary.analysis.config import GateConfig
from paddle_canary.ops import rules

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROMTOOL_TESTS = sorted((HERE / "promtool").glob("*.test.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed (Debian: apt-get install prometheus; `make "
                    "os-deps` does it)")
    return exe


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_shipped_rules_pass_promtool_check(promtool):
    done = _run(promtool, "check", "rules", str(rules.RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_config_loads_the_shipped_rules(promtool):
    config = yaml.safe_load((REPO / "images/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.yml"]  # relative to prometheus.yml
    done = _run(promtool, "check", "config", str(REPO / "images/prometheus/prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rules/paddle-canary.yml" in done.stdout + done.stderr


@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(promtool, test_file):
    done = _run(promtool, "test", "rules", str(test_file))
    assert done.returncode == 0, done.stdout + done.stderr


def test_shipped_rules_are_the_rendering_of_the_registry():
    """Changing a model's gates (or the defaults) without re-rendering the rules fails here."""
    want = rules.to_yaml(rules.render(rules.registry_gates(REPO / "model_registry")))
    assert rules.RULES_FILE.read_text() == want, (
        "images/prometheus/rules/paddle-canary.yml is stale: run python -m "
        "paddle_canary.ops.rules -o images/prometheus/rules/paddle-canary.yml")


def test_default_thresholds_are_the_gates_defaults():
    defaults = GateConfig.from_dict()
    text = rules.RULES_FILE.read_text()
    group = next(g for g in yaml.safe_load(text)["groups"] if g["name"] == rules.DEFAULT_GROUP)
    by_name = {r["alert"]: r["expr"] for r in group["rules"]}
    assert f"> {defaults.latency_p95.max_ms / 1000:g}" in by_name[
        "PaddleCanaryCandidateLatencyP95High"]
    assert f"* {defaults.latency_p95.max_ratio:g} >" in by_name[
        "PaddleCanaryCandidateLatencyP95AboveStable"]
    assert f"> {defaults.errors.max_abs_diff_pp / 100:g}" in by_name[
        "PaddleCanaryCandidateErrorRateHigh"]
    assert f">= {defaults.errors.burst_min_errors}" in by_name["PaddleCanaryCandidateErrorBurst"]
    assert f"* 300 >= {defaults.min_samples}" in by_name["PaddleCanaryCandidateLatencyP95High"]


def _registry(root: Path, gates: dict[str, dict]) -> Path:
    for model, g in gates.items():
        (root / model).mkdir(parents=True)
        (root / model / "model.yaml").write_text(
            yaml.safe_dump({"model": model, "plan": {}, "gates": g}))
    return root


PER_MODEL_TEST = """
rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  - interval: 1m
    input_series:
{series}
    alert_rule_test:
      - eval_time: 10m
        alertname: PaddleCanaryCandidateLatencyP95High
        exp_alerts:
          - exp_labels: {{severity: warning, gate: latency_p95, check: p95_under_max_ms,
                          thresholds: fast, model: fast, version: v2}}
            exp_annotations:
              summary: "fast candidate v2: P95 64.25ms over 50 ms"
              description: "The candidate's P95 latency over the last 5m is above the latency gate's max_ms (50 ms; at least 200 requests)."
"""


def test_a_model_with_its_own_gates_gets_alerts_with_its_thresholds(promtool, tmp_path):
    """fast (max_ms 50) alerts on a 64 ms P95, default (max_ms 80) does not, and the
    default group does not alert on fast a second time."""
    gates = rules.registry_gates(_registry(tmp_path / "registry", {
        "fast": {"latency_p95": {"max_ms": 50}}, "default": {}}))
    rendered = rules.render(gates)
    names = [g["name"] for g in rendered["groups"]]
    assert names == ["paddle-canary-recording", rules.DEFAULT_GROUP,
                     f"{rules.DEFAULT_GROUP}-fast", "paddle-canary-serving"]
    (tmp_path / "rules.yml").write_text(rules.to_yaml(rendered))
    series = []
    for model in ("fast", "default"):
        for version, role in (("v1", "stable"), ("v2", "candidate")):
            series.append((f'paddle_canary_gateway_backend_info{{model="{model}",'
                           f'version="{version}",role="{role}",instance="gw"}}', "1x20"))
        # stable: everything 50-65 ms (P95 64.25 ms too: the ratio check stays quiet);
        # candidate the same
        for version in ("v1", "v2"):
            lab = f'model="{model}",version="{version}",instance="s-{version}"'
            series += [(f'paddle_canary_requests_total{{{lab},outcome="ok"}}', "0+300x20"),
                       (f'paddle_canary_request_duration_seconds_bucket{{{lab},le="0.05"}}',
                        "0x20"),
                       (f'paddle_canary_request_duration_seconds_bucket{{{lab},le="0.065"}}',
                        "0+300x20"),
                       (f'paddle_canary_request_duration_seconds_bucket{{{lab},le="+Inf"}}',
                        "0+300x20")]
    text = "\n".join(f"      - series: '{s}'\n        values: '{v}'" for s, v in series)
    test_file = tmp_path / "per-model.test.yml"
    test_file.write_text(PER_MODEL_TEST.format(series=text))
    done = _run(promtool, "test", "rules", str(test_file))
    assert done.returncode == 0, done.stdout + done.stderr


def test_models_with_default_gates_share_the_default_group():
    gates = {"a": GateConfig.from_dict(), "b": GateConfig.from_dict({"min_samples": 200})}
    rendered = rules.render(gates)
    assert [g["name"] for g in rendered["groups"]] == [
        "paddle-canary-recording", rules.DEFAULT_GROUP, "paddle-canary-serving"]
    exprs = [r["expr"] for r in rendered["groups"][1]["rules"]]
    assert not any("model!~" in e for e in exprs)
