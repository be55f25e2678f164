"""What the DAG's first task makes of the run's params (faults issue #8 and #9)."""

from __future__ import annotations

import pytest

from paddle_canary import cli
from paddle_canary.release import lock

operators = pytest.importorskip("paddle_canary.airflow.operators")


def test_empty_approvals_mean_none_and_other_empty_fields_mean_default():
    request = operators.request_of({"model": "risk-score", "version": "v2",
                                    "approvals_before": [], "steps": [], "gates": None,
                                    "runtime": ""})
    assert request == {"model": "risk-score", "version": "v2", "approvals_before": []}


def test_the_lock_refusal_suggests_a_command_that_exists(tmp_path):
    (tmp_path / "m").mkdir()
    lock.acquire(tmp_path, "m", "run-a", "v2")
    with pytest.raises(lock.ReleaseInProgress) as refused:
        lock.acquire(tmp_path, "m", "run-b", "v3")
    suggested = str(refused.value).split("'paddle-canary ", 1)[1].split("'", 1)[0].split()
    args = cli.build_parser().parse_args(suggested)
    assert args.func.__name__ == "cmd_unlock" and args.model == "m"
