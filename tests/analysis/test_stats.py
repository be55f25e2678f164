"""The confidence sequences: valid under repeated looks, and quick to see real effects.

Simulations are seeded and vectorised: 200 A/A sequences, each looked at 100 times.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_helpers import SCORE_MIDS, SHIFTED_SCORES, V1_SCORES

from paddle_canary.analysis import stats

ALPHA = 0.05
SEQS, LOOKS = 200, 100
# candidate rows at each look: 20, 40, ... 2000 (5 % canary: baseline has 19x as many)
STEP_C = 20


def cumulative_binomial(rng, p, step, looks=LOOKS, seqs=SEQS):
    return np.cumsum(rng.binomial(step, p, size=(seqs, looks)), axis=1).astype(float)


def test_single_prior_radius_is_waudby_smith_formula():
    # Waudby-Smith et al. (2024) eq.: sigma*sqrt(2(t r^2+1)/(t^2 r^2) * log(sqrt(t r^2+1)/alpha))
    sigma, t, r = 0.48, 1000.0, 0.1
    ws = sigma * math.sqrt(2 * (t * r * r + 1) / (t * t * r * r)
                           * math.log(math.sqrt(t * r * r + 1) / ALPHA))
    ours = stats.normal_mixture_radius(t / sigma ** 2, ALPHA, prior_sd=r * sigma)
    assert ours == pytest.approx(ws, rel=1e-12)


def test_mixture_radius_lies_between_its_components_and_shrinks():
    info = np.array([1e2, 1e3, 1e4, 1e5, 1e6])
    taus = (0.01, 0.04, 0.16)
    mixed = stats.normal_mixture_radius(info, ALPHA, taus)
    singles = np.array([stats.normal_mixture_radius(info, ALPHA, t) for t in taus])
    bonferroni = np.array([stats.normal_mixture_radius(info, ALPHA / 3, t) for t in taus])
    assert np.all(mixed >= singles.min(axis=0) - 1e-12)
    assert np.all(mixed <= bonferroni.min(axis=0) + 1e-12)
    assert np.all(np.diff(mixed) < 0)
    assert stats.normal_mixture_radius(0.0, ALPHA, taus) == math.inf


def test_wald_interval_peeked_at_100_times_fails_aa_often_but_the_cs_does_not():
    """The reason for all this: a fixed-horizon interval, polled, has far more than alpha
    false alarms; the confidence sequence stays under alpha at every look."""
    rng = np.random.default_rng(1)
    p = 0.375
    kc = cumulative_binomial(rng, p, STEP_C)
    kb = cumulative_binomial(rng, p, 19 * STEP_C)
    nc = STEP_C * np.arange(1, LOOKS + 1)
    nb = 19 * nc
    pc, pb = kc / nc, kb / nb
    se = np.sqrt(pc * (1 - pc) / nc + pb * (1 - pb) / nb)
    wald_miss = np.any(np.abs(pc - pb) > 1.96 * se, axis=1).mean()
    lo, hi = stats.diff_cs(kc, nc, kb, nb, ALPHA, prior_sd=(0.01, 0.04, 0.16))
    cs_miss = np.any((lo > 0) | (hi < 0), axis=1).mean()
    assert wald_miss > 2 * ALPHA      # peeking inflates the fixed-horizon error rate
    assert cs_miss <= ALPHA           # the CS covers the truth at all 100 looks


@pytest.mark.parametrize("p", [0.002, 0.05, 0.375])
def test_difference_cs_covers_zero_at_every_look_under_aa(p):
    rng = np.random.default_rng(int(p * 1000) + 7)
    kc = cumulative_binomial(rng, p, STEP_C)
    kb = cumulative_binomial(rng, p, 19 * STEP_C)
    nc = STEP_C * np.arange(1, LOOKS + 1)
    lo, hi = stats.diff_cs(kc, nc, kb, 19 * nc, ALPHA, prior_sd=(0.005, 0.02, 0.08))
    assert np.any((lo > 0) | (hi < 0), axis=1).mean() <= ALPHA


def test_reject_rate_10_vs_20_percent_is_found_within_a_few_hundred_rows():
    rng = np.random.default_rng(2)
    kc = cumulative_binomial(rng, 0.20, STEP_C)
    kb = cumulative_binomial(rng, 0.10, 19 * STEP_C)
    nc = STEP_C * np.arange(1, LOOKS + 1)
    lo, _ = stats.diff_cs(kc, nc, kb, 19 * nc, ALPHA / 8, prior_sd=(0.01, 0.04, 0.16))
    first = np.argmax(lo > 0.01, axis=1)              # first look where the CS is above +1 pp
    assert np.all(np.any(lo > 0.01, axis=1))
    assert np.percentile(nc[first], 95) <= 600


def test_beta_binomial_cs_is_exact_at_every_look():
    rng = np.random.default_rng(3)
    p = 0.05
    k = cumulative_binomial(rng, p, 10)
    n = 10 * np.arange(1, LOOKS + 1)
    lo, hi = stats.beta_binomial_cs(k, n, ALPHA)
    assert np.all((lo <= k / n) & (k / n <= hi))
    assert np.any((lo > p) | (hi < p), axis=1).mean() <= ALPHA


def test_beta_binomial_cs_edges():
    assert stats.beta_binomial_cs(0, 0, ALPHA) == (0.0, 1.0)
    lo, hi = stats.beta_binomial_cs(0, 1000, ALPHA)
    assert lo == 0.0 and 0 < hi < 0.01
    lo, hi = stats.beta_binomial_cs(20, 20, ALPHA)    # 20 slow requests out of 20
    assert hi == 1.0 and lo > 0.5
    lo, hi = stats.beta_binomial_cs(2.5, 10, ALPHA)   # interpolated (fractional) counts work
    assert lo < 0.25 < hi


def test_log_ratio_cs_covers_equal_means_at_every_look():
    rng = np.random.default_rng(4)
    looks = np.arange(1, LOOKS + 1)
    inc_c = rng.multinomial(STEP_C, V1_SCORES, size=(SEQS, LOOKS))
    inc_b = rng.multinomial(19 * STEP_C, V1_SCORES, size=(SEQS, LOOKS))
    cc, cb = np.cumsum(inc_c, axis=1), np.cumsum(inc_b, axis=1)
    nc, nb = STEP_C * looks, 19 * STEP_C * looks
    mc, mb = cc @ SCORE_MIDS / nc, cb @ SCORE_MIDS / nb
    vc = cc @ SCORE_MIDS ** 2 / nc - mc ** 2
    vb = cb @ SCORE_MIDS ** 2 / nb - mb ** 2
    _, lo, hi = stats.log_ratio_cs(mc, vc, nc, mb, vb, nb, ALPHA,
                                   prior_sd=tuple(math.log1p(0.05) * k for k in (1, 4, 16)))
    assert np.any((lo > 0) | (hi < 0), axis=1).mean() <= ALPHA


def test_chi2_distance_cs_lower_end_stays_at_zero_under_aa():
    """Buckets merged as merge_sparse would merge them given the true shares (the judge
    merges on the pooled data; the judge-level test covers that)."""
    rng = np.random.default_rng(5)
    misses = np.zeros(SEQS, dtype=bool)
    cc = np.zeros((SEQS, len(V1_SCORES)))
    cb = np.zeros((SEQS, len(V1_SCORES)))
    for look in range(1, LOOKS + 1):
        cc += rng.multinomial(STEP_C, V1_SCORES, size=SEQS)
        cb += rng.multinomial(19 * STEP_C, V1_SCORES, size=SEQS)
        n_small = STEP_C * look
        groups = stats.merge_sparse(V1_SCORES * n_small, V1_SCORES * n_small)
        gc = np.stack([cc[:, g].sum(axis=1) for g in groups], axis=1)
        gb = np.stack([cb[:, g].sum(axis=1) for g in groups], axis=1)
        _, lo, _ = stats.chi2_distance_cs(gc, gb, ALPHA, (0.316, 1.26, 5.06))
        misses |= lo > 0
    assert misses.mean() <= ALPHA


def test_psi_shift_is_found_and_small_psi_is_bounded():
    rng = np.random.default_rng(6)
    b = rng.multinomial(19_000, V1_SCORES).astype(float)
    c = rng.multinomial(300, SHIFTED_SCORES).astype(float)
    groups = stats.merge_sparse(c, b)
    gc = np.array([c[g].sum() for g in groups])
    gb = np.array([b[g].sum() for g in groups])
    assert stats.psi(gc, gb) > 0.5
    _, lo, _ = stats.chi2_distance_cs(gc, gb, ALPHA / 8, (0.316, 1.26, 5.06))
    assert lo > 0.1
    same = rng.multinomial(20_000, V1_SCORES).astype(float)
    groups = stats.merge_sparse(same, b)
    gs = np.array([same[g].sum() for g in groups])
    gb = np.array([b[g].sum() for g in groups])
    _, _, hi = stats.chi2_distance_cs(gs, gb, ALPHA / 8, (0.316, 1.26, 5.06))
    assert hi < 0.1


def test_psi_plug_in():
    assert stats.psi([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0)
    # shares (0.5, 0.5) vs (0.25, 0.75): 0.25*ln2 + 0.25*ln(1.5)... by hand:
    want = (0.5 - 0.25) * math.log(0.5 / 0.25) + (0.5 - 0.75) * math.log(0.5 / 0.75)
    assert stats.psi([50, 50], [25, 75]) == pytest.approx(want)
    assert math.isfinite(stats.psi([0, 10], [10, 0]))           # eps floor, no log(0)


def test_merge_sparse_groups_adjacent_buckets_until_enough_expected():
    c = np.array([100, 1, 1, 1, 1, 1, 0, 50])
    b = np.array([1900, 19, 19, 19, 19, 19, 0, 950])
    groups = stats.merge_sparse(c, b)
    assert sum(groups, []) == list(range(8))
    small = c.sum()
    total = c.sum() + b.sum()
    for g in groups:
        assert small * (c[g].sum() + b[g].sum()) / total >= stats.MIN_EXPECTED


def test_histogram_quantile_and_tail_counts():
    edges = (0.001, 0.002, 0.005, 0.01)
    counts = [0, 50, 40, 10, 0]                  # non-cumulative; last is +Inf
    # P50 = the 50th of 100: end of bucket (0.001, 0.002]
    assert stats.quantile(counts, edges, 0.5) == pytest.approx(0.002)
    # P95 = 95th: 5 of the 10 in (0.005, 0.01] -> half way
    assert stats.quantile(counts, edges, 0.95) == pytest.approx(0.0075)
    assert stats.count_above(counts, edges, 0.005) == pytest.approx(10)
    assert stats.count_above(counts, edges, 0.0035) == pytest.approx(10 + 40 * 0.5)
    assert stats.count_above([0, 0, 0, 0, 7], edges, 100.0) == 7   # +Inf bucket: above
    assert math.isnan(stats.quantile([0] * 5, edges, 0.95))
    mean, var = stats.bucket_moments([0, 10, 0, 0, 0], edges)
    assert mean == pytest.approx(0.0015) and var == pytest.approx(0.001 ** 2 / 12)
