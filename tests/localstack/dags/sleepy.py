"""A DAG whose one task sleeps: a LocalExecutor worker and a task process stay busy with it."""

import time
from datetime import datetime

from airflow.sdk import DAG, task

with DAG("sleepy", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def nap():
        time.sleep(600)

    nap()
