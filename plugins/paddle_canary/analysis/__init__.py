"""Canary analysis: metric providers that read Prometheus, and a judge whose verdicts stay
valid while it is polled (confidence sequences; see ``stats``).

    provider = PrometheusProvider.from_env()
    config = thresholds_for("risk-score", overrides={"latency_p95": {"max_ms": 50}})
    verdict = analyze(provider, "risk-score", "v1", "v2", config, start=t0)
    verdict.status            # "pass" | "fail" | "inconclusive"
    Verdict.from_json(verdict.to_json())
"""

from paddle_canary.analysis import spending
from paddle_canary.analysis.analyze import analyze, thresholds_for
from paddle_canary.analysis.config import GateConfig, ThresholdError
from paddle_canary.analysis.counts import NoData, WindowCounts
from paddle_canary.analysis.judge import judge
from paddle_canary.analysis.provider import MetricsProvider, PrometheusProvider, QueryError
from paddle_canary.analysis.verdict import FAIL, INCONCLUSIVE, PASS, Check, GateResult, Verdict

__all__ = [
    "FAIL", "INCONCLUSIVE", "PASS", "Check", "GateConfig", "GateResult", "MetricsProvider",
    "NoData", "PrometheusProvider", "QueryError", "ThresholdError", "Verdict", "WindowCounts",
    "analyze", "judge", "spending", "thresholds_for",
]
