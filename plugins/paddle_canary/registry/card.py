"""Model cards: what a version is, what it takes, and what its scores looked like offline.

A version directory holds the Paddle 3 inference export (``model.json`` + ``model.pdiparams``,
as ``paddle.jit.save`` writes them), ``card.yaml`` and ``reference.csv`` (a small committed
sample of raw inputs, header = feature names). :meth:`ModelCard.from_dir` reads and checks all
of it without importing Paddle; loading the export is :mod:`export_check`'s job.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from paddle_canary import telemetry
from paddle_canary.registry.errors import RegistryError
from paddle_canary.registry.names import check_model_name, check_version_name

PROGRAM_FILE = "model.json"
PARAMS_FILE = "model.pdiparams"
CARD_FILE = "card.yaml"
REFERENCE_FILE = "reference.csv"
REQUIRED_FILES = (PROGRAM_FILE, PARAMS_FILE, CARD_FILE, REFERENCE_FILE)
SUPPORTED_DTYPES = ("float32",)
# Edges of the reference score histogram: the serving score histogram's, with 0 in front.
HISTOGRAM_EDGES = (0.0, *telemetry.SCORE_BUCKETS)


def score_histogram(scores: np.ndarray) -> dict:
    """Counts of ``scores`` per bucket of :data:`HISTOGRAM_EDGES`.

    Bucket i holds edges[i] < s <= edges[i+1] (Prometheus ``le`` semantics; bucket 0 also holds
    0). Non-finite scores are not bucketed; they are counted in ``non_finite``.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    finite = scores[np.isfinite(scores)]
    idx = np.searchsorted(np.asarray(HISTOGRAM_EDGES[1:]), np.clip(finite, 0.0, 1.0), side="left")
    counts = np.bincount(idx, minlength=len(HISTOGRAM_EDGES) - 1)
    return {"edges": list(HISTOGRAM_EDGES), "counts": [int(c) for c in counts],
            "non_finite": int(scores.size - finite.size)}


