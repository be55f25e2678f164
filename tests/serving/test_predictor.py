"""The Predictor over Paddle Inference: same scores as paddle.jit.load, correct under threads,
and a model that cannot load is refused with a one-line reason."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from paddle_canary.registry import ModelCard, Registry
from paddle_canary.serving.predictor import ModelLoadError, Predictor, import_paddle_inference


@pytest.fixture(scope="module")
def v1(registry_root):
    return Registry(registry_root).card("risk-score", "v1")


@pytest.fixture(scope="module")
def predictor(v1):
    return Predictor(v1, device="auto", threads=1)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_scores_equal_paddle_jit_load(registry_root, version):
    paddle, _ = import_paddle_inference()  # quietly
    card = Registry(registry_root).card("risk-score", version)
    rows = card.reference_inputs()
    layer = paddle.jit.load(str(card.path / "model"))
    layer.eval()
    expected = np.asarray(layer(paddle.to_tensor(rows))).reshape(-1)
    got = Predictor(card, device="cpu").predict(rows)
    assert got.shape == (len(rows),)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_device_is_cpu_without_a_gpu(predictor, v1):
    paddle, _ = import_paddle_inference()
    if paddle.is_compiled_with_cuda():
        pytest.skip("this Paddle build has CUDA")
    assert predictor.device == "cpu"
    with pytest.raises(ModelLoadError, match="GPU"):
        Predictor(v1, device="gpu")


def test_one_row_and_many_rows_agree(predictor, v1):
    rows = v1.reference_inputs()[:20]
    together = predictor.predict(rows)
    alone = np.concatenate([predictor.predict(r) for r in rows])  # 1-D rows are one row each
    np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-7)


def test_onednn_gives_the_same_scores(v1):
    rows = v1.reference_inputs()
    off = Predictor(v1, device="cpu", mkldnn=False).predict(rows)
    on = Predictor(v1, device="cpu", mkldnn=True).predict(rows)
    np.testing.assert_allclose(on, off, rtol=1e-4, atol=1e-5)


def test_wrong_shapes_are_refused(predictor):
    with pytest.raises(ValueError, match="shape"):
        predictor.predict(np.zeros((3, 29), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        predictor.predict(np.zeros((0, 30), dtype=np.float32))


@pytest.mark.slow
def test_concurrent_calls_equal_single_thread_outputs(predictor, v1):
    rows = v1.reference_inputs()
    # Different batch sizes per call, so a mixed-up predictor would show.
    batches = [rows[i % 150:i % 150 + 1 + i % 7] for i in range(60)]
    expected = [predictor.predict(b) for b in batches]
    mismatches: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for r in range(150):
                i = (k * 13 + r) % len(batches)
                if not np.array_equal(predictor.predict(batches[i]), expected[i]):
                    mismatches.append((k, i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert not any(t.is_alive() for t in threads)
    assert mismatches == []


def test_card_signature_mismatch_is_refused(broken_registry_root):
    card = Registry(broken_registry_root).card("risk-score", "bad-signature")
    with pytest.raises(ModelLoadError) as info:
        Predictor(card, device="cpu")
    message = str(info.value)
    assert "bad-signature" in message and "30 float32 features" in message
    assert "\n" not in message


def test_corrupted_params_are_refused(registry_root, tmp_path):
    src = Registry(registry_root).card("risk-score", "v1").path
    dst = tmp_path / "risk-score" / "v1"
    shutil.copytree(src, dst)
    (dst / "model.pdiparams").write_bytes(b"not a parameter file" * 20)
    card = ModelCard.from_dir(dst, "risk-score", "v1")
    with pytest.raises(ModelLoadError, match="cannot load model risk-score v1") as info:
        Predictor(card, device="cpu")
    assert "\n" not in str(info.value)


def test_missing_program_file_is_refused(registry_root, tmp_path):
    src = Registry(registry_root).card("risk-score", "v1").path
    dst = tmp_path / "risk-score" / "v1"
    shutil.copytree(src, dst)
    card = ModelCard.from_dir(dst, "risk-score", "v1")
    (dst / "model.json").unlink()
    with pytest.raises(ModelLoadError, match="model.json is missing"):
        Predictor(card, device="cpu")
