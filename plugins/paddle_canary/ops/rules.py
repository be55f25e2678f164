"""Prometheus recording and alert rules, rendered from the gates' thresholds.

The alerts on a candidate (error rate, error burst, P95 over ``max_ms``, P95 over stable's)
use the thresholds the analysis gates use (:class:`~paddle_canary.analysis.config.GateConfig`):
the built-in defaults for every model, and a group of its own for each model whose
``model.yaml`` sets other values. The shipped file ``images/prometheus/rules/paddle-canary.yml``
is this module's rendering of ``model_registry/``; regenerate it after changing a model's
gates (a test fails until it matches)::

    python -m paddle_canary.ops.rules --registry model_registry \\
        -o images/prometheus/rules/paddle-canary.yml

Where a gate judges with confidence sequences over a step's window, an alert is a point
estimate over the last 5 minutes (1 minute for a burst) with at least ``min_samples`` requests:
it tells a person what the judge is likely to say, it does not judge. The release series
(role of each version, live weight, plan) are in :mod:`paddle_canary.ops.series`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Mapping

import yaml

from paddle_canary import telemetry
from paddle_canary.analysis.config import GateConfig
from paddle_canary.ops import series
from paddle_canary.settings import REPO

RULES_DIR = REPO / "images" / "prometheus" / "rules"
RULES_FILE = RULES_DIR / "paddle-canary.yml"

WINDOW = "5m"
WINDOW_S = 300
BURST_WINDOW = "1m"
# Time at a weight beyond the plan (step + window wait) before a release counts as stuck:
# covers the sensor's last poll, task scheduling and a missed scrape, not a person's answer.
STUCK_GRACE_S = 300

# Recorded series (level:metric:operations), per model and version.
SERVED_RATE = f"paddle_canary:requests_served:rate{WINDOW}"
ERROR_RATIO = f"paddle_canary:request_errors:ratio_rate{WINDOW}"
BURST_ERRORS = f"paddle_canary:request_errors:increase{BURST_WINDOW}"
BURST_RATIO = f"paddle_canary:request_errors:ratio_rate{BURST_WINDOW}"
P95 = f"paddle_canary:request_duration_seconds:p95_{WINDOW}"
REJECT_RATIO = f"paddle_canary:decisions_reject:ratio_rate{WINDOW}"
# The gateway's role of each version, without the scrape's instance/job labels.
ROLE_INFO = "paddle_canary:backend_role:info"
# Stable's figures per model (label model only; NaN from an idle window dropped).
STABLE_SERVED = f"paddle_canary:stable_requests_served:rate{WINDOW}"
STABLE_ERROR_RATIO = f"paddle_canary:stable_request_errors:ratio_rate{WINDOW}"
STABLE_BURST_RATIO = f"paddle_canary:stable_request_errors:ratio_rate{BURST_WINDOW}"
STABLE_P95 = f"paddle_canary:stable_request_duration_seconds:p95_{WINDOW}"
# Per model, while a release runs: how long it plans to hold the live weight.
WEIGHT_ALLOWANCE = "paddle_canary:release_weight_allowance:seconds"

DEFAULT_GROUP = "paddle-canary-candidate"

HEADER = """\
# Prometheus rules of paddle-canary. RENDERED, do not edit by hand:
#   python -m paddle_canary.ops.rules --registry model_registry -o {path}
# Thresholds: the gates' defaults (paddle_canary/analysis/config.py), and a group per model
# whose model.yaml sets other ones. Series: paddle_canary/telemetry.py (serving) and
# paddle_canary/ops/series.py (gateway and release). docs/alerts.md says what each alert means.
"""


def _served(window: str) -> str:
    return (f'sum by (model, version) (rate({telemetry.REQUESTS}'
            f'{{outcome!="invalid_input"}}[{window}]))')


def _errors_rate(window: str) -> str:
    return f'sum by (model, version) (rate({telemetry.REQUESTS}{{outcome="error"}}[{window}]))'


def recording_group() -> dict:
    """Per-version rates and P95, stable's per model, and what a release plans to hold."""
    role = series.GATEWAY_BACKEND_INFO
    step = f"max by (model) ({series.RELEASE_STEP_SECONDS})"
    return {"name": "paddle-canary-recording", "rules": [
        {"record": SERVED_RATE, "expr": _served(WINDOW)},
        {"record": ERROR_RATIO, "expr": f"{_errors_rate(WINDOW)}\n  / {_served(WINDOW)}"},
        {"record": BURST_ERRORS,
         "expr": (f'sum by (model, version) (increase({telemetry.REQUESTS}'
                  f'{{outcome="error"}}[{BURST_WINDOW}]))')},
        {"record": BURST_RATIO,
         "expr": f"{_errors_rate(BURST_WINDOW)}\n  / {_served(BURST_WINDOW)}"},
        {"record": P95,
         "expr": (f"histogram_quantile(0.95, sum by (model, version, le) "
                  f"(rate({telemetry.REQUEST_LATENCY}_bucket[{WINDOW}])))")},
        {"record": REJECT_RATIO,
         "expr": (f'sum by (model, version) (rate({telemetry.DECISIONS}{{decision="reject"}}'
                  f'[{WINDOW}]))\n  / sum by (model, version) '
                  f'(rate({telemetry.DECISIONS}[{WINDOW}]))')},
        {"record": ROLE_INFO,
         "expr": f"max by (model, version, role) ({role})"},
        *({"record": rec, "expr": (f"max by (model) ({src} and on (model, version) "
                                   f"{_role('stable')}) >= 0")}
          for rec, src in ((STABLE_SERVED, SERVED_RATE), (STABLE_ERROR_RATIO, ERROR_RATIO),
                           (STABLE_BURST_RATIO, BURST_RATIO), (STABLE_P95, P95))),
        {"record": WEIGHT_ALLOWANCE,
         "expr": (f"{step}\n  + (max by (model) ({series.RELEASE_WINDOW_WAIT}) "
                  f"or 0 * {step})")},
    ]}


