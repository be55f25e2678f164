"""Does an export load and run with Paddle Inference? (used by ``Registry.register``)

A private, minimal loader: CPU, one math thread, oneDNN off, glog quiet. The serving package has
the real predictor; this one only answers "does it load, does its signature match the card, does
it score the reference rows". Paddle is imported inside the function so that reading the registry
never pays for ``import paddle``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from paddle_canary.registry.card import ModelCard
from paddle_canary.registry.errors import RegistryError


def create_cpu_predictor(program_path, params_path):
    """A Paddle Inference predictor on CPU with one math thread (raises what Paddle raises)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paddle warns about ccache on import
        from paddle import inference

    config = inference.Config(str(program_path), str(params_path))
    config.disable_gpu()
    config.disable_mkldnn()
    config.disable_glog_info()
    config.set_cpu_math_library_num_threads(1)
    return inference.create_predictor(config)


def run_predictor(predictor, rows: np.ndarray) -> np.ndarray:
    """Feed ``rows`` to the predictor's single input; return its first output as an array."""
    name = predictor.get_input_names()[0]
    handle = predictor.get_input_handle(name)
    handle.reshape(list(rows.shape))
    handle.copy_from_cpu(np.ascontiguousarray(rows))
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


def declared_inputs(program_path: Path) -> dict[str, list[int]] | None:
    """Input names and shapes declared in a PIR ``model.json`` (``-1`` = any size).

    Paddle Inference does not report an input's shape before it is fed, so the program's
    ``data`` ops are read instead. ``None`` when the file is not in the PIR JSON form known here.
    """
    try:
        program = json.loads(Path(program_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    found: dict[str, list[int]] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            if str(node.get("#", "")).endswith(".data") and isinstance(node.get("A"), list):
                attrs = {a.get("N"): (a.get("AT") or {}).get("D")
                         for a in node["A"] if isinstance(a, dict)}
                if isinstance(attrs.get("name"), str) and isinstance(attrs.get("shape"), list):
                    found[attrs["name"]] = list(attrs["shape"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(program)
    return found or None


def check_export(card: ModelCard) -> dict:
    """Load ``card``'s export, check its signature and score its reference rows.

    Returns figures for the history (shapes, non-finite count, load time). Raises
    :class:`RegistryError` naming the problem when it does not load, its input is not
    ``[None, n_features]`` named as the card says, or it does not give one score per row.
    """
    where = f"{card.path}"
    start = time.perf_counter()
    try:
        predictor = create_cpu_predictor(card.program_path, card.params_path)
    except Exception as exc:  # noqa: BLE001 - Paddle raises many types for a bad export
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(f"{where}: does not load with Paddle Inference: {first}") from None
    load_s = time.perf_counter() - start

    inputs = list(predictor.get_input_names())
    if inputs != [card.input_name]:
        raise RegistryError(f"{where}: export inputs are {inputs}, card says one input "
                            f"'{card.input_name}'")
    shape = (declared_inputs(card.program_path) or {}).get(card.input_name)
    if shape is not None and (len(shape) != 2 or shape[1] != card.n_features or shape[0] != -1):
        shown = [None if d == -1 else d for d in shape]
        raise RegistryError(f"{where}: export input '{card.input_name}' has shape {shown}, card "
                            f"needs [None, {card.n_features}] ({card.n_features} features)")
    outputs = list(predictor.get_output_names())
    if len(outputs) != 1:
        raise RegistryError(f"{where}: export has {len(outputs)} outputs {outputs}; need one score")

    rows = card.reference_inputs()
    try:
        scores = run_predictor(predictor, rows)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(f"{where}: fails to score the reference rows: {first}") from None
    if scores.shape not in ((rows.shape[0],), (rows.shape[0], 1)):
        raise RegistryError(f"{where}: output shape {list(scores.shape)} for "
                            f"{rows.shape[0]} rows; need one score per row")
    output_shape = [None, *scores.shape[1:]]
    scores = scores.reshape(-1).astype(np.float64)
    finite = np.isfinite(scores)
    return {
        "input_shape": [None, card.n_features],
        "output_shape": output_shape,
        "reference_rows": int(rows.shape[0]),
        "reference_non_finite": int((~finite).sum()),
        "reference_out_of_range": int(((scores[finite] < 0) | (scores[finite] > 1)).sum()),
        "load_ms": round(load_s * 1000, 1),
    }
