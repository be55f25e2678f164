"""The one-machine stack as processes: Airflow components, Prometheus, nginx, serving, load.

Used by ``make up`` / ``make down``, the demo and the end-to-end tests. Starts subprocesses and
stops them by PID; imports no Airflow.
"""
