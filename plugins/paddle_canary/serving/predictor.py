"""Paddle Inference over one exported model version: rows of features in, scores out.

A Paddle predictor is not thread-safe (wrong outputs were seen with four threads sharing one),
so :class:`Predictor` keeps a pool of clones: each call borrows an idle clone (cloning a new one
when every clone is busy) and gives it back afterwards. Clones share the weights; a clone costs
a few milliseconds once. Any number of threads may call :meth:`Predictor.predict` at once.

``paddle`` is imported when the first predictor is built, not when this module is imported,
so the CLI, the runtime and the tests that do not score anything stay fast.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

from paddle_canary.errors import UserError

DEVICES = ("auto", "cpu", "gpu")
GPU_MEMORY_MB = 256  # initial GPU memory pool; Paddle grows it when a batch needs more


class ModelLoadError(UserError):
    """The exported model cannot be loaded or does not accept the input its card describes."""


class ModelSpec(Protocol):
    """What the predictor needs from a model card (``registry.ModelCard`` has all of it)."""

    model: str
    version: str
    program_path: Path
    params_path: Path
    input_name: str
    n_features: int


# Dead intermediate tensors are handed to Paddle's collector thread once this much (GB) has
# piled up. Paddle's default, 0, hands them over op by op: for a network this small the hand-off
# (a spinning helper thread) costs more than the inference (v1, 1-16 rows: ~46 -> ~25 µs CPU
# per call). -1 (never collect) is a little faster still, but a large network then keeps every
# intermediate of its largest batch (bad-slow after 1024 rows: 1.25 GB instead of 0.35 GB).
EAGER_DELETE_GB = 0.01


def import_paddle_inference():
    """Import ``paddle.inference`` quietly (no glog INFO lines, no ccache warning) and set the
    executor's garbage threshold (:data:`EAGER_DELETE_GB`; the flag is process-wide)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import paddle
        import paddle.inference
    paddle.set_flags({"FLAGS_eager_delete_tensor_gb": EAGER_DELETE_GB})
    return paddle, paddle.inference


def gpu_available(paddle) -> bool:
    if not paddle.is_compiled_with_cuda():
        return False
    try:
        return paddle.device.cuda.device_count() > 0
    except Exception:  # noqa: BLE001 - a CUDA build on a machine without a driver
        return False


def first_line(exc: BaseException) -> str:
    """The informative line of a Paddle error (they carry a C++ stack and hints)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("(", "InvalidArgument", "NotFound", "PreconditionNotMet")):
            return ln[:300]
    skip = ("--", "C++ Traceback", "Error Message Summary", "[operator", "[Hint")
    useful = [ln for ln in lines if not ln.startswith(skip) and not ln[0].isdigit()]
    return (useful or lines or [type(exc).__name__])[0][:300]


class Predictor:
    """Scores rows of ``n_features`` float32 features with one model version.

    ``device``: ``"auto"`` uses GPU 0 when Paddle was built with CUDA and a device is present,
    otherwise the CPU; ``"gpu"`` insists on a GPU; ``"cpu"`` never uses one. ``threads`` is the
    CPU math-library thread count per call. ``mkldnn`` turns oneDNN on (off by default: for
    this small network it is ~3.5x slower at batch 1, see bench/RESULTS.md "Serving").
    """

    def __init__(self, card: ModelSpec, device: str = "auto", threads: int = 1,
                 mkldnn: bool = False):
        if device not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if int(threads) < 1:
            raise UserError(f"threads must be at least 1, got {threads}")
        self.model, self.version = card.model, card.version
        self.input_name = card.input_name
        self.n_features = int(card.n_features)
        what = f"model {card.model} {card.version}"
        for path in (Path(card.program_path), Path(card.params_path)):
            if not path.is_file():
                raise ModelLoadError(f"cannot load {what}: {path} is missing")

        paddle, inference = import_paddle_inference()
        use_gpu = device == "gpu" or (device == "auto" and gpu_available(paddle))
        if use_gpu and not gpu_available(paddle):
            raise ModelLoadError(f"cannot load {what} on a GPU: this Paddle build or machine "
                                 "has none (use --device cpu or auto)")
        config = inference.Config(str(card.program_path), str(card.params_path))
        if use_gpu:
            config.enable_use_gpu(GPU_MEMORY_MB, 0)
            self.device = "gpu:0"
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(int(threads))
            if mkldnn:
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
            self.device = "cpu"
        config.disable_glog_info()
        try:
            template = inference.create_predictor(config)
        except Exception as exc:  # noqa: BLE001 - Paddle raises RuntimeError/ValueError/...
            raise ModelLoadError(f"cannot load {what}: {first_line(exc)}") from None
        inputs = list(template.get_input_names())
        if inputs != [self.input_name]:
            raise ModelLoadError(f"cannot load {what}: the program takes inputs {inputs}, "
                                 f"its card says [{self.input_name!r}]")
        self._output_name = template.get_output_names()[0]
        self._template = template  # never run; only cloned, under the lock
        self._clone_lock = threading.Lock()
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._idle.put(self._clone())
        try:  # the card's input shape must be what the program accepts
            self.predict(np.zeros((2, self.n_features), dtype=np.float32))
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"cannot load {what}: the program does not accept the card's input "
                f"({self.n_features} float32 features named {self.input_name!r}): "
                f"{first_line(exc)}") from None

    def _clone(self) -> tuple:
        """A new clone with its input and output handles (looking a handle up costs ~40 µs,
        more than running this network, so each clone keeps its own)."""
        with self._clone_lock:
            clone = self._template.clone()
        return (clone, clone.get_input_handle(self.input_name),
                clone.get_output_handle(self._output_name))

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Scores for ``rows`` (shape ``(n, n_features)``, or one row), as float32 ``(n,)``.

        Scores are returned as the model computed them, NaN included: judging them is the
        caller's business.
        """
        x = np.ascontiguousarray(rows, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.n_features or x.shape[0] == 0:
            raise ValueError(f"expected rows of shape (n>=1, {self.n_features}), "
                             f"got {tuple(np.shape(rows))}")
        try:
            slot = self._idle.get_nowait()
        except queue.Empty:
            slot = self._clone()
        predictor, in_handle, out_handle = slot
        try:
            in_handle.reshape(list(x.shape))
            in_handle.copy_from_cpu(x)
            predictor.run()
            out = out_handle.copy_to_cpu()
        finally:
            self._idle.put(slot)
        scores = np.asarray(out, dtype=np.float32).reshape(-1)
        if scores.shape[0] != x.shape[0]:
            raise ModelLoadError(
                f"model {self.model} {self.version} returned {out.shape} for {x.shape[0]} "
                "rows; expected one score per row")
        return scores
