"""``paddle-canary report MODEL RUN_ID`` regenerates a report from the journal on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import report_journal as rj

from paddle_canary.cli import main
from paddle_canary.release import journal

RUN = "manual__2025-11-24T17:00:00+00:00"


def _save_journal(home, events):
    path = journal.journal_path(home, rj.MODEL, RUN)
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_cli_writes_the_report_from_the_journal(tmp_path, closed_url, capsys):
    home = tmp_path / "stack"
    _save_journal(home, rj.rolled_back_journal(RUN))

    code = main(["report", rj.MODEL, RUN, "--home", str(home), "--prometheus-url", closed_url])

    out = capsys.readouterr().out
    html_path = home / "reports" / rj.MODEL / "manual__2025-11-24T17_00_00_00_00.html"
    assert code == 0
    assert str(html_path) in out
    assert "rolled_back" in out and f"fault to 0 % in {rj.FAULT_TO_ZERO_S:.1f} s" in out
    assert html_path.is_file()
    assert json.loads(html_path.with_suffix(".json").read_text())["outcome"] == "rolled_back"


def test_cli_reads_home_from_the_environment(tmp_path, closed_url):
    home = tmp_path / "stack"
    _save_journal(home, rj.promoted_journal(RUN))
    env = dict(os.environ, PADDLE_CANARY_HOME=str(home), PADDLE_CANARY_PROMETHEUS_URL=closed_url)
    proc = subprocess.run([sys.executable, "-m", "paddle_canary.cli", "report", rj.MODEL, RUN],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (home / "reports" / rj.MODEL / "manual__2025-11-24T17_00_00_00_00.html").is_file()
    assert "promoted" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["risk-score", "no-such-run"], "no release journal"),
    (["Bad_Model!", RUN], "invalid model name"),
])
def test_cli_refuses_what_it_cannot_report(tmp_path, closed_url, capsys, args, message):
    home = tmp_path / "stack"
    code = main(["report", *args, "--home", str(home), "--prometheus-url", closed_url])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (home / "reports").exists()


def test_cli_refuses_a_journal_without_a_plan(tmp_path, closed_url, capsys):
    home = tmp_path / "stack"
    _save_journal(home, [e for e in rj.rolled_back_journal(RUN) if e["event"] != "plan"])
    code = main(["report", rj.MODEL, RUN, "--home", str(home), "--prometheus-url", closed_url])
    assert code == 2
    assert "no plan event" in capsys.readouterr().err
    assert not (home / "reports").exists()
