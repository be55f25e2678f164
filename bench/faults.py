"""Faults bench: what each injected fault costs users and how fast the release reaches a safe
state, from the fault suite in real Airflow (``tests/faults/test_faults_airflow.py``).

The suite records, per fault, the seconds from the fault to the first look that saw it
(detect), to the safe state (weight 0 for a rollback, the component back for a restart), the
requests users saw fail in that time, and the outcome. The baseline beside each row is that
release's step interval: a release judged only at the end of each step would act that late.

    .venv/bin/python bench/faults.py      # ~8 minutes: the fault suite once, then the table
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _fmt(value, unit="s") -> str:
    return "-" if value is None else f"{value:.1f} {unit}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        figures_file = Path(tmp) / "figures.json"
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              str(REPO / "tests" / "faults")],
                             env={**os.environ,
                                  "PADDLE_CANARY_FAULT_FIGURES": str(figures_file)},
                             cwd=REPO)
        figures = json.loads(figures_file.read_text()) if figures_file.exists() else []
    print("| fault | detected after | safe after | baseline: step interval | user errors "
          "| outcome | note |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for f in figures:
        print(f"| {f['fault']} | {_fmt(f['detect_s'])} | {_fmt(f['safe_s'])} | "
              f"{_fmt(f['step_s'])} | {f['user_errors']} | {f['outcome']} | {f['note']} |")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
