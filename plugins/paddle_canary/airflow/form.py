"""The trigger form of ``model_release``: its Params (JSON schema), built at parse time.

Every field has a title with its unit and says its default; an empty field means "the model's
default from its ``model.yaml``" (a value in the form would override the model's own plan, so
defaults are shown in the description, not filled in). Model offers the registered models
(read from the registry's ``*/model.yaml`` at parse time: a directory listing and a few small
YAML files). Poll interval, extensions, gates and runtime are in the "Advanced" section, which
Airflow 3.3's form shows collapsed. Optional drop-downs label the empty choice instead of
showing a literal "null".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import Param

from paddle_canary.release.plan import DEFAULT_PLAN, MAX_STEPS
from paddle_canary.runtime.factory import RUNTIMES

ADVANCED = "Advanced"
RUNTIME_LABELS = {"local": "local processes (this machine)", "docker": "Docker containers",
                  "kubernetes": "Kubernetes Deployments"}


def _registered(root: Path) -> dict[str, dict[str, Any]]:
    """``{model: its model.yaml's plan}`` for each model in the registry (empty when the
    registry cannot be read: the form then lists no models)."""
    try:
        import yaml
        out = {}
        for card in sorted(Path(root).glob("*/model.yaml")):
            doc = yaml.safe_load(card.read_text()) or {}
            out[card.parent.name] = dict(doc.get("plan") or {})
        return out
    except Exception:  # noqa: BLE001 - a broken registry must not break parsing the DAG
        return {}


def _list(v) -> str:
    return ", ".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def _default(key: str, models: dict[str, dict[str, Any]], unit: str = "") -> str:
    """'Empty: the model's default (risk-score: 5, 15, ..., 100 %).'"""
    per_model = [f"{m}: {_list(plan.get(key, DEFAULT_PLAN[key]))}{unit}"
                 for m, plan in models.items()]
    where = "; ".join(per_model) if per_model else f"{_list(DEFAULT_PLAN[key])}{unit}"
    return f"Empty: the model's default from model.yaml ({where})."


def release_params(registry_root: Path) -> dict[str, Param]:
    models = _registered(registry_root)
    weights = {"type": ["null", "array"], "uniqueItems": True,
               "items": {"type": "integer", "minimum": 1, "maximum": 100}}
    return {
        "model": Param(None, type=["null", "string"], title="Model",
                       **({"examples": list(models)} if models else {}),
                       description="A registered model (paddle-canary registry list)."),
        "version": Param(None, type=["null", "string"], title="Candidate version",
                         description="The registered version to release, e.g. v2."),
        "steps": Param(None, **weights, maxItems=MAX_STEPS, title="Steps (% of users)",
                       description="Candidate weights, increasing, ending at 100. "
                                   + _default("steps", models, " %")),
        "step_interval_s": Param(None, type=["null", "number"], minimum=1,
                                 title="Step length (seconds)",
                                 description="How long each step is judged before the next. "
                                             + _default("step_interval_s", models, " s")),
        "approvals_before": Param(None, **weights, title="Approve before (% of users)",
                                  description="A person approves before the first step at or "
                                              "above each of these weights; [] for none. "
                                              + _default("approvals_before", models, " %")),
        "teardown_delay_s": Param(None, type=["null", "number"], minimum=0,
                                  title="Keep the old version after promotion (seconds)",
                                  description="Then it is stopped. "
                                              + _default("teardown_delay_s", models, " s")),
        "poll_interval_s": Param(None, type=["null", "number"], minimum=0.5,
                                 title="Judge look interval (seconds)", section=ADVANCED,
                                 description="Seconds between two looks of the judge. "
                                             + _default("poll_interval_s", models, " s")),
        "max_extensions": Param(None, type=["null", "integer"], minimum=0,
                                title="Extensions of an inconclusive step (count)",
                                section=ADVANCED,
                                description="Then a person is asked to confirm. "
                                            + _default("max_extensions", models)),
        "gates": Param(None, type=["null", "object"], title="Gate threshold overrides (JSON)",
                       section=ADVANCED,
                       description='e.g. {"latency_p95": {"max_ms": 50}, "min_samples": 400}. '
                                   "Empty: the model's gates from model.yaml."),
        "runtime": Param(None, type=["null", "string"], enum=[None, *RUNTIMES],
                         values_display={None: "model default (local)",
                                         **{r: RUNTIME_LABELS.get(r, r) for r in RUNTIMES}},
                         title="Runtime", section=ADVANCED,
                         description="Where the versions run."),
        "header_route": Param(None, type=["null", "object"], section=ADVANCED,
                              title="Header route (JSON)",
                              description="Requests carrying this header go to the candidate "
                                          "from deploy on, at any weight (internal testers), "
                                          'e.g. {"name": "X-Canary", "value": "testers"}.'),
        "shadow_s": Param(None, type=["null", "number"], minimum=0,
                          title="Shadow phase before the first step (seconds)", section=ADVANCED,
                          description="Stable's requests mirrored to the candidate, answers "
                                      "discarded, judged before any user sees it. "
                                      + _default("shadow_s", models, " s")),
        "shadow_mirror": Param(None, type=["null", "integer"], minimum=1, maximum=100,
                               title="Mirrored during the shadow phase (% of requests)",
                               section=ADVANCED,
                               description=_default("shadow_mirror", models, " %")),
        "paired": Param(None, type=["null", "boolean"], title="Paired analysis",
                        section=ADVANCED,
                        description="The candidate also scores every request with the stable "
                                    "version, so the judge compares them on the same rows. "
                                    + _default("paired", models)),
    }
