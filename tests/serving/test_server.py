"""`paddle-canary serve` as a real process over real HTTP: every endpoint, every bad input,
/metrics through promtool, JSON logs, and the versions answering as themselves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from paddle_canary import telemetry
from paddle_canary.registry import Registry
from paddle_canary.runtime.local import LocalRuntime

pytestmark = pytest.mark.slow
MODEL = "risk-score"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, registry_root):
    rt = LocalRuntime(tmp_path_factory.mktemp("serve"), registry_root=registry_root)
    yield rt
    for ep in rt.endpoints():
        rt.remove(ep.model, ep.version)


@pytest.fixture(scope="module")
def v1(runtime):
    return runtime.deploy(MODEL, "v1")


@pytest.fixture(scope="module")
def client(v1):
    with httpx.Client(base_url=v1.url, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def card(registry_root):
    return Registry(registry_root).card(MODEL, "v1")


@pytest.fixture(scope="module")
def rows(card):
    return card.reference_inputs()


def metric(client, name: str, **labels) -> float:
    want = {"model": MODEL, "version": "v1", **labels}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in want.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no series {name} {want}")


def test_predict_one_row(client, card, rows):
    from paddle_canary.serving.predictor import Predictor

    expected = Predictor(card, device="cpu").predict(rows[:1])[0]
    r = client.post("/predict", json={"user_id": "alice", "features": rows[0].tolist()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"score", "decision", "model_version", "request_id"}
    assert body["score"] == pytest.approx(float(expected), abs=1e-6)
    assert body["decision"] == card.decision(body["score"])
    assert body["model_version"] == "v1"
    assert r.headers[telemetry.VERSION_HEADER] == "v1"
    assert r.headers["x-request-id"] == body["request_id"]


def test_predict_batch(client, card, rows):
    r = client.post("/predict/batch", json={"user_id": "bob", "instances": rows[:50].tolist()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["scores"]) == len(body["decisions"]) == 50
    assert body["decisions"] == [card.decision(s) for s in body["scores"]]
    assert body["model_version"] == "v1" and r.headers[telemetry.VERSION_HEADER] == "v1"
    one = client.post("/predict", json={"user_id": "bob", "features": rows[7].tolist()}).json()
    assert one["score"] == pytest.approx(body["scores"][7], abs=1e-6)


def test_caller_request_id_is_kept(client, rows):
    r = client.post("/predict", json={"user_id": "u", "features": rows[0].tolist()},
                    headers={"X-Request-ID": "trace-123"})
    assert r.json()["request_id"] == "trace-123" and r.headers["x-request-id"] == "trace-123"


def test_health_and_deep_health(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = client.get("/deep_health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["version"] == "v1" and body["device"] == "cpu"
    assert body["rows"] == 8 and body["reference_rows"] == 200
    assert r.headers[telemetry.VERSION_HEADER] == "v1"


def test_unknown_route_and_wrong_method(client):
    assert client.get("/nope").status_code == 404
    r = client.get("/predict")
    assert r.status_code == 405 and "POST" in r.json()["error"]


BAD_BODIES = [
    ("wrong feature count", {"user_id": "u", "features": [0.1] * 29}, "has 29 values"),
    ("string feature", {"user_id": "u", "features": ["x"] + [0.1] * 29},
     "'features[0]' must be a number, got str"),
    ("null feature", {"user_id": "u", "features": [None] + [0.1] * 29}, "got null"),
    ("bool feature", {"user_id": "u", "features": [True] + [0.1] * 29}, "got bool"),
    ("missing user_id", {"features": [0.1] * 30}, "missing field 'user_id'"),
    ("empty user_id", {"user_id": "", "features": [0.1] * 30}, "'user_id' is empty"),
    ("overlong user_id", {"user_id": "u" * 500, "features": [0.1] * 30}, "at most 128"),
    ("float32 overflow", {"user_id": "u", "features": [1e39] + [0.1] * 29},
     "outside the float32 range"),
]
RAW_BAD = [
    ("NaN token", b'{"user_id": "u", "features": [NaN' + b", 0.1" * 29 + b"]}", "NaN or Infinity"),
    ("Infinity token", b'{"user_id": "u", "features": [Infinity' + b", 0.1" * 29 + b"]}",
     "NaN or Infinity"),
    ("not JSON", b"user_id=u&features=1", "not valid JSON"),
    ("empty body", b"", "body is empty"),
]


@pytest.mark.parametrize("what, doc, message", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_json_input_is_422_naming_the_problem(client, what, doc, message):
    r = client.post("/predict", json=doc)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("what, raw, message", RAW_BAD, ids=[b[0] for b in RAW_BAD])
def test_bad_raw_input_is_422_naming_the_problem(client, what, raw, message):
    r = client.post("/predict", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    assert client.get("/health").status_code == 200


def test_too_many_batch_rows_is_422(client):
    r = client.post("/predict/batch", json={"user_id": "u", "instances": [[0.1] * 30] * 1025})
    assert r.status_code == 422 and "at most 1024" in r.json()["error"]


def test_oversize_bodies_are_413(client):
    big = b'{"user_id": "u", "features": [' + b"0.1, " * 20000 + b"0.1]}"
    r = client.post("/predict", content=big)
    assert r.status_code == 413 and "at most 65536" in r.json()["error"]

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(200):
            yield b" " * 8192

    r = client.post("/predict/batch", content=chunks())
    assert r.status_code == 413 and "at most 1048576" in r.json()["error"]
    assert client.get("/health").status_code == 200


def test_metrics_count_what_happened_and_pass_promtool(client, rows):
    before = {o: metric(client, telemetry.REQUESTS, outcome=o)
              for o in ("ok", "invalid_input", "error")}
    decisions_before = {d: metric(client, telemetry.DECISIONS, decision=d)
                        for d in ("approve", "reject")}
    scores_before = metric(client, telemetry.SCORE + "_count")
    latency_before = metric(client, telemetry.REQUEST_LATENCY + "_count")
    answers = [client.post("/predict", json={"user_id": f"u{i}", "features": rows[i].tolist()})
               .json() for i in range(10)]
    batch = client.post("/predict/batch",
                        json={"user_id": "b", "instances": rows[10:15].tolist()}).json()
    client.post("/predict", json={"user_id": "x", "features": [1.0]})  # invalid
    assert metric(client, telemetry.REQUESTS, outcome="ok") == before["ok"] + 11
    assert metric(client, telemetry.REQUESTS, outcome="invalid_input") == \
        before["invalid_input"] + 1
    assert metric(client, telemetry.REQUESTS, outcome="error") == before["error"]
    decided = [a["decision"] for a in answers] + batch["decisions"]
    for d in ("approve", "reject"):
        assert metric(client, telemetry.DECISIONS, decision=d) == \
            decisions_before[d] + decided.count(d)
    assert metric(client, telemetry.SCORE + "_count") == scores_before + 15
    assert metric(client, telemetry.REQUEST_LATENCY + "_count") == latency_before + 11
    assert metric(client, telemetry.MODEL_INFO, device="cpu") == 1

    page = client.get("/metrics")
    assert page.headers["content-type"].startswith("text/plain")
    samples = [ln for ln in page.text.splitlines() if ln and not ln.startswith("#")]
    assert samples and all('model="risk-score"' in ln and 'version="v1"' in ln for ln in samples)
    if shutil.which("promtool"):
        out = subprocess.run(["promtool", "check", "metrics"], input=page.content,
                             capture_output=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr


def test_log_lines_are_json_with_model_version_request_id(client, runtime, rows):
    client.post("/predict", json={"user_id": "u", "features": rows[0].tolist()},
                headers={"X-Request-ID": "log-check-1"})
    client.post("/predict", json={"user_id": "u", "features": [1]},
                headers={"X-Request-ID": "log-check-2"})
    client.get("/health")  # flushes: lines are written once per event-loop iteration
    log = runtime.workdir / "logs" / f"{MODEL}--v1.log"
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]  # every line is JSON
    assert lines
    assert all(ln["model"] == MODEL and ln["version"] == "v1" and "request_id" in ln
               for ln in lines)
    by_id = {ln["request_id"]: ln for ln in lines if ln["request_id"]}
    assert by_id["log-check-1"]["event"] == "predict" and "latency_ms" in by_id["log-check-1"]
    assert by_id["log-check-1"]["decision"] in ("approve", "reject")
    assert by_id["log-check-2"]["outcome"] == "invalid_input"
    assert "has 1 values" in by_id["log-check-2"]["error"]
    assert any(ln["event"] == "ready" for ln in lines)


def test_v1_and_v2_side_by_side_answer_as_themselves(client, runtime, rows):
    v2 = runtime.deploy(MODEL, "v2")
    assert v2.port != runtime.deploy(MODEL, "v1").port
    with httpx.Client(base_url=v2.url, timeout=10) as c2:
        for c, version in ((client, "v1"), (c2, "v2")):
            r = c.post("/predict", json={"user_id": "u", "features": rows[3].tolist()})
            assert r.json()["model_version"] == version
            assert r.headers[telemetry.VERSION_HEADER] == version
            d = c.get("/deep_health")
            assert d.status_code == 200 and d.json()["version"] == version
            assert f'version="{version}"' in c.get("/metrics").text


def test_nan_model_fails_deep_health_and_answers_500_for_nan_rows(tmp_path,
                                                                  broken_registry_root):
    """bad-nan scores NaN for 50 of its 200 reference rows: /deep_health (which scores every
    reference row) says 503 with the reason; a request that hits a NaN row gets a 500 that is
    counted as a model error; the process stays up and answers good rows."""
    card = Registry(broken_registry_root).card(MODEL, "bad-nan")
    from paddle_canary.serving.predictor import Predictor

    scores = Predictor(card, device="cpu").predict(card.reference_inputs())
    nan_row = int(np.flatnonzero(np.isnan(scores))[0])
    ok_row = int(np.flatnonzero(~np.isnan(scores))[0])
    rt = LocalRuntime(tmp_path, registry_root=broken_registry_root)
    from paddle_canary.runtime.local import DeployError

    with pytest.raises(DeployError, match="not finite"):
        rt.deploy(MODEL, "bad-nan")  # /deep_health says 503: deploy stops it and refuses
    assert rt.endpoints() == []

    # Serve it directly to look at its answers.
    from paddle_canary import process

    port = process.free_port()
    proc = process.spawn([sys.executable, "-m", "paddle_canary.cli", "serve", "--model", MODEL,
                          "--version", "bad-nan", "--port", str(port), "--registry",
                          str(broken_registry_root), "--device", "cpu"], tmp_path / "nan.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            process.wait_until(lambda: c.get("/health").status_code == 200, 60,
                               what="bad-nan up")
            d = c.get("/deep_health")
            assert d.status_code == 503 and "not finite" in d.json()["reason"]
            r = c.post("/predict", json={"user_id": "u",
                                         "features": card.reference_inputs()[nan_row].tolist()})
            assert r.status_code == 500 and "non-finite" in r.json()["error"]
            assert "score" not in r.json()  # never a NaN score
            r = c.post("/predict/batch", json={"user_id": "u", "instances": card.reference_inputs()
                                               [[ok_row, nan_row]].tolist()})
            assert r.status_code == 500 and "row 1" in r.json()["error"]
            ok = c.post("/predict", json={"user_id": "u",
                                          "features": card.reference_inputs()[ok_row].tolist()})
            assert ok.status_code == 200 and np.isfinite(ok.json()["score"])
            errors = [ln for ln in c.get("/metrics").text.splitlines()
                      if ln.startswith(telemetry.REQUESTS) and 'outcome="error"' in ln]
            assert len(errors) == 1 and 'version="bad-nan"' in errors[0]
            assert float(errors[0].rsplit(" ", 1)[1]) == 2
    finally:
        process.stop_pid(proc.pid)


@pytest.mark.parametrize("how", ["bad-signature", "corrupted params", "unknown version"])
def test_a_model_that_cannot_load_exits_non_zero_with_one_clear_line(
        how, tmp_path, registry_root, broken_registry_root):
    if how == "bad-signature":
        registry, version, expect = broken_registry_root, "bad-signature", "30 float32 features"
    elif how == "corrupted params":
        registry, version = tmp_path / "reg", "v1"
        shutil.copytree(registry_root / MODEL / "v1", registry / MODEL / "v1")
        (registry / MODEL / "v1" / "model.pdiparams").write_bytes(b"\0garbage" * 64)
        expect = "cannot load model risk-score v1"
    else:
        registry, version, expect = registry_root, "v999", "v999"
    out = subprocess.run([sys.executable, "-m", "paddle_canary.cli", "serve", "--model", MODEL,
                          "--version", version, "--port", "1", "--registry", str(registry),
                          "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and expect in errors[0], out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("version, registry, rc", [
    ("v1", "model_registry", 0), ("bad-nan", "fixtures/broken_models", 1),
    ("bad-signature", "fixtures/broken_models", 1)])
def test_validate_prints_a_json_summary(version, registry, rc):
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "paddle_canary.cli", "validate", "--model", MODEL,
                          "--version", version, "--registry", str(repo / registry),
                          "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert out.returncode == rc, out.stderr
    summary = json.loads(out.stdout)
    assert summary["passed"] is (rc == 0)
    assert summary["version"] == version
    if rc == 0:
        assert summary["rows"] == 200 and summary["non_finite"] == 0
        assert 0 <= summary["score_min"] <= summary["score_max"] <= 1
    else:
        assert summary["problems"]


def test_slow_model_deploys_and_answers(tmp_path, broken_registry_root):
    """bad-slow (~15 ms a row) must still start and pass /deep_health: its fault is for the
    latency gate to find in live traffic, not for the health probe."""
    rt = LocalRuntime(tmp_path, registry_root=broken_registry_root)
    try:
        ep = rt.deploy(MODEL, "bad-slow")
        with httpx.Client(base_url=ep.url, timeout=30) as c:
            assert c.get("/deep_health").status_code == 200
            r = c.post("/predict", json={"user_id": "u", "features": [0.0] * 30})
            assert r.status_code == 200 and r.json()["model_version"] == "bad-slow"
    finally:
        for e in rt.endpoints():
            rt.remove(e.model, e.version)
