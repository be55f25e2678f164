"""The sequences behind paired analysis and the PSI bound: valid at every look on generated
data (A/A and at the margin), tight enough to decide, and sane at the edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_helpers import V1_SCORES

from paddle_canary.analysis import stats

ALPHA = 0.05
SEQS, LOOKS, STEP = 200, 100, 40
N = STEP * np.arange(1, LOOKS + 1)
FLIPS = (-1.0, 0.0, 1.0)


def flip_counts(rng, p_up, p_down):
    up = np.cumsum(rng.binomial(STEP, p_up, (SEQS, LOOKS)), axis=1)
    down = np.cumsum(rng.binomial(STEP, p_down, (SEQS, LOOKS)), axis=1)
    return np.stack([down, N - up - down, up], axis=-1)


@pytest.mark.parametrize("p_up, p_down", [(0.005, 0.005), (0.0125, 0.0025), (0.05, 0.05)])
def test_flip_sequence_covers_the_truth_at_every_look(p_up, p_down):
    """Rare flips (1 % of rows) are where a normal approximation fails; the betting sequence is
    exact. Also at the +1 pp margin of the rejection gate."""
    rng = np.random.default_rng(int(1e4 * p_up) + 3)
    lo, hi = stats.categorical_mean_cs(FLIPS, flip_counts(rng, p_up, p_down), ALPHA, -1, 1)
    truth = p_up - p_down
    assert np.any((lo > truth) | (hi < truth), axis=1).mean() <= ALPHA


def test_flip_sequence_decides_a_good_retrain_and_a_bad_one_within_3000_rows():
    rng = np.random.default_rng(4)
    alpha = ALPHA / 8
    lo, hi = stats.categorical_mean_cs(FLIPS, flip_counts(rng, 0.005, 0.005), alpha, -1, 1)
    inside = (lo > -0.01) & (hi < 0.01)
    assert np.median(N[np.argmax(inside, axis=1)][inside.any(axis=1)]) <= 3000
    lo, _ = stats.categorical_mean_cs(FLIPS, flip_counts(rng, 0.025, 0.0), alpha, -1, 1)
    above = lo > 0.01
    assert np.mean(above[:, N <= 3000].any(axis=1)) >= 0.95


def test_flip_sequence_edges():
    assert stats.categorical_mean_cs(FLIPS, (0, 0, 0), ALPHA, -1, 1) == (-1.0, 1.0)
    lo, hi = stats.categorical_mean_cs(FLIPS, (0, 5000, 0), ALPHA, -1, 1)
    assert -0.005 < lo < 0 < hi < 0.005                 # no flips at all: narrow around 0
    lo, hi = stats.categorical_mean_cs(FLIPS, (0, 0, 30), ALPHA, -1, 1)
    assert hi == 1.0 and lo > 0.5                        # every row flipped up
    lo, hi = stats.categorical_mean_cs(FLIPS, (3, 9_990, 7), ALPHA, -1, 1)
    assert lo < 4 / 10_000 < hi                          # the sample mean is inside


def score_pairs(rng, shape):
    """Paired score differences like v2's against v1 (mostly tiny, a few large, bounded)."""
    small = rng.normal(0.001, 0.01, shape)
    big = rng.uniform(-0.4, 0.4, shape) * (rng.random(shape) < 0.02)
    return np.clip(small + big, -1, 1)


def test_sums_only_sequence_covers_bounded_means_at_every_look():
    rng = np.random.default_rng(5)
    for draw, truth_n in ((lambda s: score_pairs(rng, s), 2_000_000),
                          (lambda s: rng.beta(0.3, 0.5, s), 0)):
        x = draw((SEQS, LOOKS * STEP))
        truth = draw(truth_n).mean() if truth_n else 0.3 / 0.8
        low = -1.0 if x.min() < 0 else 0.0
        s = np.cumsum(x, axis=1)[:, STEP - 1::STEP]
        q = np.cumsum(x * x, axis=1)[:, STEP - 1::STEP]
        lo, hi = stats.bounded_mean_cs(N, s, q, ALPHA, low, 1.0)
        assert np.all((lo <= s / N) & (s / N <= hi))
        assert np.any((lo > truth) | (hi < truth), axis=1).mean() <= ALPHA