def content_hash(program_path: Path, params_path: Path) -> str:
    """``sha256:<hex>`` over the program bytes then the parameter bytes."""
    digest = hashlib.sha256()
    for path in (program_path, params_path):
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _need(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise RegistryError(f"{where}: missing field '{key}'")
    value = mapping[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise RegistryError(f"{where}: field '{key}' must be {names}, got {value!r}")
    return value


@dataclass(frozen=True)
class ModelCard:
    """One version's card, checked on load. ``content_hash`` is computed from the files."""

    model: str
    version: str
    path: Path
    input_name: str
    input_dtype: str
    feature_names: tuple[str, ...]
    decision_threshold: float
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    reference_histogram: dict = field(default_factory=dict)
    content_hash: str = ""
    description: str = ""
    output_name: str | None = None
    reference_rows: int = 0

    @property
    def program_path(self) -> Path:
        return self.path / PROGRAM_FILE

    @property
    def params_path(self) -> Path:
        return self.path / PARAMS_FILE

    @property
    def card_path(self) -> Path:
        return self.path / CARD_FILE

    @property
    def reference_path(self) -> Path:
        return self.path / REFERENCE_FILE

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def decision(self, score: float) -> str:
        """``"reject"`` when ``score >= decision_threshold``, else ``"approve"``."""
        return "reject" if score >= self.decision_threshold else "approve"

    def reference_inputs(self) -> np.ndarray:
        """The reference sample as float32, shape (rows, n_features), columns in card order."""
        return read_reference(self.reference_path, self.feature_names)

    @classmethod
    def from_dir(cls, path: Path | str, model: str | None = None,
                 version: str | None = None) -> "ModelCard":
        """Read and check the card in ``path`` (a version directory or an export to register).

        When ``model``/``version`` are given the card must name the same ones. Raises
        :class:`RegistryError` naming the first problem found.
        """
        path = Path(path)
        if not path.is_dir():
            raise RegistryError(f"{path}: not a directory")
        missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
        if missing:
            raise RegistryError(f"{path}: missing {', '.join(missing)} "
                                f"(an export needs {', '.join(REQUIRED_FILES)})")
        where = str(path / CARD_FILE)
        try:
            raw = yaml.safe_load((path / CARD_FILE).read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{where}: not valid YAML ({exc})") from None
        if not isinstance(raw, dict):
            raise RegistryError(f"{where}: must be a mapping, got {type(raw).__name__}")

        card_model = check_model_name(_need(raw, "model", str, where))
        card_version = check_version_name(_need(raw, "version", str, where))
        if model is not None and card_model != model:
            raise RegistryError(f"{where}: card is for model '{card_model}', not '{model}'")
        if version is not None and card_version != version:
            raise RegistryError(f"{where}: card is for version '{card_version}', not '{version}'")

        inp = _need(raw, "input", dict, where)
        input_name = _need(inp, "name", str, f"{where}: input")
        dtype = _need(inp, "dtype", str, f"{where}: input")
        if dtype not in SUPPORTED_DTYPES:
            raise RegistryError(f"{where}: input dtype {dtype!r} not supported "
                                f"(supported: {', '.join(SUPPORTED_DTYPES)})")
        features = _need(inp, "features", list, f"{where}: input")
        if not features or not all(isinstance(f, str) and f for f in features):
            raise RegistryError(f"{where}: input.features must be a non-empty list of names")
        if len(set(features)) != len(features):
            dup = sorted({f for f in features if features.count(f) > 1})
            raise RegistryError(f"{where}: duplicate feature names {dup}")

        threshold = _need(raw, "decision_threshold", (int, float), where)
        if not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
            raise RegistryError(f"{where}: decision_threshold must be in [0, 1], got {threshold}")

        ref = _need(raw, "reference", dict, where)
        hist = _need(ref, "histogram", dict, f"{where}: reference")
        edges = _need(hist, "edges", list, f"{where}: reference.histogram")
        counts = _need(hist, "counts", list, f"{where}: reference.histogram")
        if len(edges) != len(HISTOGRAM_EDGES) or any(
                abs(float(a) - b) > 1e-9 for a, b in zip(edges, HISTOGRAM_EDGES)):
            raise RegistryError(f"{where}: reference.histogram.edges must be "
                                f"{list(HISTOGRAM_EDGES)} (the serving score buckets)")
        if len(counts) != len(edges) - 1 or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise RegistryError(f"{where}: reference.histogram.counts must be "
                                f"{len(edges) - 1} non-negative integers")

        training = raw.get("training") or {}
        metrics = raw.get("metrics") or {}
        for key, value in (("training", training), ("metrics", metrics)):
            if not isinstance(value, dict):
                raise RegistryError(f"{where}: '{key}' must be a mapping")
        output = raw.get("output") or {}
        rows = read_reference(path / REFERENCE_FILE, tuple(features))
        return cls(
            model=card_model, version=card_version, path=path.resolve(),
            input_name=input_name, input_dtype=dtype, feature_names=tuple(features),
            decision_threshold=float(threshold), training=training, metrics=metrics,
            reference_histogram={"edges": [float(e) for e in edges], "counts": list(counts),
                                 "non_finite": int(hist.get("non_finite", 0) or 0)},
            content_hash=content_hash(path / PROGRAM_FILE, path / PARAMS_FILE),
            description=str(raw.get("description", "") or ""),
            output_name=output.get("name") if isinstance(output, dict) else None,
            reference_rows=int(rows.shape[0]),
        )


def export_as(src: Path | str, dest: Path | str, version: str, model: str | None = None) -> Path:
    """Copy the export in ``src`` to ``dest`` with its card naming ``version`` (and ``model``):
    the same model files registered again under another name (A/A tests, benchmarks)."""
    import re
    import shutil

    check_version_name(version)
    dest = Path(dest)
    shutil.copytree(src, dest)
    card = dest / "card.yaml"
    text = re.sub(r"(?m)^version: .*$", f"version: {version}", card.read_text(), count=1)
    if model is not None:
        text = re.sub(r"(?m)^model: .*$", f"model: {check_model_name(model)}", text, count=1)
    card.write_text(text)
    return dest


def read_reference(path: Path, feature_names: tuple[str, ...]) -> np.ndarray:
    """Read a reference CSV whose header must equal ``feature_names``; float32 rows."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise RegistryError(f"{path}: empty file (expected a header row)")
            if tuple(header) != tuple(feature_names):
                raise RegistryError(f"{path}: header does not match the card's features "
                                    f"({len(header)} columns vs {len(feature_names)} features)")
            rows = []
            for lineno, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise RegistryError(f"{path}:{lineno}: {len(row)} values, "
                                        f"expected {len(header)}")
                try:
                    rows.append([float(v) for v in row])
                except ValueError as exc:
                    raise RegistryError(f"{path}:{lineno}: {exc}") from None
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read ({exc.strerror})") from None
    if not rows:
        raise RegistryError(f"{path}: no data rows")
    data = np.asarray(rows, dtype=np.float32)
    if not np.isfinite(data).all():
        raise RegistryError(f"{path}: non-finite values in the reference sample")
    return data
