"""The ``release_watchdog`` DAG's task: a few lines over :mod:`paddle_canary.ops.watchdog`.

The state of a ``model_release`` run comes from the Task SDK (``get_dr_count`` tells a run that
is gone from one that exists; ``get_dagrun_state`` gives the state); a state that cannot be read
is ``unknown``, which the watchdog treats as live (it repairs nothing on a guess).
"""

from __future__ import annotations

from airflow.sdk import BaseOperator

RELEASE_DAG = "model_release"


def run_state_reader(ti):
    from paddle_canary.ops.watchdog import UNKNOWN

    def run_state(run_id: str) -> str:
        try:
            if ti.get_dr_count(dag_id=RELEASE_DAG, run_ids=[run_id]) == 0:
                return "gone"
            return str(ti.get_dagrun_state(dag_id=RELEASE_DAG, run_id=run_id))
        except Exception:  # noqa: BLE001 - unknown, never "gone": see the module docstring
            return UNKNOWN
    return run_state


class ReleaseWatchdogOperator(BaseOperator):
    def __init__(self, *, repair: bool = True, runtime: str = "local", **kwargs):
        super().__init__(**kwargs)
        self.repair, self.runtime = repair, runtime

    def execute(self, context):
        from paddle_canary.errors import UserError
        from paddle_canary.ops import watchdog
        from paddle_canary.release import controller
        from paddle_canary.runtime.factory import make_runtime
        from paddle_canary.settings import Settings
        from paddle_canary.traffic.factory import make_router

        settings = Settings.from_env()
        try:
            router = make_router(settings)
        except UserError as exc:  # no gateway: report it per model, repair what needs none
            router = watchdog.UnreachableRouter(str(exc))
        findings = watchdog.check_all(
            settings, registry=controller.registry_at(settings), router=router,
            runtime=make_runtime(self.runtime, settings),
            run_state=run_state_reader(context["ti"]),
            open_release=lambda plan: controller.open_release(plan, settings),
            repair=self.repair)
        for finding in findings:
            (self.log.error if finding.error else self.log.warning)("%s", finding.line())
        if not findings:
            self.log.info("nothing to reconcile")
        watchdog.write_status(settings, findings)
        return [f.line() for f in findings]
