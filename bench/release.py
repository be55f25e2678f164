"""Release bench: the figures issue 5 asks for, each beside a baseline measured in the same run.

1. DAG parse time: ``dags/model_release.py`` loaded by Airflow's DagBag in a fresh process,
   beside a one-task DAG (the floor: importing Airflow and the DagBag machinery).
2. Worker slots held while a step waits: task instances in state ``running`` sampled every
   0.5 s over the REST API while a step's analysis sensor waits (``deferred``), beside the same
   count while the release's ordinary tasks run.
3. Time from a fault becoming visible to weight 0: ``--runs`` releases of bad-slow (25 ms per
   row: the fault shows with the first canary request) in the real stack; from the first
   canary traffic and from the first failing look, to the cut made by the analysis trigger,
   beside the cut the rollback task makes (what a rollback-by-task design would give).

    .venv/bin/python bench/release.py --runs 3     # ~6 minutes
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from paddle_canary import process
from paddle_canary.airflow_rest import AirflowClient
from paddle_canary.localstack import driver
from paddle_canary.localstack.stack import LocalStack, StackPorts
from paddle_canary.registry import export_as

REPO = Path(__file__).resolve().parents[1]
MODEL = "risk-score"
logging.getLogger("httpx").setLevel(logging.WARNING)

TRIVIAL_DAG = '''
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG("trivial", start_date=datetime(2026, 1, 1), schedule=None):
    EmptyOperator(task_id="t")
'''

PARSE = '''
import sys, time
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(time.perf_counter() - t)
'''


def parse_times(path: Path, home: Path, rounds: int) -> list[float]:
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    out = []
    for _ in range(rounds):
        r = subprocess.run([sys.executable, "-c", PARSE, str(path)], env=env, check=True,
                           capture_output=True, text=True, timeout=120)
        out.append(float(r.stdout.strip().splitlines()[-1]))
    return out


def bench_parse(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                       env={"AIRFLOW_HOME": tmp, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                            "PATH": "/usr/bin:/bin"},
                       check=True, capture_output=True, timeout=300)
        trivial = home / "trivial.py"
        trivial.write_text(TRIVIAL_DAG)
        ours, floor = [], []
        for _ in range(rounds):  # alternate, so machine load hits both alike
            ours += parse_times(REPO / "dags" / "model_release.py", home, 1)
            floor += parse_times(trivial, home, 1)
    m_ours, m_floor = statistics.median(ours), statistics.median(floor)
    print(f"\nDAG parse time (DagBag in a fresh process, median of {rounds}):")
    print(f"  {'one-task DAG (floor)':<28} {m_floor * 1000:8.1f} ms")
    print(f"  {'model_release (56 tasks)':<28} {m_ours * 1000:8.1f} ms   "
          f"(+{(m_ours - m_floor) * 1000:.1f} ms, {m_ours / m_floor:.2f}x)")


class SlotSampler:
    """Counts running task instances of a run every 0.5 s, split by whether an analysis
    sensor of the run is deferred (a step wait) at that moment."""

    def __init__(self, client: AirflowClient, run_id: str):
        self.client, self.run_id = client, run_id
        self.during_wait: list[int] = []
        self.otherwise: list[int] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                states = self.client.task_instances(self.run_id)
            except Exception:  # noqa: BLE001 - a missed sample is only a missed sample
                states = {}
            running = sum(1 for s in states.values() if s == "running")
            waiting = any(t.endswith(".analyze") and s == "deferred" for t, s in states.items())
            (self.during_wait if waiting else self.otherwise).append(running)
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(10)


def bench_releases(runs: int, home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
    ports = StackPorts(gateway=process.free_port(), prometheus=process.free_port(),
                       airflow=process.free_port())
    # risk-score's users only, as when the figures in RESULTS.md were measured
    stack = LocalStack(home, model=MODEL, ports=ports, load_rate=100,
                       load_rates={"digit-seven": 0})
    reg = stack.prepare_registry()
    tmp = Path(tempfile.mkdtemp())
    versions = [f"bad-slow-{i + 1}" for i in range(runs)]
    for v in versions:
        reg.register(MODEL, v, export_as(REPO / "fixtures/broken_models" / MODEL / "bad-slow",
                                         tmp / v, v))
    results, waits, others = [], [], []
    try:
        stack.up()
        import os
        os.environ.update(stack.env())
        client = AirflowClient.from_env()
        process.wait_until(client.dag_exists, 120, interval=1, what="model_release parsed")
        client.unpause()
        for v in ["v2"] + versions:  # v2 first: two full 20 s step waits to sample
            conf = {"model": MODEL, "version": v, "steps": [5, 100],
                    "step_interval_s": 20 if v == "v2" else 60,
                    "poll_interval_s": 1, "approvals_before": [], "max_extensions": 0,
                    "teardown_delay_s": 1, "gates": {"min_samples": 40}}
            run_id = client.trigger(conf)
            sampler = SlotSampler(client, run_id)
            run = driver.drive(client, run_id, home, MODEL, timeout=300)
            sampler.stop()
            waits += sampler.during_wait
            others += sampler.otherwise
            if v == "v2":
                print(f"  v2: {driver.summary(home, MODEL, run_id, run['state'])['outcome']} "
                      f"({len(sampler.during_wait)} samples during step waits)", flush=True)
                continue
            r = driver.summary(home, MODEL, run_id, run["state"])
            results.append(r)
            print(f"  {v}: first canary traffic -> weight 0 in {r['traffic_to_weight0_s']:.1f} s "
                  f"(failing look -> trigger cut {r['failing_look_to_weight0_s']:.2f} s; "
                  f"-> rollback task's cut {r['failing_look_to_rollback_cut_s']:.2f} s)",
                  flush=True)
    finally:
        stack.down()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key):
        return statistics.median(r[key] for r in results)

    print(f"\nWorker slots held (running task instances, sampled every 0.5 s, {runs + 1} releases):")
    print(f"  while a step waits (sensor deferred): max {max(waits, default=0)}, "
          f"median {statistics.median(waits) if waits else 0} over {len(waits)} samples")
    print(f"  otherwise (the release's own tasks):  max {max(others, default=0)}, "
          f"median {statistics.median(others) if others else 0} over {len(others)} samples")
    print(f"\nFault to weight 0 (bad-slow, 5 % canary, 100 req/s of synthetic users; medians of {runs}):")
    print(f"  first canary traffic -> weight 0 (trigger cut)      {med('traffic_to_weight0_s'):6.2f} s")
    print(f"  failing look -> weight 0 (trigger cut)              {med('failing_look_to_weight0_s'):6.2f} s")
    print(f"  failing look -> weight 0 by the rollback task       {med('failing_look_to_rollback_cut_s'):6.2f} s"
          f"   (baseline: cut left to a separate task)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parse-rounds", type=int, default=5)
    ap.add_argument("--home", default=str(REPO / "var" / "bench-release"))
    args = ap.parse_args()
    bench_parse(args.parse_rounds)
    print("\nReleases of bad-slow through the real stack:")
    bench_releases(args.runs, Path(args.home))
    return 0


if __name__ == "__main__":
    sys.exit(main())