def _sel(matcher: str, extra: str = "") -> str:
    parts = [p for p in (matcher, extra) if p]
    return "{" + ", ".join(parts) + "}" if parts else ""


def _role(role: str) -> str:
    return ROLE_INFO + '{role="' + role + '"}'


def candidate_alerts(gates: GateConfig, matcher: str = "", thresholds: str = "default"
                     ) -> list[dict]:
    """The gate alerts for the models ``matcher`` selects (e.g. ``model="m"``; "" = all).
    ``thresholds`` (a label) names whose thresholds they apply, which also keeps the rules of
    two groups apart (promtool refuses identical name + labels in one file)."""
    s = _sel(matcher)
    n = gates.min_samples
    lat, err = gates.latency_p95, gates.errors
    max_s = lat.max_ms / 1000
    delta_s = lat.min_delta_ms / 1000
    diff = err.max_abs_diff_pp / 100
    burst_rate = err.burst_min_rate_pp / 100
    enough = f"and on (model, version) {SERVED_RATE} * {WINDOW_S} >= {n}"
    cand = f"and on (model, version) {_role('candidate')}"
    # stable's error rate; 0 where stable served nothing in the window (a candidate at 100 %)
    stable_errors = f"{STABLE_ERROR_RATIO} or on (model) 0 * {_role('candidate')}"
    p95_limit = (f"{STABLE_P95} * {lat.max_ratio:g} > {STABLE_P95} + {delta_s:g}\n"
                 f"    or {STABLE_P95} + {delta_s:g}")

    def labels(severity: str, gate: str, check: str) -> dict:
        return {"severity": severity, "gate": gate, "check": check, "thresholds": thresholds}

    return [
        {"alert": "PaddleCanaryCandidateErrorRateHigh",
         "expr": (f"(\n  {ERROR_RATIO}{s}\n    {cand}\n    {enough}\n)\n"
                  f"- on (model) group_left ()\n"
                  f"max by (model) ({stable_errors})\n"
                  f"> {diff:g}"),
         "for": "2m",
         "labels": labels("warning", "errors", "error_rate_diff"),
         "annotations": {
             "summary": "{{ $labels.model }} candidate {{ $labels.version }}: error rate "
                        "{{ $value | humanizePercentage }} above stable's",
             "description": (f"Over the last {WINDOW}, the candidate's error rate exceeds "
                             f"stable's by more than {err.max_abs_diff_pp:g} pp (the errors "
                             f"gate's max_abs_diff_pp; at least {n} requests). The release's "
                             "analysis is likely to fail this step."),
         }},
        {"alert": "PaddleCanaryCandidateErrorBurst",
         "expr": (f"{BURST_ERRORS}{s} >= {err.burst_min_errors}\n"
                  f"  and on (model, version) {BURST_RATIO} >= {burst_rate:g}\n"
                  f"  {cand}\n"
                  f"  unless on (model) {STABLE_BURST_RATIO} >= {burst_rate:g}"),
         "labels": labels("critical", "errors", "burst"),
         "annotations": {
             "summary": "{{ $labels.model }} candidate {{ $labels.version }}: burst of "
                        "{{ $value | humanize }} errors in the last minute",
             "description": (f"At least {err.burst_min_errors} errors making up at least "
                             f"{err.burst_min_rate_pp:g} % of the candidate's requests in "
                             f"{BURST_WINDOW}, stable below that rate (the errors gate's "
                             "burst rule: the release rolls back at its next look)."),
         }},
        {"alert": "PaddleCanaryCandidateLatencyP95High",
         "expr": f"{P95}{s} > {max_s:g}\n  {cand}\n  {enough}",
         "for": "2m",
         "labels": labels("warning", "latency_p95", "p95_under_max_ms"),
         "annotations": {
             "summary": "{{ $labels.model }} candidate {{ $labels.version }}: P95 "
                        "{{ $value | humanizeDuration }} over " f"{lat.max_ms:g} ms",
             "description": (f"The candidate's P95 latency over the last {WINDOW} is above "
                             f"the latency gate's max_ms ({lat.max_ms:g} ms; at least {n} "
                             "requests)."),
         }},
        {"alert": "PaddleCanaryCandidateLatencyP95AboveStable",
         "expr": (f"(\n  {P95}{s}\n    {cand}\n    {enough}\n)\n"
                  f"> on (model) group_left ()\n"
                  f"(\n  (\n    {p95_limit}\n  )\n"
                  f"  and on (model) {STABLE_SERVED} * {WINDOW_S} >= {n}\n)"),
         "for": "2m",
         "labels": labels("warning", "latency_p95", "p95_ratio"),
         "annotations": {
             "summary": "{{ $labels.model }} candidate {{ $labels.version }}: P95 "
                        "{{ $value | humanizeDuration }} above stable's limit",
             "description": (f"The candidate's P95 over the last {WINDOW} is above "
                             f"max({lat.max_ratio:g} x stable's P95, stable's P95 + "
                             f"{lat.min_delta_ms:g} ms), the latency gate's max_ratio and "
                             f"min_delta_ms (at least {n} requests on each)."),
         }},
    ]


