"""A writer killed at any moment leaves the pointers and the history agreeing; a torn last
history line is repaired by the next write; nothing the dead writer left behind piles up."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from registry_helpers import MODEL, REAL_ROOT

from paddle_canary.registry import Pointers, Registry

WRITER = Path(__file__).with_name("registry_writer.py")
KILLS = 40


def replay(events: list[dict]) -> Pointers:
    """The pointers that the history's events, applied in order, give."""
    stable = candidate = None
    for e in events:
        kind, version = e["event"], e["version"]
        if kind == "promoted":
            stable, candidate = version, None
        elif kind == "candidate_set":
            candidate = version
        elif kind == "candidate_cleared" or (kind == "rejected" and candidate == version):
            candidate = None
    return Pointers(stable, candidate)


def assert_agree(root: Path, when: str) -> None:
    """What a reader sees agrees at once; after one more write the files agree by themselves,
    every line whole, none twice, no temp file left."""
    registry = Registry(root)
    assert replay(registry.history(MODEL)) == registry.pointers(MODEL), when
    registry.record(MODEL, "check", None, when=when)
    model_dir = root / MODEL
    lines = (model_dir / "history.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line whole
    assert len(set(lines)) == len(lines), f"{when}: a history line written twice"
    assert replay(events) == registry.pointers(MODEL), when
    assert not [p.name for p in model_dir.iterdir()
                if p.name.startswith(".") and p.name != ".lock"], when


def fresh(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(REAL_ROOT, dest, ignore=shutil.ignore_patterns(".lock", ".register-*"))
    return dest


@pytest.mark.parametrize("op, before, after", [
    ("promote", Pointers("v1", None), Pointers("v2", None)),
    ("set_candidate", Pointers("v1", None), Pointers("v1", "v2")),
    ("clear_candidate", Pointers("v1", "v2"), Pointers("v1", None)),
    ("reject", Pointers("v1", "v2"), Pointers("v1", None)),
])
def test_a_writer_killed_at_each_durable_step_leaves_pointer_and_history_agreeing(
        tmp_path, op, before, after):
    for n in range(1, 13):
        root = fresh(tmp_path, f"{op}-{n}")
        done = subprocess.run([sys.executable, str(WRITER), str(root), "crash", op, str(n)],
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 3:  # the operation has fewer durable steps: all of them tried
            break
        assert done.returncode == -9, done.stderr
        assert Registry(root).pointers(MODEL) in (before, after)  # all or nothing
        assert_agree(root, f"{op} killed at step {n}")
    else:
        pytest.fail(f"{op} still not finished after 12 steps")
    assert n > 2


@pytest.mark.slow
def test_writers_killed_at_random_moments_leave_pointer_and_history_agreeing(tmp_path):
    root = fresh(tmp_path, "registry")
    rng = random.Random(9)
    for i in range(KILLS):
        writer = subprocess.Popen([sys.executable, str(WRITER), str(root), "loop"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline() == "ready\n", writer.stderr.read()
            time.sleep(rng.uniform(0.0, 0.06))  # the random moment of the kill
            assert writer.poll() is None, writer.stderr.read()
        finally:
            writer.kill()
            writer.wait(10)
            writer.stdout.close()
            writer.stderr.close()
        assert_agree(root, f"kill {i}")
    moves = [e for e in Registry(root).history(MODEL)
             if e["event"] in ("promoted", "candidate_set", "candidate_cleared", "rejected")]
    assert len(moves) > KILLS  # the writers did move the pointers between the kills


def test_a_torn_last_line_is_repaired_before_the_next_write(registry, root):
    path = root / MODEL / "history.jsonl"
    with open(path, "a") as fh:
        fh.write('{"ts": "2026-01-01T00:00:00+00:00", "event": "prom')
    registry.promote(MODEL, "v2")
    events = registry.history(MODEL)  # was: history.jsonl:4: not valid JSON
    assert [json.loads(line) for line in path.read_text().splitlines()] == events
    assert [e["event"] for e in events[3:]] == ["history_repaired", "promoted"]
    assert events[3]["dropped"] == '{"ts": "2026-01-01T00:00:00+00:00", "event": "prom'
    assert registry.pointers(MODEL) == Pointers("v2", None)


def test_a_whole_last_line_without_its_newline_is_kept(registry, root):
    path = root / MODEL / "history.jsonl"
    with open(path, "a") as fh:
        fh.write('{"ts":"2026-01-01T00:00:00+00:00","event":"note","model":"risk-score",'
                 '"version":null}')
    registry.record(MODEL, "tick", None)
    assert [e["event"] for e in registry.history(MODEL)[3:]] == ["note", "tick"]
    assert path.read_text().endswith("}\n") and len(path.read_text().splitlines()) == 5


def test_promote_again_after_a_lost_history_line_restores_it(registry, root):
    """The state a crash between the two files left with the old writer: pointers.json moved,
    no 'promoted' line. The pointer file says which event set it, so the next write adds it."""
    registry.promote(MODEL, "v2", reason="first")
    path = root / MODEL / "history.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))  # the 'promoted' line never reached the disk
    assert registry.history(MODEL)[-1]["event"] == "promoted"  # readers see it at once
    assert registry.promote(MODEL, "v2") == Pointers("v2", None)  # a no-op for the pointer...
    assert path.read_text().splitlines(keepends=True) == lines  # ...that restores the line


def test_leftover_temp_files_are_cleaned_by_the_next_write(registry, root):
    model_dir = root / MODEL
    (model_dir / ".pointers.json.abc123.tmp").write_text('{"stable": "v2"')
    (model_dir / ".register-v3.xyz").mkdir()
    (model_dir / ".register-v3.xyz" / "model.json").write_text("{")
    registry.record(MODEL, "tick", None)
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".")) == [".lock"]
    assert registry.pointers(MODEL) == Pointers("v1", None)

