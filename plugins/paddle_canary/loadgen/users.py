"""Synthetic users: stable IDs and feature rows drawn from a model's reference data.

The same ``(n, seed)`` gives the same users and the same request sequence in every run, so a
user's bucket (and therefore the version it should see) is known in advance.
"""

from __future__ import annotations

import numpy as np

from paddle_canary.errors import UserError

DEFAULT_FEATURES = 30


def user_ids(n: int, start: int = 1) -> list[str]:
    """``user-000001``, ``user-000002``, ... (``n`` of them)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"number of users must be a positive integer, got {n!r}")
    return [f"user-{i:06d}" for i in range(start, start + n)]


def reference_from_registry(model: str, version: str, root=None) -> np.ndarray:
    """The reference rows of ``model``/``version``'s card, shape (rows, features)."""
    from paddle_canary.registry import Registry

    return Registry(root).card(model, version).reference_inputs()


def check_reference(reference) -> np.ndarray:
    rows = np.asarray(reference, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[0] < 1 or rows.shape[1] < 1:
        raise UserError(f"reference rows must be a non-empty 2-D array, got shape {rows.shape}")
    if not np.isfinite(rows).all():
        raise UserError("reference rows must be finite")
    return rows


def synthetic_reference(n_features: int = DEFAULT_FEATURES, rows: int = 256,
                        seed: int = 0) -> np.ndarray:
    """Standard-normal rows, for when no model card is at hand."""
    return np.random.default_rng(seed).standard_normal((rows, n_features)).astype(np.float32)


class RequestPlan:
    """Request ``k`` -> (user ID, feature row), deterministic in ``seed``.

    Users are visited in a seeded shuffled cycle, so every user is seen once per ``len(users)``
    requests; each request takes a seeded random reference row.
    """

    def __init__(self, users: list[str], reference: np.ndarray, seed: int = 0) -> None:
        self.users = list(users)
        self.reference = check_reference(reference)
        rng = np.random.default_rng(seed)
        self._order = rng.permutation(len(self.users))
        self._rows = rng.integers(0, self.reference.shape[0], size=4093)  # prime: no lock-step with the user cycle
        # JSON text of each reference row, rendered once (floats as float32 round-trips).
        self._row_json = ["[" + ",".join(repr(float(x)) for x in row) + "]"
                          for row in self.reference]

    def user(self, k: int) -> str:
        return self.users[self._order[k % len(self.users)]]

    def body(self, k: int) -> tuple[str, bytes]:
        """(user ID, JSON body) of request ``k``."""
        user = self.user(k)
        row = self._rows[k % len(self._rows)]
        text = '{"user_id":"%s","features":%s}' % (user, self._row_json[row])
        return user, text.encode()
