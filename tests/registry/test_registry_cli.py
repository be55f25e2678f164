"""paddle-canary registry ...: output a person reads, exit 2 with a message on bad input."""

import os
import subprocess
import sys

import pytest
from registry_helpers import FIXTURES_ROOT, MODEL, REAL_ROOT, export_copy, snapshot

from paddle_canary.cli import main


def run(capsys, *argv):
    code = main(["registry", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_versions_pointers_and_status(capsys, root):
    code, out, _ = run(capsys, "list", "--registry", str(root))
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [row[:4] for row in rows] == [
        ["digit-seven", "v1", "stable", "stable"], ["digit-seven", "v2", "registered", "0.999514"],
        [MODEL, "v1", "stable", "stable"], [MODEL, "v2", "registered", "0.98752"]]


def test_list_of_an_empty_root(capsys, tmp_path):
    code, out, _ = run(capsys, "list", "--registry", str(tmp_path))
    assert code == 0 and "no models in" in out


def test_show_model_prints_pointers_and_history(capsys, root):
    code, out, _ = run(capsys, "show", MODEL, "--registry", str(root))
    assert code == 0
    assert "stable:    v1" in out and "candidate: -" in out and "versions:  v1, v2" in out
    assert out.count("registered") == 2 and "promoted" in out


def test_show_version_prints_the_card(capsys):
    code, out, _ = run(capsys, "show", MODEL, "v1", "--registry", str(REAL_ROOT))
    assert code == 0
    assert "x float32 [None, 30]" in out and "score >= 0.5 -> reject" in out
    assert "sha256:" in out and "sklearn.datasets.load_breast_cancer" in out


@pytest.mark.parametrize("argv, message", [
    (["show", "nope"], "error: unknown model 'nope'; known: digit-seven, risk-score"),
    (["show", MODEL, "v9"], "error: unknown version 'v9' of model 'risk-score'; known: v1, v2"),
    (["show", MODEL, "../v1"], "error: invalid version '../v1'"),
    (["promote", MODEL, "v9"], "error: unknown version 'v9'"),
    (["reject", MODEL, "v1", "--reason", "x"], "error: 'v1' is the stable version"),
    (["set-candidate", MODEL, "v1"], "error: 'v1' is already the stable version"),
])
def test_bad_requests_exit_2_with_a_message_and_change_nothing(capsys, root, argv, message):
    before = snapshot(root)
    code, out, err = run(capsys, *argv, "--registry", str(root))
    assert code == 2 and err.startswith(message) and out == ""
    assert snapshot(root) == before


def test_register_promote_and_candidate_commands(capsys, root, tmp_path):
    export = export_copy(root / MODEL / "v2", tmp_path / "v3", "v3")
    code, out, _ = run(capsys, "register", MODEL, "v3", str(export), "--registry", str(root))
    assert code == 0 and out.startswith(f"registered {MODEL} v3 (sha256:")
    assert run(capsys, "set-candidate", MODEL, "v3", "--registry", str(root))[1] == (
        f"{MODEL}: stable = v1, candidate = v3\n")
    assert run(capsys, "clear-candidate", MODEL, "--registry", str(root))[0] == 0
    assert run(capsys, "reject", MODEL, "v2", "--reason", "worse AUC",
               "--registry", str(root))[0] == 0
    assert run(capsys, "promote", MODEL, "v3", "--registry", str(root))[1] == (
        f"{MODEL}: stable = v3, candidate = -\n")
    _, out, _ = run(capsys, "list", "--registry", str(root))
    assert [row for row in (line.split()[:4] for line in out.splitlines()[1:])
            if row[0] == MODEL] == [
        [MODEL, "v1", "promoted", "0.988053"], [MODEL, "v2", "rejected", "0.98752"],
        [MODEL, "v3", "stable", "stable"]]


def test_register_refusal_exits_2_and_writes_nothing(capsys, root, tmp_path):
    export = export_copy(FIXTURES_ROOT / MODEL / "bad-signature", tmp_path / "sig", "v3")
    before = snapshot(root)
    code, out, err = run(capsys, "register", MODEL, "v3", str(export), "--registry", str(root))
    assert code == 2 and out == ""
    assert "error:" in err and "has shape [None, 29], card needs [None, 30]" in err
    assert snapshot(root) == before


def test_console_script_exit_status(root):
    exe = os.path.join(os.path.dirname(sys.executable), "paddle-canary")
    env = {**os.environ, "PADDLE_CANARY_REGISTRY": str(root)}
    ok = subprocess.run([exe, "registry", "list"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "v2" in ok.stdout
    bad = subprocess.run([exe, "registry", "show", MODEL, "v1/.."], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: invalid version 'v1/..'")
    assert "Traceback" not in bad.stderr


def test_register_over_a_dangling_symlink_exits_2_without_a_traceback(root, tmp_path):
    export = export_copy(root / MODEL / "v2", tmp_path / "v3", "v3")
    (root / MODEL / "v3").symlink_to(tmp_path / "nowhere")
    exe = os.path.join(os.path.dirname(sys.executable), "paddle-canary")
    done = subprocess.run([exe, "registry", "register", MODEL, "v3", str(export),
                           "--registry", str(root)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {root / MODEL / 'v3'} already exists (a symlink")
    assert "Traceback" not in done.stderr
