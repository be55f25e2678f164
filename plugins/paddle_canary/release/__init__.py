"""One release of a model version, as plain Python: the plan, the lock, the controller steps.

The Airflow operators in ``paddle_canary.airflow`` are thin adapters over this package.
"""
