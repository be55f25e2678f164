"""The shadow: a candidate's serving process also scores every answered request with the
stable version (``serve --shadow``), exports paired series, never returns the shadow's answer
and keeps the shadow's time out of its own latency."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import numpy as np
import pytest
from serve_helpers import Serve

from paddle_canary import telemetry
from paddle_canary.process import wait_until
from paddle_canary.registry import Registry
from paddle_canary.serving.metrics import ServingMetrics
from paddle_canary.serving.predictor import Predictor

MODEL = "risk-score"


def series(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def get(s: dict[str, float], name: str, **labels) -> float:
    hits = [v for k, v in s.items() if k.startswith(name + "{")
            and all(f'{lk}="{lv}"' in k for lk, lv in labels.items())]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


def test_paired_counts_flips_by_direction_and_sums():
    m = ServingMetrics(MODEL, "v2", "sha256:c", "cpu", shadow_version="v1",
                       shadow_hash="sha256:s")
    # candidate, stable: approve->reject, reject->approve, both reject, both approve; 1.2 clips
    m.scored_paired([0.6, 0.2, 1.2, 0.1], [0.4, 0.7, 0.9, 0.1], 0.5, 0.5)
    s = series(m.exposition().decode())
    lab = {"model": MODEL, "version": "v2", telemetry.SHADOW_LABEL: "v1"}
    assert get(s, telemetry.PAIRED_ROWS, **lab) == 4
    assert get(s, telemetry.PAIRED_FLIPS, direction="approve_to_reject", **lab) == 1
    assert get(s, telemetry.PAIRED_FLIPS, direction="reject_to_approve", **lab) == 1
    assert get(s, telemetry.PAIRED_SCORE_SUM, scorer="candidate", **lab) == pytest.approx(1.9)
    assert get(s, telemetry.PAIRED_SCORE_SUM, scorer="stable", **lab) == pytest.approx(2.1)
    assert get(s, telemetry.PAIRED_DIFF_SQ, **lab) == pytest.approx(0.04 + 0.25 + 0.01)
    assert get(s, telemetry.SHADOW_INFO, shadow_content_hash="sha256:s", **lab) == 1
    for reason in telemetry.SKIP_REASONS:
        assert get(s, telemetry.SHADOW_SKIPPED, reason=reason, **lab) == 0
    # a process without a shadow exposes none of them
    plain = m.exposition().decode(), ServingMetrics(MODEL, "v1", "h", "cpu").exposition()
    assert b"paired" not in plain[1] and b"shadow" not in plain[1]


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")
def test_promtool_accepts_the_paired_series():
    m = ServingMetrics(MODEL, "v2", "sha256:c", "cpu", shadow_version="v1", shadow_hash="h")
    m.scored_paired([0.6], [0.4], 0.5, 0.5)
    m.shadow_skipped("overload")
    m.shadow_time(0.002)
    out = subprocess.run(["promtool", "check", "metrics"], input=m.exposition(),
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def v2_with_shadow(tmp_path_factory, registry_root):
    s = Serve(tmp_path_factory.mktemp("shadow"), MODEL, "v2", "--shadow", "v1",
              registry_root=registry_root).ready()
    yield s
    s.stop()


@pytest.mark.slow
def test_every_answered_request_is_paired_and_counted_exactly(v2_with_shadow, registry_root):
    reg = Registry(registry_root)
    v1, v2 = reg.card(MODEL, "v1"), reg.card(MODEL, "v2")
    rows = v1.reference_inputs()
    s1 = Predictor(v1, device="cpu").predict(rows).astype(float)
    s2 = Predictor(v2, device="cpu").predict(rows).astype(float)
    with httpx.Client(base_url=v2_with_shadow.url, timeout=10) as client:
        for i, row in enumerate(rows):
            r = client.post("/predict", json={"user_id": f"u{i}", "features": row.tolist()})
            assert r.status_code == 200
            body = r.json()
            assert body["model_version"] == "v2"                 # never the shadow's answer
            assert body["score"] == pytest.approx(s2[i], abs=1e-6)
        r = client.post("/predict/batch", json={"user_id": "b", "instances": rows[:50].tolist()})
        assert r.status_code == 200
        assert client.post("/predict", json={"user_id": "x", "features": [1]}).status_code == 422
        lab = {"model": MODEL, "version": "v2", telemetry.SHADOW_LABEL: "v1"}
        s = wait_until(lambda: (lambda m: m if get(m, telemetry.PAIRED_ROWS, **lab) == 250
                                else None)(series(client.get("/metrics").text)), 10,
                       what="250 paired rows")
        deep = client.get("/deep_health").json()
    assert deep["shadow"] == "v1"
    idx = np.r_[np.arange(200), np.arange(50)]
    c, st = s2[idx], s1[idx]
    up = int(np.sum((c >= 0.5) & (st < 0.5)))
    down = int(np.sum((st >= 0.5) & (c < 0.5)))
    assert up >= 1 and down >= 1      # v2 vs v1: 1 of the 200 reference rows each way
    assert get(s, telemetry.PAIRED_FLIPS, direction="approve_to_reject", **lab) == up
    assert get(s, telemetry.PAIRED_FLIPS, direction="reject_to_approve", **lab) == down
    assert get(s, telemetry.PAIRED_SCORE_SUM, scorer="candidate", **lab) == pytest.approx(
        c.sum(), abs=1e-4)
    assert get(s, telemetry.PAIRED_SCORE_SUM, scorer="stable", **lab) == pytest.approx(
        st.sum(), abs=1e-4)
    assert get(s, telemetry.PAIRED_DIFF_SQ, **lab) == pytest.approx(((c - st) ** 2).sum(),
                                                                    abs=1e-4)
    # the candidate's own series count only its own answers: 201 requests, 250 rows
    assert get(s, telemetry.REQUEST_LATENCY + "_count", model=MODEL, version="v2") == 201
    assert get(s, telemetry.SCORE + "_count", model=MODEL, version="v2") == 250
    assert get(s, telemetry.SHADOW_SECONDS, **lab) > 0


@pytest.mark.slow
def test_the_shadows_time_is_not_in_the_candidates_latency(tmp_path, registry_root,
                                                           broken_registry_root):
    """Shadowed by bad-slow (~25 ms a row), v1 still measures only its own answers."""
    s = Serve(tmp_path, MODEL, "v1", "--shadow", "bad-slow", "--shadow-registry",
              str(broken_registry_root), registry_root=registry_root).ready()
    try:
        rows = Registry(registry_root).card(MODEL, "v1").reference_inputs()
        with httpx.Client(base_url=s.url, timeout=10) as client:
            for i in range(40):
                assert client.post("/predict", json={"user_id": "u", "features":
                                                     rows[i].tolist()}).status_code == 200
            lab = {"model": MODEL, "version": "v1", telemetry.SHADOW_LABEL: "bad-slow"}
            m = wait_until(lambda: (lambda x: x if get(x, telemetry.PAIRED_ROWS, **lab) == 40
                                    else None)(series(client.get("/metrics").text)), 20,
                           what="40 paired rows")
    finally:
        s.stop()
    # the shadow's time (bad-slow: ~25 ms a row, ~1 s in all) is not in the candidate's
    # latency: all 40 answers together took a small fraction of it
    shadow_s = get(m, telemetry.SHADOW_SECONDS, **lab)
    answered_s = get(m, telemetry.REQUEST_LATENCY + "_sum", model=MODEL, version="v1")
    assert get(m, telemetry.REQUEST_LATENCY + "_count", model=MODEL, version="v1") == 40
    assert answered_s < shadow_s / 4, (answered_s, shadow_s)


@pytest.mark.slow
@pytest.mark.parametrize("extra, why", [
    (["--shadow", "v2"], "is the version being served"),
    (["--shadow", "v9"], "v9"),
])
def test_a_shadow_the_caller_got_wrong_is_refused_at_start(tmp_path, registry_root, extra,
                                                            why):
    s = Serve(tmp_path, MODEL, "v2", *extra, registry_root=registry_root)
    try:
        assert s.exit_code() == 2
    finally:
        s.stop()
    assert why in s.log.read_text()


@pytest.mark.slow
def test_a_shadow_too_large_to_load_twice_is_left_out_and_said_so(tmp_path, registry_root):
    s = Serve(tmp_path, MODEL, "v2", "--shadow", "v1", "--shadow-max-mb", "0.0001",
              registry_root=registry_root).ready()
    try:
        text = httpx.get(f"{s.url}/metrics", timeout=5).text
        assert telemetry.PAIRED_ROWS not in text and telemetry.SHADOW_INFO not in text
        assert httpx.get(f"{s.url}/deep_health", timeout=5).json()["shadow"] is None
    finally:
        s.stop()
    lines = [json.loads(x) for x in s.log.read_text().splitlines() if x.startswith("{")]
    off = [x for x in lines if x.get("event") == "shadow off"]
    assert off and "over --shadow-max-mb" in off[0]["reason"]
