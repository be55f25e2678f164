"""The shadow phase's analysis sensor (no Airflow run: the operator's own decisions). It waits
``shadow_s`` from the mirror's start as step 0 at weight 0, and is skipped without a phase."""

from __future__ import annotations

import pytest

from paddle_canary.release.plan import ReleasePlan

PLAN = ReleasePlan(model="risk-score", candidate="v2", baseline="v1", steps=(5, 100),
                   step_interval_s=60, approvals_before=(), teardown_delay_s=0,
                   poll_interval_s=1, max_extensions=2, runtime="local", gates={}, run_id="r")


class TI:
    def __init__(self, values):
        self.values = values

    def xcom_pull(self, task_ids):
        return self.values[task_ids]


def sensor():
    from paddle_canary.airflow import operators as op
    return op.CanaryAnalysisSensor(task_id="analyze", slot=op.SHADOW_SLOT,
                                   set_weight_task="shadow.mirror")


def test_the_shadow_sensor_waits_shadow_s_as_step_zero():
    import dataclasses

    from airflow.sdk.exceptions import TaskDeferred

    from paddle_canary.airflow.operators import PLAN_TASK
    plan = dataclasses.replace(PLAN, shadow_s=45.0)
    ti = TI({PLAN_TASK: plan.to_dict(), "shadow.mirror": {"at": 1000.0, "mirror": 100}})
    with pytest.raises(TaskDeferred) as deferred:
        sensor().execute({"ti": ti})
    _, kwargs = deferred.value.trigger.serialize()
    assert (kwargs["step"], kwargs["weight"], kwargs["since"], kwargs["until"]) == \
        (0, 0, 1000.0, 1045.0)


def test_the_shadow_sensor_is_skipped_without_a_shadow_phase():
    from airflow.sdk.exceptions import AirflowSkipException

    from paddle_canary.airflow.operators import PLAN_TASK
    with pytest.raises(AirflowSkipException, match="no shadow phase"):
        sensor().execute({"ti": TI({PLAN_TASK: PLAN.to_dict()})})
