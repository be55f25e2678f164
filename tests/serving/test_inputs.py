"""Request bodies: what /predict accepts, and the message each bad body gets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paddle_canary.serving.inputs import (MAX_BATCH_ROWS, MAX_USER_ID, InvalidInput,
                                          parse_batch, parse_single)

N = 30
ROW = [0.5] * N


def body(**doc) -> bytes:
    return json.dumps(doc).encode()


def test_single_row_parses_to_one_row_of_numbers():
    uid, rows = parse_single(body(user_id="u1", features=[1] * 15 + [0.25] * 15), N)
    assert uid == "u1"
    assert np.array(rows, dtype=np.float32).shape == (1, N)
    assert rows[0][:2] == [1, 1] and rows[0][-1] == 0.25


def test_batch_parses_every_row():
    uid, rows = parse_batch(body(user_id="u1", instances=[ROW, ROW, ROW]), N)
    assert np.array(rows, dtype=np.float32).shape == (3, N)


def test_extra_fields_are_ignored():
    assert parse_single(body(user_id="u", features=ROW, note="x"), N)[0] == "u"


@pytest.mark.parametrize("raw, expected", [
    (b"", "body is empty"),
    (b"not json", "not valid JSON"),
    (b'{"user_id": "u", "features": [NaN]}', "NaN or Infinity"),
    (b'{"user_id": "u", "features": [-Infinity]}', "NaN or Infinity"),
    (b'[1, 2]', "must be a JSON object"),
    (body(features=ROW), "missing field 'user_id'"),
    (body(user_id=7, features=ROW), "'user_id' must be a string"),
    (body(user_id="", features=ROW), "'user_id' is empty"),
    (body(user_id="   ", features=ROW), "'user_id' is empty"),
    (body(user_id="u" * (MAX_USER_ID + 1), features=ROW), "at most 128"),
    (body(user_id="u"), "missing field 'features'"),
    (body(user_id="u", instances=[ROW]), "batches go to /predict/batch"),
    (body(user_id="u", features="0.5"), "'features' must be a list of 30 numbers"),
    (body(user_id="u", features=ROW[:29]), "'features' has 29 values; the model takes 30"),
    (body(user_id="u", features=ROW + [1]), "'features' has 31 values"),
    (body(user_id="u", features=ROW[:3] + ["1.0"] + ROW[4:]), "'features[3]' must be a number, got str"),
    (body(user_id="u", features=[True] + ROW[1:]), "'features[0]' must be a number, got bool"),
    (body(user_id="u", features=ROW[:5] + [None] + ROW[6:]), "'features[5]' must be a number, got null"),
    (body(user_id="u", features=ROW[:2] + [[1]] + ROW[3:]), "'features[2]' must be a number, got list"),
    (body(user_id="u", features=ROW[:9] + [1e39] + ROW[10:]), "'features[9]' = 1e+39 is outside the float32 range"),
    (b'{"user_id": "u", "features": [1e400]}', "not valid JSON"),
])
def test_bad_single_bodies_name_the_problem(raw, expected):
    with pytest.raises(InvalidInput) as info:
        parse_single(raw, N)
    assert expected in str(info.value)
    assert info.value.status == 422


@pytest.mark.parametrize("doc, expected", [
    ({"user_id": "u"}, "missing field 'instances'"),
    ({"user_id": "u", "features": ROW}, "single rows go to /predict"),
    ({"user_id": "u", "instances": []}, "non-empty list"),
    ({"user_id": "u", "instances": ROW}, "'instances[0]' must be a list"),
    ({"user_id": "u", "instances": [ROW, ROW[:10]]}, "'instances[1]' has 10 values"),
    ({"user_id": "u", "instances": [ROW, ROW[:4] + [False] + ROW[5:]]},
     "'instances[1][4]' must be a number, got bool"),
    ({"user_id": "u", "instances": [ROW] * (MAX_BATCH_ROWS + 1)}, "at most 1024 per request"),
])
def test_bad_batch_bodies_name_the_problem(doc, expected):
    with pytest.raises(InvalidInput) as info:
        parse_batch(json.dumps(doc).encode(), N)
    assert expected in str(info.value)
