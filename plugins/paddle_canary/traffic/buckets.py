"""Predict which version nginx gives a user: the sticky bucket of a user ID.

nginx's ``split_clients "$key" $var { ... }`` hashes the key with its own 32-bit MurmurHash2
(``ngx_murmur_hash2``: seed 0, so ``h = 0 ^ len``; little-endian 4-byte blocks; the tail mixed
in with fall-through) and walks the listed parts in order. Each ``P%`` part is stored as
``P * 100`` (two decimals) and its cut point is the running sum of
``percent * 0xffffffff // 10000``; a key goes to the first part whose cut point is above its
hash, and ``*`` takes whatever is left.

The router renders every split with whole 1 % parts, so one part spans ``0xffffffff // 100``
(= 42,949,672) hash values and the cut points are exact multiples of it. A user's **bucket** is
the index of the 1 % part the hash falls in, 0..99 (bucket 99 also takes the 95 values left
over at the top of the range). The candidate gets buckets ``0 .. weight-1`` (its parts are
listed first), so::

    routes_to_candidate(user_id, weight)  ==  bucket(user_id) < weight

exactly as the live nginx decides, and a user in the canary at weight w stays there at every
weight above w. The hash is fixed (no per-process salt, unlike Python's ``hash()``), so the same
user ID gets the same bucket in every process, on every machine, in nginx and here.

A gateway routing many models salts the key with the model name (``"<model>:<user id>"``), so
the users in one model's canary are not the same few in every model's canary; within a model a
user stays sticky as its weight grows. ``model=None`` hashes the bare user ID.
"""

from __future__ import annotations

from paddle_canary.traffic.base import check_weight

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF

# Hash values spanned by one "1%" split_clients part: 100 * 0xffffffff // 10000.
PART_SPAN = 100 * 0xFFFFFFFF // 10000
BUCKETS = 100


def murmur_hash2(data: bytes) -> int:
    """32-bit MurmurHash2 exactly as nginx's ``ngx_murmur_hash2`` (seed 0), as an unsigned int."""
    length = len(data)
    h = length & _MASK  # 0 ^ len
    full = length - length % 4
    for i in range(0, full, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length - full
    if tail == 3:
        h ^= data[full + 2] << 16
    if tail >= 2:
        h ^= data[full + 1] << 8
    if tail >= 1:
        h ^= data[full]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def split_key(user_id: str | bytes, model: str | None = None) -> bytes:
    """The bytes nginx hashes: the header as sent, salted with ``model`` when given."""
    # nginx hashes the header bytes as sent; HTTP header values are ASCII/latin-1 in practice.
    raw = user_id if isinstance(user_id, bytes) else user_id.encode("utf-8")
    return raw if model is None else model.encode("ascii") + b":" + raw


def bucket(user_id: str | bytes, model: str | None = None) -> int:
    """The user's sticky bucket, 0..99: which 1 % share of the 32-bit hash range it falls in."""
    return min(murmur_hash2(split_key(user_id, model)) // PART_SPAN, BUCKETS - 1)


def routes_to_candidate(user_id: str | bytes, weight: int, model: str | None = None) -> bool:
    """True when nginx at candidate ``weight`` % (0..100) sends ``user_id`` to the candidate
    (of ``model``, whose name salts the bucket on a gateway that routes many models).

    A request without a user ID (missing or empty header) always goes to stable.
    """
    weight = check_weight(weight)
    return bool(user_id) and bucket(user_id, model) < weight
