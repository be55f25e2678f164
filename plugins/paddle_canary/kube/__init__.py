"""Kubernetes plumbing shared by the Kubernetes runtime, the Istio router and the validation pod:
object names and labels (:mod:`.names`), API access and its errors (:mod:`.api`), settings and
the ``kubernetes:`` section of ``model.yaml`` (:mod:`.config`), the serving workload
(:mod:`.workload`). Plain Python: no Airflow, and the ``kubernetes`` client only where a call
is made."""
