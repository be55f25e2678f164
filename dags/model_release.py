"""model_release: move live traffic from the stable version of a model to a candidate.

Thin on purpose: it wires the operators in ``paddle_canary.airflow``; the logic lives in
``paddle_canary.release``. Trigger it from the UI form, ``paddle-canary release MODEL VERSION``,
the REST API, or by registering a version with ``--release`` (an asset event).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, TaskGroup

from paddle_canary.airflow import deadline, form
from paddle_canary.airflow import operators as op
from paddle_canary.airflow.assets import REGISTERED_VERSIONS
from paddle_canary.airflow.release_notices import ReleaseOutcomeNotifier
from paddle_canary.airflow.validation_pod import validation_pod_task
from paddle_canary.release.plan import MAX_STEPS
from paddle_canary.settings import Settings

DOC_MD = """
### How a release runs

1. **resolve_plan** checks the request against the registry and `model.yaml` (a bad request is
   refused here, before anything changes) · **checks**: **build_image**, **validate_model**
   (CPU) or **validate_model_pod** (GPU pod on Kubernetes) · **deploy_candidate** beside stable.
2. **shadow** (when `shadow_s` > 0): stable's requests mirrored to the candidate, judged before
   any user is routed to it.
3. **steps**: **step_01 … step_12**, one group per planned step (5 %, 15 %, … 100 % by default; the slots
   a plan does not use are skipped at once): *approve* (only where the plan asks a person),
   *set_weight*, *analyze* (waits in the triggerer; a failed gate cuts traffic back to stable at
   once), *confirm* (only after an inconclusive analysis).
4. **promote** · **teardown_old_version** waits `teardown_delay_s` (24 h by default) while the
   bake guards watch the new stable, then stops the old version.
5. **rollback** runs when any task fails; **report** writes the rollout report.

Every run's note says where it stands; the **Rollout report** extra link of *analyze*, the
approvals, *rollback* and *report* opens the live report. Approvals: *Required Actions*.
"""

with DAG(
    dag_id="model_release",
    description="Canary release of a registered PaddlePaddle model version",
    schedule=REGISTERED_VERSIONS,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=8,
    default_args={"trigger_rule": "none_failed", "retries": 0},
    tags=["paddle-canary", "release"],
    doc_md=DOC_MD,
    params=form.release_params(Settings.from_env().registry_root),
    # a run still going this long after its planned end tells the model's people (airflow.deadline)
    deadline=DeadlineAlert(reference=deadline.PlannedRunEnd(), interval=deadline.margin(),
                           callback=AsyncCallback(deadline.release_overdue)),
) as dag:
    resolve = op.ResolvePlanOperator(task_id=op.PLAN_TASK, trigger_rule="all_success")
    # Outer groups only fold the graph (a 1600-px view shows ~9 nodes instead of 23); with
    # prefix_group_id=False the task ids stay as they are (step_01.analyze, build_image, ...).
    with TaskGroup(group_id="checks", prefix_group_id=False,
                   tooltip="build the image, validate the exported model (CPU or GPU pod)"):
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
    with TaskGroup(group_id="steps", prefix_group_id=False,
                   tooltip="one group per planned step; unused slots are skipped at once"):
        for slot in range(MAX_STEPS):
            with TaskGroup(group_id=f"step_{slot + 1:02d}") as group:
                approve = op.ReleaseApprovalOperator(task_id="approve", slot=slot, when="before")
                set_weight = op.SetWeightOperator(task_id="set_weight", slot=slot)
                analyze = op.CanaryAnalysisSensor(task_id="analyze", slot=slot,
                                                  set_weight_task=f"{group.group_id}.set_weight")
                confirm = op.ReleaseApprovalOperator(task_id="confirm", slot=slot,
                                                     when="inconclusive",
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
