"""The paddle-canary Airflow plugin: the live rollout report served by Airflow's API server,
a "Rollout report" extra link on the tasks a person looks at, and the release deadline's
reference (:mod:`paddle_canary.airflow.deadline`).

Registered through the ``airflow.plugins`` entry point in pyproject.toml (``plugins/.airflowignore``
hides this package from the plugin folder scan). Loaded by every Airflow component, so it is
light: the FastAPI app (:mod:`paddle_canary.airflow.report_app`) is imported only when the API
server asks for it, and the operators only when a serialized DAG is read with its links.

The link is registered here, not on the operators: a link an operator declares is computed by
the worker when the task ends and stored in XCom, so a waiting ``analyze`` or approval would
have none; a plugin's link is computed by the API server when the UI asks, at any time.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

from paddle_canary.report import links

APP_NAME = "paddle-canary rollout reports"


class RolloutReportLink(BaseOperatorLink):
    name = "Rollout report"

    @property
    def operators(self):  # the classes whose tasks show the link (imported when asked)
        from paddle_canary.airflow import operators as op
        return [op.CanaryAnalysisSensor, op.ReleaseApprovalOperator, op.RollbackOperator,
                op.ReportOperator]

    def get_link(self, operator, *, ti_key) -> str:
        from airflow.configuration import conf
        return links.report_url(conf.get("api", "base_url", fallback=""), ti_key.dag_id,
                                ti_key.run_id)


class PaddleCanaryPlugin(AirflowPlugin):
    name = "paddle_canary"
    operator_extra_links = [RolloutReportLink()]

    @property
    def deadline_references(self):  # the release deadline's reference (airflow.deadline)
        from paddle_canary.airflow.deadline import PlannedRunEnd
        return [PlannedRunEnd]

    @property
    def fastapi_apps(self):
        from paddle_canary.airflow.report_app import app
        return [{"app": app, "url_prefix": links.URL_PREFIX, "name": APP_NAME}]