def serving_alerts() -> list[dict]:
    """Targets down and releases stuck: no thresholds of a model's own."""
    return [
        {"alert": "PaddleCanaryStableTargetDown",
         "expr": (f"{_role('stable')}\n"
                  f"  unless on (model, version) (max by (model, version) "
                  f'(up{{model!="", version!=""}}) == 1)'),
         "for": "1m",
         "labels": {"severity": "critical"},
         "annotations": {
             "summary": "{{ $labels.model }} stable {{ $labels.version }}: no scrape target up",
             "description": ("The gateway routes stable traffic of {{ $labels.model }} to "
                             "{{ $labels.version }}, but Prometheus has had no healthy target "
                             "of that version for 1m (down, or not a target at all)."),
         }},
        {"alert": "PaddleCanaryServingTargetDown",
         "expr": 'up{model!="", version!=""} == 0',
         "for": "2m",
         "labels": {"severity": "warning"},
         "annotations": {
             "summary": "{{ $labels.model }} {{ $labels.version }}: target {{ $labels.instance }}"
                        " down",
             "description": "A serving process of {{ $labels.model }} {{ $labels.version }} "
                            "has not answered Prometheus' scrapes for 2m.",
         }},
        {"alert": "PaddleCanaryReleaseStuck",
         "expr": (f"time() - max by (model) ({series.GATEWAY_WEIGHT_SINCE})\n"
                  f"  > {WEIGHT_ALLOWANCE} + {STUCK_GRACE_S}"),
         "labels": {"severity": "warning"},
         "annotations": {
             "summary": "{{ $labels.model }}: release held at weight "
                        '{{ with printf "max(' + series.GATEWAY_WEIGHT
                        + '{model=\\"%s\\"})" $labels.model | query }}'
                        "{{ . | first | value }}{{ end }} % for {{ $value | humanizeDuration }}",
             "description": ("The live weight has not changed for longer than the release "
                             "plans to hold it (step interval, extensions, approval timeout, "
                             f"promotion-window wait) plus {STUCK_GRACE_S} s. Check the run "
                             "in Airflow and `paddle-canary status`."),
         }},
    ]


def render(gates_by_model: Mapping[str, GateConfig] | None = None,
           defaults: GateConfig | None = None) -> dict:
    """The rule file as data: recording rules, the default candidate alerts (every model
    without thresholds of its own), one group per model whose gates differ, serving alerts."""
    defaults = defaults or GateConfig.from_dict()
    own = {m: g for m, g in sorted((gates_by_model or {}).items()) if g != defaults}
    others = f'model!~"{"|".join(own)}"' if own else ""
    groups = [recording_group(),
              {"name": DEFAULT_GROUP, "rules": candidate_alerts(defaults, others)}]
    for model, gates in own.items():
        groups.append({"name": f"{DEFAULT_GROUP}-{model}",
                       "rules": candidate_alerts(gates, f'model="{model}"', model)})
    groups.append({"name": "paddle-canary-serving", "rules": serving_alerts()})
    return {"groups": groups}


def registry_gates(root: Path | str) -> dict[str, GateConfig]:
    """Each model's gates from its ``model.yaml`` in the registry at ``root``."""
    from paddle_canary.registry import Registry

    reg = Registry(root)
    return {m: GateConfig.from_dict(reg.model_defaults(m).get("gates")) for m in reg.models()}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(rules: dict, path_hint: str = "images/prometheus/rules/paddle-canary.yml") -> str:
    return HEADER.format(path=path_hint) + yaml.dump(
        rules, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paddle_canary.ops.rules",
                                 description="Render paddle-canary's Prometheus rules.")
    ap.add_argument("--registry", default=str(REPO / "model_registry"),
                    help="registry whose models' gates get rules of their own")
    ap.add_argument("-o", "--output", help="write here (default: stdout)")
    args = ap.parse_args(argv)
    text = to_yaml(render(registry_gates(args.registry)))
    if args.output:
        out = Path(args.output)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