def test_sums_only_sequence_ends_are_where_the_bound_crosses_the_level():
    """The bisection finds the crossing of a monotone bound: just outside each end the bound is
    at or over 2/alpha, just inside under it (checked by evaluating the bound directly)."""
    n, s, q = 2000.0, 2.3, 0.9
    lo, hi = stats.bounded_mean_cs(n, s, q, ALPHA, -1, 1)

    def log_bound(m, side):
        c = np.asarray(stats.SUM_BETS)
        psi = -np.log1p(-c) - c
        room = (m + 1) if side > 0 else (1 - m)
        u = np.maximum(room, 2 * psi * 2 / c)
        dev = side * (s - n * m)
        sq = q - 2 * m * s + n * m * m
        x = c * dev / u - psi * sq / u ** 2
        return math.log(np.mean(np.exp(x - x.max()))) + x.max()

    level = math.log(2 / ALPHA)
    eps = 1e-6
    assert log_bound(lo - eps, +1) >= level > log_bound(lo + 1e-4, +1)
    assert log_bound(hi + eps, -1) >= level > log_bound(hi - 1e-4, -1)
    assert stats.bounded_mean_cs(0, 0, 0, ALPHA, 0, 1) == (0.0, 1.0)


def group(counts, groups):
    return np.array([np.asarray(counts)[..., g].sum(axis=-1) for g in groups]).T


def test_psi_groups_hold_the_minimum_share_of_the_baseline():
    groups = stats.psi_groups(V1_SCORES * 200)
    assert sum(groups, []) == list(range(len(V1_SCORES)))
    assert groups == [[0], [1, 2], list(range(3, 14)), [14, 15], [16, 17, 18, 19, 20]]
    assert stats.psi_groups(np.zeros(5)) == [[0, 1, 2, 3, 4]]
    coarse = stats.coarsen(groups, V1_SCORES * 20, V1_SCORES * 380)
    assert sum(coarse, []) == list(range(len(V1_SCORES))) and len(coarse) < len(groups)


@pytest.mark.slow
def test_psi_bounds_cover_psi_at_every_look():
    """The true PSI (over the groups) lies in the interval at every look: A/A and a shift."""
    rng = np.random.default_rng(6)
    groups = stats.psi_groups(V1_SCORES)
    shifted = V1_SCORES.copy()
    shifted[[1, 2, 15]] *= 2.0
    shifted /= shifted.sum()
    priors = tuple(math.sqrt(0.1) * k for k in stats.PRIOR_SCALES)
    for p_c in (V1_SCORES, shifted):
        truth = stats.psi(group(p_c, groups), group(V1_SCORES, groups))
        misses = 0
        for _ in range(60):
            c = np.cumsum(rng.multinomial(STEP * 5, p_c, size=30), axis=0)
            b = np.cumsum(rng.multinomial(STEP * 95, V1_SCORES, size=30), axis=0)
            miss = False
            for look in range(30):
                kc, kb = group(c[look], groups), group(b[look], groups)
                lo, hi = stats.psi_bounds(kc, kb, ALPHA, priors)
                assert lo <= stats.psi(kc, kb) <= hi
                miss |= not lo <= truth <= hi
            misses += miss
        assert misses / 60 <= ALPHA


def test_mean_ratio_factor():
    assert stats.mean_ratio_factor(1.0) == 1.0
    assert stats.mean_ratio_factor(2.0) == pytest.approx(1.5 * math.log(2), rel=1e-12)
    assert stats.mean_ratio_factor(math.inf) == math.inf
    x, y = 0.03, 0.01                         # a PSI term over its chi-square term
    term = (x - y) * math.log(x / y)
    assert term / ((x - y) ** 2 / ((x + y) / 2)) <= stats.mean_ratio_factor(3.0) + 1e-12
