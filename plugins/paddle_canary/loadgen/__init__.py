"""Synthetic users for the demo, the benchmarks and the traffic tests.

``run_load(url, users=..., duration_s=..., rate=...) -> LoadSummary`` as a library;
``paddle-canary loadgen --url ...`` as a separate process (SIGTERM still writes the summary).
"""

from paddle_canary.loadgen.runner import LoadSummary, Record, run_load
from paddle_canary.loadgen.users import RequestPlan, reference_from_registry, user_ids

__all__ = ["LoadSummary", "Record", "RequestPlan", "reference_from_registry", "run_load",
           "user_ids"]
