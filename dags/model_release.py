"""model_release: move live traffic from the stable version of a model to a candidate.

Thin on purpose: it wires the operators in ``paddle_canary.airflow``; the logic lives in
``paddle_canary.release``. Trigger it from the UI form, ``paddle-canary release MODEL VERSION``,
the REST API, or by registering a version with ``--release`` (an asset event).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, TaskGroup

from paddle_canary.airflow import operators as op
from paddle_canary.airflow.assets import REGISTERED_VERSIONS
from paddle_canary.airflow.release_notices import ReleaseOutcomeNotifier
from paddle_canary.airflow.validation_pod import validation_pod_task
from paddle_canary.release.plan import MAX_STEPS
from paddle_canary.runtime.factory import RUNTIMES

INT_LIST = {"type": ["null", "array"], "items": {"type": "integer", "minimum": 1, "maximum": 100}}

with DAG(
    dag_id="model_release",
    description="Canary release of a registered PaddlePaddle model version",
    schedule=REGISTERED_VERSIONS,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=8,
    default_args={"trigger_rule": "none_failed", "retries": 0},
    tags=["paddle-canary", "release"],
    params={
        "model": Param(None, type=["null", "string"], title="Model", description="Registered model name"),
        "version": Param(None, type=["null", "string"], title="Candidate version"),
        "steps": Param(None, **INT_LIST, maxItems=MAX_STEPS,
                       description="Candidate weights in %, increasing, ending at 100 (default 5, 15, ..., 95, 100)"),
        "step_interval_s": Param(None, type=["null", "number"], minimum=1, description="Seconds per step (default 3600)"),
        "approvals_before": Param(None, **INT_LIST, description="Ask a person before the first step at or above each of these weights (default 50, 100)"),
        "teardown_delay_s": Param(None, type=["null", "number"], minimum=0, description="Seconds from promotion to stopping the old version (default 86400)"),
        "poll_interval_s": Param(None, type=["null", "number"], minimum=0.5, description="Seconds between looks of the judge (default 10)"),
        "max_extensions": Param(None, type=["null", "integer"], minimum=0, description="Extensions of an inconclusive step before a person is asked (default 2)"),
        "gates": Param(None, type=["null", "object"], description="Gate threshold overrides, e.g. {\"latency_p95\": {\"max_ms\": 50}}"),
        "runtime": Param(None, type=["null", "string"], enum=[None, *RUNTIMES], description="Where versions run"),
        "shadow_s": Param(None, type=["null", "number"], minimum=0, description="Seconds of the shadow phase before the first step: stable's requests mirrored to the candidate, answers discarded (default 0: none)"),
        "shadow_mirror": Param(None, type=["null", "integer"], minimum=1, maximum=100, description="% of stable's requests mirrored during the shadow phase (default 100)"),
        "paired": Param(None, type=["null", "boolean"], description="The candidate also scores every request with the stable version, so the judge compares them on the same rows (default true)"),
    },
) as dag:
    resolve = op.ResolvePlanOperator(task_id=op.PLAN_TASK, trigger_rule="all_success")
    build = op.BuildImageOperator(task_id="build_image")
    choose = op.ChooseValidationOperator(task_id="choose_validation")
    validate = op.ValidateModelOperator(task_id="validate_model")
    validate_pod = validation_pod_task(on_summary=op.record_pod_validation)
    deploy = op.DeployCandidateOperator(task_id="deploy_candidate",
                                        trigger_rule="none_failed_min_one_success")
    resolve >> build >> choose >> [validate, validate_pod] >> deploy

    # The shadow phase (plan shadow_s > 0; skipped otherwise): stable's requests mirrored to
    # the candidate, judged as step 0 before any user is routed to it.
    with TaskGroup(group_id="shadow") as shadow:
        mirror = op.StartShadowOperator(task_id="mirror")
        shadow_analyze = op.CanaryAnalysisSensor(task_id="analyze", slot=op.SHADOW_SLOT,
                                                 set_weight_task="shadow.mirror")
        mirror >> shadow_analyze
    deploy >> shadow

    last = shadow
    work = [build, choose, validate, validate_pod, deploy, mirror, shadow_analyze]
    for slot in range(MAX_STEPS):
        with TaskGroup(group_id=f"step_{slot + 1:02d}") as group:
            approve = op.ReleaseApprovalOperator(task_id="approve", slot=slot, when="before")
            set_weight = op.SetWeightOperator(task_id="set_weight", slot=slot)
            analyze = op.CanaryAnalysisSensor(task_id="analyze", slot=slot,
                                              set_weight_task=f"{group.group_id}.set_weight")
            confirm = op.ReleaseApprovalOperator(task_id="confirm", slot=slot, when="inconclusive",
                                                 analysis_task=f"{group.group_id}.analyze")
            approve >> set_weight >> analyze >> confirm
        last >> group
        last = group
        work += [approve, set_weight, analyze, confirm]

    promote = op.PromoteOperator(task_id="promote")
    teardown = op.TeardownOperator(task_id="teardown_old_version")
    # tell the model's people (model.yaml notify) that it rolled back, or could not
    rollback = op.RollbackOperator(task_id="rollback", trigger_rule="one_failed",
                                   on_success_callback=ReleaseOutcomeNotifier(),
                                   on_failure_callback=ReleaseOutcomeNotifier())
    report = op.ReportOperator(task_id="report", trigger_rule="all_done")
    last >> promote >> teardown
    work.append(promote)
    work >> rollback
    [rollback, promote, resolve] >> report
