"""Spending a release's error budget over its steps.

The judge keeps the chance of failing an identical candidate at *any* look of one step's window
under the ``alpha`` it is given (confidence sequences: looks are free). A release judges several
windows, one per step (plus the shadow phase, when it is judged), so with the same ``alpha`` at
every step an 11-step release would have up to 11 times the false-fail probability. By the union
bound, giving step ``i`` the budget ``w_i * alpha`` with ``sum w_i <= 1`` keeps the release's
family-wise false-fail probability at or under ``alpha`` (the bench's release-level A/A
simulation checks it).

:func:`step_alpha` uses harmonic weights ``w_i = (1 / (i + 1)) / H_n`` (``H_n`` = the n-th
harmonic number): the first steps - a small canary, few rows, where a decision must come from
little data - get the most (11 steps: 33 %, 17 %, 11 %, ...); the last ones, with far more rows,
need little (the width of a sequence grows only with ``sqrt(log(1/alpha))``). Looking at a step
again, or extending it with the same window start, costs nothing; a new window is a new step.
"""

from __future__ import annotations

import math


def _check(total_alpha: float, step_index: int, n_steps: int) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if (isinstance(step_index, bool) or not isinstance(step_index, int)
            or not 0 <= step_index < n_steps):
        raise ValueError(f"step_index must be an integer in 0..{n_steps - 1}, "
                         f"got {step_index!r}")
    if not (isinstance(total_alpha, (int, float)) and math.isfinite(total_alpha)
            and 0 < total_alpha < 0.5):
        raise ValueError(f"total_alpha must be a probability in (0, 0.5), got {total_alpha!r}")


def step_weights(n_steps: int) -> list[float]:
    """The share of the release's alpha each step gets (harmonic; they sum to 1)."""
    _check(0.05, 0, n_steps)
    h = sum(1.0 / k for k in range(1, n_steps + 1))
    return [1.0 / (i + 1) / h for i in range(n_steps)]


def step_alpha(total_alpha: float, step_index: int, n_steps: int) -> float:
    """The alpha to judge step ``step_index`` (0-based) of an ``n_steps``-step release with,
    so that the whole release fails an identical candidate with probability <= ``total_alpha``.

    ``step_alpha(0.05, 0, 11)`` = 0.0166, ``step_alpha(0.05, 10, 11)`` = 0.0015. Pass it to
    ``analyze(..., alpha=...)`` (or as the gate config's ``alpha``).
    """
    _check(total_alpha, step_index, n_steps)
    return total_alpha * step_weights(n_steps)[step_index]
