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

from paddle_canary.registry.card import ModelCard, read_reference
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


# ---- equivalence of two exports of the same version -------------------------------------------
#
# Float training is not bit-identical across CPUs (other SIMD paths, other summation orders), so
# "the training script reproduces a version" means: the same program, the same reference rows,
# scores within SCORE_ATOL on every reference row, and card figures that agree to their printed
# precision. Bytes are compared only for files no float arithmetic produced.

SCORE_ATOL = 1e-4      # measured across two x86 CPUs: differences of ~1e-7
FIGURE_ATOL = 2e-3     # printed figures: AUC/accuracy move by 1/200 per flipped row at most


def _close_figures(a, b, where: str, problems: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            problems.append(f"{where}: keys {sorted(a)} vs {sorted(b)}")
            return
        for key in a:
            _close_figures(a[key], b[key], f"{where}.{key}", problems)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _close_figures(x, y, f"{where}[{i}]", problems)
    elif (isinstance(a, float) or isinstance(b, float)) and not isinstance(a, bool) \
            and isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not abs(a - b) <= FIGURE_ATOL * max(1.0, abs(a)):
            problems.append(f"{where}: {a} vs {b}")
    elif a != b:
        problems.append(f"{where}: {a!r} vs {b!r}")


def _scores(directory: Path, rows: np.ndarray) -> np.ndarray:
    predictor = create_cpu_predictor(directory / "model.json", directory / "model.pdiparams")
    return run_predictor(predictor, rows).reshape(-1).astype(np.float64)


def export_differences(a: Path | str, b: Path | str) -> list[str]:
    """Why the export in directory ``b`` is not the same model as the one in ``a`` (empty when
    they are equivalent).

    The program (``model.json``, parsed) and the reference rows must be equal; scores on the
    reference rows equal within :data:`SCORE_ATOL` (NaN where the other has NaN); the cards'
    figures within their printed precision, and histogram counts may differ only by scores that
    lie within :data:`SCORE_ATOL` of a bin edge.
    """
    import yaml

    a, b = Path(a), Path(b)
    problems: list[str] = []
    if json.loads((a / "model.json").read_text()) != json.loads((b / "model.json").read_text()):
        problems.append("model.json: the programs differ")
    if (a / "reference.csv").read_bytes() != (b / "reference.csv").read_bytes():
        return problems + ["reference.csv: the reference rows differ"]
    card_a, card_b = (yaml.safe_load((d / "card.yaml").read_text()) for d in (a, b))
    rows = read_reference(a / "reference.csv", tuple(card_a["input"]["features"]))
    width = ((declared_inputs(a / "model.json") or {}).get(card_a["input"]["name"]) or [0, 0])[1]
    if 0 < width < rows.shape[1]:  # a fixture whose export takes fewer inputs than its card
        rows = rows[:, :width]
    sa, sb = _scores(a, rows), _scores(b, rows)
    if not np.array_equal(np.isnan(sa), np.isnan(sb)):
        problems.append("scores: NaN on different rows")
    finite = np.isfinite(sa) & np.isfinite(sb)
    worst = float(np.max(np.abs(sa[finite] - sb[finite]), initial=0.0))
    if worst > SCORE_ATOL:
        problems.append(f"scores differ by up to {worst:.2e} (> {SCORE_ATOL})")
    hist_a = card_a["reference"].pop("histogram", {})
    hist_b = card_b["reference"].pop("histogram", {})
    _close_figures(card_a, card_b, "card", problems)
    counts_a, counts_b = hist_a.get("counts") or [], hist_b.get("counts") or []
    if hist_a.get("edges") != hist_b.get("edges") or len(counts_a) != len(counts_b):
        problems.append("card.reference.histogram: bins differ")
    else:
        edges = np.asarray(hist_a["edges"], dtype=float)
        near_edge = int(sum(np.any(np.abs(s - edges) <= SCORE_ATOL) for s in sa[np.isfinite(sa)]))
        if sum(abs(x - y) for x, y in zip(counts_a, counts_b)) > 2 * near_edge:
            problems.append(f"card.reference.histogram: counts {counts_a} vs {counts_b}")
    return problems
