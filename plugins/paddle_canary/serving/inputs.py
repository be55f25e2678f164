"""Checks on a /predict body. Anything wrong raises :class:`InvalidInput` naming the problem.

Single: ``{"user_id": str, "features": [n numbers]}`` on ``POST /predict``.
Batch:  ``{"user_id": str, "instances": [[n numbers], ...]}`` on ``POST /predict/batch``.
Numbers are JSON ints or floats that are finite in float32; booleans, strings and null are
refused, and so are NaN/Infinity (not JSON at all, though Python's ``json`` accepts them).
Other fields in the body are ignored.
"""

from __future__ import annotations

import numpy as np
import orjson

MAX_USER_ID = 128
MAX_BODY_SINGLE = 64 * 1024
MAX_BODY_BATCH = 1024 * 1024
MAX_BATCH_ROWS = 1024
F32_MAX = float(np.finfo(np.float32).max)
_NUMBER_TYPES = {int, float}


class InvalidInput(Exception):
    """The caller's fault: answered with ``status`` (422, or 413 for an over-size body)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def parse_json(body: bytes) -> dict:
    if not body:
        raise InvalidInput("body is empty; expected a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        rest = body[exc.pos:exc.pos + 9].lstrip(b"-")
        if rest.startswith((b"NaN", b"Infinity")):
            raise InvalidInput("body has NaN or Infinity: features must be finite numbers "
                               "(and neither is valid JSON)") from None
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"body must be a JSON object, got {type(doc).__name__}")
    return doc


def user_id_of(doc: dict) -> str:
    uid = doc.get("user_id")
    if uid is None:
        raise InvalidInput("missing field 'user_id'")
    if not isinstance(uid, str):
        raise InvalidInput(f"'user_id' must be a string, got {type(uid).__name__}")
    if not uid.strip():
        raise InvalidInput("'user_id' is empty")
    if len(uid) > MAX_USER_ID:
        raise InvalidInput(f"'user_id' is {len(uid)} characters long; at most {MAX_USER_ID}")
    return uid


def row_of(values: object, n_features: int, where: str) -> list:
    if not isinstance(values, list):
        raise InvalidInput(f"'{where}' must be a list of {n_features} numbers, "
                           f"got {type(values).__name__}")
    if len(values) != n_features:
        raise InvalidInput(f"'{where}' has {len(values)} values; the model takes {n_features}")
    if not set(map(type, values)) <= _NUMBER_TYPES:  # bool is not int here: type(), not isinstance
        i, v = next((i, v) for i, v in enumerate(values) if type(v) not in _NUMBER_TYPES)
        shown = "null" if v is None else type(v).__name__
        raise InvalidInput(f"'{where}[{i}]' must be a number, got {shown}")
    # orjson only yields finite floats; what can still go wrong is float32 overflow.
    if max(values) > F32_MAX or min(values) < -F32_MAX:
        i = next(i for i, v in enumerate(values) if abs(v) > F32_MAX)
        raise InvalidInput(f"'{where}[{i}]' = {values[i]!r} is outside the float32 range")
    return values


def parse_single(body: bytes, n_features: int) -> tuple[str, list[list]]:
    """``(user_id, [row])`` from a single-prediction body; a row is ``n_features`` numbers."""
    doc = parse_json(body)
    uid = user_id_of(doc)
    if "features" not in doc:
        hint = " (batches go to /predict/batch)" if "instances" in doc else ""
        raise InvalidInput(f"missing field 'features'{hint}")
    row = row_of(doc["features"], n_features, "features")
    return uid, [row]


def parse_batch(body: bytes, n_features: int) -> tuple[str, list[list]]:
    """``(user_id, rows)`` from a batch body; each row is ``n_features`` numbers."""
    doc = parse_json(body)
    uid = user_id_of(doc)
    if "instances" not in doc:
        hint = " (single rows go to /predict)" if "features" in doc else ""
        raise InvalidInput(f"missing field 'instances'{hint}")
    inst = doc["instances"]
    if not isinstance(inst, list) or not inst:
        raise InvalidInput("'instances' must be a non-empty list of rows")
    if len(inst) > MAX_BATCH_ROWS:
        raise InvalidInput(f"'instances' has {len(inst)} rows; at most {MAX_BATCH_ROWS} "
                           "per request")
    rows = [row_of(r, n_features, f"instances[{i}]") for i, r in enumerate(inst)]
    return uid, rows
