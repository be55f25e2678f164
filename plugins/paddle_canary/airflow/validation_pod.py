"""``validate_model`` on Kubernetes: a KubernetesPodOperator running the candidate image's
``validate`` entrypoint on a GPU node (the pod: :mod:`paddle_canary.kube.validation_pod`).

The DAG's shape is fixed at parse time and the runtime is chosen per run, so the DAG branches
(:func:`validation_task_for`) between this task and the in-process validation; the graph shows
which one ran. The pod's image, command, GPUs and placement depend on the run's plan, so
:class:`ValidationPodOperator` fills them in at the start of ``execute`` from the plan in XCom
(and ``model.yaml``), then runs as the KubernetesPodOperator it is: deferrable (the wait runs in
the triggerer), the pod deleted afterwards, its logs in the task log, the summary pushed to XCom.
A failed validation fails the task (no retry) with the reason the program wrote.

Imports at DAG parse time: the provider and ``kubernetes`` models only (no numpy, GX, paddle).
"""

from __future__ import annotations

from typing import Any, Callable

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowFailException

from paddle_canary.kube import validation_pod as pod_spec
from paddle_canary.kube.config import KubeSettings, ModelKube

POD_TASK = "validate_model_pod"
PROCESS_TASK = "validate_model"


def validation_task_for(runtime: str) -> str:
    """The validation task a run takes: the GPU pod on Kubernetes, the process elsewhere."""
    return POD_TASK if runtime == "kubernetes" else PROCESS_TASK


class ValidationPodOperator(KubernetesPodOperator):
    """KubernetesPodOperator for ``paddle-canary validate``, configured from the run's plan.

    ``plan_task``: the task whose XCom is the plan (``model``, ``candidate``, ``baseline``).
    ``image_task``: the task whose XCom names the built image (a string, or a dict with
    ``image``); without it the image comes from ``PADDLE_CANARY_K8S_IMAGE``.
    ``model_config``: ``model -> ModelKube`` (default: the registry's ``model.yaml``).
    ``on_summary``: called as ``on_summary(plan, summary)`` with the pod's summary (None when
    the pod wrote none) before the task succeeds or fails: the release journal's hook.
    """

    def __init__(self, *, plan_task: str = "resolve_plan", image_task: str | None = "build_image",
                 settings: KubeSettings | None = None,
                 model_config: Callable[[str], ModelKube] | None = None,
                 on_summary: Callable[[dict, dict | None], None] | None = None, **kwargs):
        settings = settings or KubeSettings.from_env()
        kwargs.setdefault("kubernetes_conn_id", settings.conn_id)
        kwargs.setdefault("deferrable", True)
        kwargs.setdefault("on_finish_action", "delete_pod")
        kwargs.setdefault("get_logs", True)
        kwargs.setdefault("do_xcom_push", True)
        kwargs.setdefault("log_events_on_failure", True)
        kwargs.setdefault("log_pod_spec_on_failure", False)  # the reason, not the whole pod
        kwargs.setdefault("startup_timeout_seconds", pod_spec.STARTUP_TIMEOUT_S)
        kwargs.setdefault("active_deadline_seconds", pod_spec.DEADLINE_S)
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.kube_settings = settings
        self.plan_task = plan_task
        self.image_task = image_task
        self.model_config = model_config
        self.on_summary = on_summary
        self._summary: dict | None = None

    # ---------------------------------------------------------------- configuring from the plan

    def configure(self, plan: dict[str, Any], image: str | None = None,
                  config: ModelKube | None = None) -> None:
        """Set image, command, GPUs, placement and the baseline's init container for
        ``plan``: what ``execute`` does before the pod is built (tests call it directly)."""
        model, version, baseline = plan["model"], plan["candidate"], plan.get("baseline")
        if config is None:
            config = (self.model_config or _registry_model_config)(model)
        s = self.kube_settings
        kwargs = pod_spec.pod_arguments(
            model, version, baseline, image=image or s.image_for(model, version),
            baseline_image=s.image_for(model, baseline) if baseline else None,
            config=config, settings=s)
        for key, value in kwargs.items():
            setattr(self, key, value)
        # KubernetesPodOperator keeps these as lists; None means none.
        for key in ("volumes", "volume_mounts", "init_containers", "tolerations"):
            if getattr(self, key) is None:
                setattr(self, key, [])

    def _image(self, context) -> str | None:
        if not self.image_task:
            return None
        built = context["ti"].xcom_pull(task_ids=self.image_task)
        if isinstance(built, dict):
            built = built.get("image")
        return built if isinstance(built, str) and built else None

    def _plan(self, context) -> dict:
        plan = context["ti"].xcom_pull(task_ids=self.plan_task)
        if not plan:
            raise AirflowFailException(f"{self.task_id}: no release plan in XCom of "
                                       f"{self.plan_task!r}")
        return plan

    # ---------------------------------------------------------------- running

    def execute(self, context):
        plan = self._plan(context)
        self.configure(plan, image=self._image(context))
        return self._checked(context, plan, lambda: super(ValidationPodOperator, self)
                             .execute(context))

    def trigger_reentry(self, context, event):
        return self._checked(context, self._plan(context),
                             lambda: super(ValidationPodOperator, self)
                             .trigger_reentry(context, event))

    def extract_xcom(self, pod, **kwargs):
        result = super().extract_xcom(pod, **kwargs)
        self._summary = result if isinstance(result, dict) else None
        return result

    def _checked(self, context, plan: dict, run: Callable[[], Any]) -> Any:
        """Run the pod; a failed validation fails the task with its reason, and a pod that
        wrote no summary never passes. (A deferral, TaskDeferred, goes straight through.)"""
        try:
            result = run()
        except AirflowFailException:
            raise
        except Exception as exc:
            summary = self._summary
            self._report(plan, summary)
            if summary and summary.get("problems"):
                raise AirflowFailException(f"{self.task_id}: offline validation failed: "
                                           + "; ".join(summary["problems"])) from exc
            raise AirflowFailException(f"{self.task_id}: the validation pod failed: {exc}") \
                from exc
        summary = result if isinstance(result, dict) else self._summary
        self._report(plan, summary)
        if not summary or not summary.get("passed"):
            problems = (summary or {}).get("problems") or ["the pod wrote no summary"]
            raise AirflowFailException(f"{self.task_id}: offline validation failed: "
                                       + "; ".join(problems))
        return result

    def _report(self, plan: dict, summary: dict | None) -> None:
        if self.on_summary is not None:
            self.on_summary(plan, summary)


def _registry_model_config(model: str) -> ModelKube:
    from paddle_canary.registry import Registry
    from paddle_canary.settings import Settings

    root = Settings.from_env().registry_root
    return ModelKube.from_model_yaml(Registry(root).model_defaults(model),
                                     where=f"{model}/model.yaml")


def validation_pod_task(task_id: str = POD_TASK, **kwargs) -> ValidationPodOperator:
    """The ``validate_model`` pod task for the DAG (see :class:`ValidationPodOperator`)."""
    return ValidationPodOperator(task_id=task_id, **kwargs)
