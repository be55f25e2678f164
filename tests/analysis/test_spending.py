"""Alpha spent across a release's steps: the budget adds up, and a release-level A/A
simulation (every step a fresh window, every look) stays at or under the release's alpha."""

from __future__ import annotations

import numpy as np
import pytest

from paddle_canary.analysis import GateConfig, ThresholdError, spending, stats

ALPHA = 0.05


def test_weights_sum_to_one_and_front_load_the_small_steps():
    for n in (1, 2, 5, 11, 12):
        w = spending.step_weights(n)
        assert sum(w) == pytest.approx(1.0)
        assert all(a > b for a, b in zip(w, w[1:]))
        assert sum(spending.step_alpha(ALPHA, i, n) for i in range(n)) <= ALPHA * (1 + 1e-12)
    assert spending.step_alpha(ALPHA, 0, 1) == pytest.approx(ALPHA)
    assert spending.step_alpha(ALPHA, 0, 11) == pytest.approx(0.01655, abs=1e-5)
    assert spending.step_alpha(ALPHA, 10, 11) == pytest.approx(0.001505, abs=1e-6)


@pytest.mark.parametrize("args, what", [
    ((0.05, 11, 11), "step_index"), ((0.05, -1, 3), "step_index"), ((0.05, 0, 0), "n_steps"),
    ((0.0, 0, 3), "total_alpha"), ((0.7, 0, 3), "total_alpha"), ((float("nan"), 0, 3),
                                                                  "total_alpha"),
    ((0.05, True, 3), "step_index"),
])
def test_bad_arguments_are_refused_naming_them(args, what):
    with pytest.raises(ValueError, match=what):
        spending.step_alpha(*args)


def test_the_step_alpha_goes_into_the_gate_config_checked():
    cfg = GateConfig.from_dict()
    assert cfg.with_alpha(spending.step_alpha(ALPHA, 3, 11)).alpha < cfg.alpha
    with pytest.raises(ThresholdError, match="alpha"):
        cfg.with_alpha(0.9)


@pytest.mark.slow
def test_release_level_aa_false_fail_rate_stays_under_alpha():
    """200 releases of 11 steps (5, 15, ... 95, 100 %), each step a fresh window looked at 100
    times, an identical candidate scored side by side with stable (flips both ways at 5 %).
    The exact flip sequence misses in ~2 % of single windows, so with the same alpha at every
    step ~1 in 5 releases would see a miss somewhere; spent with ``step_alpha``, at most
    alpha of them."""
    rng = np.random.default_rng(41)
    releases, steps, looks, per_look = 200, 11, 100, 40
    n = per_look * np.arange(1, looks + 1)

    def missed(alpha_of_step) -> np.ndarray:
        miss = np.zeros(releases, dtype=bool)
        for i in range(steps):
            up = np.cumsum(rng.binomial(per_look, 0.05, (releases, looks)), axis=1)
            down = np.cumsum(rng.binomial(per_look, 0.05, (releases, looks)), axis=1)
            lo, hi = stats.categorical_mean_cs(
                (-1.0, 0.0, 1.0), np.stack([down, n - up - down, up], axis=-1),
                alpha_of_step(i), -1.0, 1.0)
            miss |= ((lo > 0) | (hi < 0)).any(axis=1)
        return miss

    same = missed(lambda i: ALPHA).mean()
    spent = missed(lambda i: spending.step_alpha(ALPHA, i, steps)).mean()
    print(f"release-level A/A misses: same alpha per step {same:.1%}, spent {spent:.1%}")
    assert spent <= ALPHA
    assert same > ALPHA          # why spending is needed
