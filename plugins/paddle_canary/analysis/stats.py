"""Confidence sequences and histogram arithmetic for the judge.

The judge is asked again and again while a canary step runs. A fixed-horizon 95 % interval
looked at every few seconds fails an identical candidate far more often than 5 % of the time
(Kayenta's Mann-Whitney test has this problem). Every interval here is a *confidence sequence*
(CS): it covers the true value at every look simultaneously, with probability at least 1 - alpha,
so polling does not inflate false rollbacks.

Two constructions are used, both from the method of mixtures:

* **Normal mixture** (Howard, Ramdas, McAuliffe, Sekhon, "Time-uniform, nonparametric,
  nonasymptotic confidence sequences", Ann. Statist. 49(2), 2021, the normal-mixture boundary),
  used as an *asymptotic* CS in the sense of Waudby-Smith, Arbour, Sinha, Kennedy, Ramdas,
  "Time-uniform central limit theory and asymptotic confidence sequences" (Ann. Statist. 2024,
  arXiv:2103.06476, Thm 2.2), with the variance estimated from the data. For an estimate
  ``theta_hat`` of a d-dimensional parameter whose whitened covariance is ``I**-1 * Id``
  (``I`` = "information", 1/variance), mixing the likelihood ratio of the drift over a
  ``N(0, tau**2 * Id)`` prior gives the mixture martingale
  ``M = (rho/(I+rho))**(d/2) * exp(I**2 * |theta_hat-theta|**2 / (2*(I+rho)))``, ``rho = 1/tau**2``;
  by Ville's inequality ``P(exists t: M_t >= 1/alpha) <= alpha``, so

      |theta_hat - theta| <= sqrt((I + rho) * (d*log((I + rho)/rho) + 2*log(1/alpha))) / I

  at every look. For d = 1 and a mean of t observations with standard deviation sigma this is
  exactly Waudby-Smith et al.'s ``sigma * sqrt(2(t r^2+1)/(t^2 r^2) * log(sqrt(t r^2+1)/alpha))``
  with ``r = tau/sigma``. It is also the confidence interval that Johari, Pekelis, Walsh's
  mixture SPRT ("Always Valid Inference", KDD 2017) inverts. ``tau`` tunes *where* the
  sequence is tightest (around ``I ~ 8/tau**2`` at alpha = 0.05). The judge mixes three priors,
  ``tau`` = 1x, 4x and 16x the gate's margin (:data:`PRIOR_SCALES`): tight near the margin,
  where pass/fail is hardest to tell apart, and still quick to flag an effect ten times larger.

* **Beta-binomial mixture** for a single proportion (Robbins 1970; Howard et al. 2021, the
  conjugate-mixture CS): ``M_n(p) = B(a+k, b+n-k) / (B(a, b) * p**k * (1-p)**(n-k))`` is a
  nonnegative martingale under ``p``; ``{p : M_n(p) < 1/alpha}`` is a CS that is exact
  (nonasymptotic), valid from the first observation. Used for latency tail shares, where a
  slow candidate must be caught from a handful of requests.

* **Betting** for bounded means (Waudby-Smith & Ramdas, "Estimating means of bounded random
  variables by betting", JRSS-B 86(1), 2024): for each candidate mean ``m`` a gambler bets a
  constant fraction of its wealth on ``X - m``; under mean ``m`` the wealth is a nonnegative
  martingale, so ``{m : wealth < 1/alpha}`` is a CS, exact (nonasymptotic) and valid from the
  first observation. Used for the paired (shadow) statistics, where the normal approximation
  fails: decision flips are rare (~1 % of rows), so their counts are small for a long time.

A running intersection of a CS is again a CS (Howard et al. 2021, Sec. 3), which is how the
judge keeps intervals from widening between looks (``judge.intersect``).

All functions accept numpy arrays and broadcast, so the repeated-look simulations in the tests
run fast.
"""

from __future__ import annotations

import math

import numpy as np

PSI_EPS = 1e-4          # floor on bucket proportions in the plug-in PSI (log of 0 otherwise)
MIN_EXPECTED = 5.0      # merge score buckets until each expects >= 5 rows in the smaller arm
# PSI is taken over groups of adjacent score buckets that each hold at least this share of the
# baseline's rows (at most 50 groups; 3 to 6 for risk-score v1, whose scores pile up in the
# first and last bucket). The 0.1 rule of thumb assumes populated bins (deciles of the
# baseline); over the serving histogram's 20 fixed buckets a bucket that 1 row in 200 falls
# into gives terms of ~0.02 for each row moving in or out, so a retrain moving a few rows
# across a bucket edge read as a large shift. A fixed share also keeps the parameter the same
# at every look (merging "until each expects 5 rows" made it depend on the sample size: v2 vs
# v1 on the demo's traffic read 0.055 at 3,000 rows and 0.19 at 10,000, so v2 would in the end
# have failed). 2 % rather than 1 %: an exact bound on PSI over 6 groups needs ~7,000 rows to
# pass v2, over 4-5 groups ~2,000 (v2's PSI: 0.02 either way).
PSI_MIN_SHARE = 0.02


PRIOR_SCALES = (1.0, 4.0, 16.0)  # mixing priors: the gate's margin, 4x and 16x it


def normal_mixture_radius(info, alpha: float, prior_sd, dim=1, iters: int = 24):
    """Radius of the two-sided normal-mixture CS for an estimate with information ``info``.

    ``info`` = 1 / variance of the estimate (per dimension, after whitening); ``prior_sd`` = the
    mixing prior's standard deviation ``tau`` (in the estimate's units), or several of them;
    ``dim`` = number of dimensions (broadcast with ``info``). With one ``tau`` the radius is
    ``sqrt((I + rho) * (d*log((I + rho)/rho) + 2*log(1/alpha))) / I``, ``rho = 1/tau**2`` (see
    the module docstring). With several, the martingales are averaged with equal weights (an
    average of test martingales is one, so Ville's inequality still applies) and the radius
    ``s/I`` solves ``mean_k M_k(s) = 1/alpha`` by bisection: a large effect is then caught about
    as fast as with a prior sized for it, at a small cost (about 10 % in width) near the margin.
    ``inf`` where ``info`` is 0.
    """
    info, dim = np.broadcast_arrays(np.asarray(info, dtype=float), np.asarray(dim, dtype=float))
    shape = info.shape
    taus = np.atleast_1d(np.asarray(prior_sd, dtype=float))
    log_level = math.log(1.0 / alpha)
    safe = np.where(info > 0, info, 1.0).reshape(1, -1)
    d = dim.reshape(1, -1)
    rhos = (1.0 / taus ** 2)[:, None]
    tot = safe + rhos                                   # (K, n)
    one = tot * (d * np.log(tot / rhos) + 2.0 * log_level)   # per-component |S|**2 boundary
    if len(taus) == 1:
        s2 = one[0]
    else:
        log_w = 0.5 * d * np.log(rhos / tot)            # log of (rho/(I+rho))**(d/2)
        low = one.min(axis=0)                           # below: every M_k < 1/alpha
        high = (tot * (d * np.log(tot / rhos) + 2.0 * (log_level + math.log(len(taus))))
                ).min(axis=0)                           # above: some M_k >= K/alpha
        for _ in range(iters):
            mid = (low + high) / 2
            x = log_w + mid / (2 * tot)
            top = x.max(axis=0)
            above = top + np.log(np.exp(x - top).sum(axis=0) / len(taus)) >= log_level
            high, low = np.where(above, mid, high), np.where(above, low, mid)
        s2 = high
    r = (np.sqrt(s2) / safe[0]).reshape(shape)
    r = np.where(info > 0, r, np.inf)
    return r if r.ndim else float(r)


def diff_cs(k_c, n_c, k_b, n_b, alpha: float, prior_sd: float):
    """CS for ``p_c - p_b``, a difference of two proportions (candidate minus baseline).

    Agresti-Caffo adjusted: one success and one failure are added to each arm (centre and
    variance), so an arm with no events still has a variance and "0 errors in 200 requests" is
    not mistaken for certainty. Normal-mixture radius with information ``1 / Var``.
    Returns ``(lo, hi)``.
    """
    k_c, n_c, k_b, n_b = (np.asarray(x, dtype=float) for x in (k_c, n_c, k_b, n_b))
    pc = (k_c + 1.0) / (n_c + 2.0)
    pb = (k_b + 1.0) / (n_b + 2.0)
    var = pc * (1 - pc) / (n_c + 2.0) + pb * (1 - pb) / (n_b + 2.0)
    centre = pc - pb
    r = normal_mixture_radius(1.0 / var, alpha, prior_sd)
    return centre - r, centre + r


def log_ratio_cs(mean_c, var_c, n_c, mean_b, var_b, n_b, alpha: float, prior_sd: float):
    """CS for ``log(mu_c / mu_b)``, the log ratio of two means (delta method).

    ``Var(log mean) ~= var / (n * mean**2)`` per arm; normal-mixture radius. Returns
    ``(estimate, lo, hi)``; nan where a mean is not positive.
    """
    mean_c, var_c, n_c, mean_b, var_b, n_b = (
        np.asarray(x, dtype=float) for x in (mean_c, var_c, n_c, mean_b, var_b, n_b))
    with np.errstate(all="ignore"):   # extreme means give inf/NaN, reported as such
        est = np.log(mean_c / mean_b)
        var = var_c / (n_c * mean_c ** 2) + var_b / (n_b * mean_b ** 2)
        r = normal_mixture_radius(1.0 / var, alpha, prior_sd)
        bad = ~((mean_c > 0) & (mean_b > 0))
        est, lo, hi = (np.where(bad, np.nan, x) for x in (est, est - r, est + r))
    return (est, lo, hi) if est.ndim else (float(est), float(lo), float(hi))


def _betaln(a, b):
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    out = [math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y) for x, y in zip(a.flat, b.flat)]
    return np.array(out).reshape(a.shape)


def beta_binomial_cs(k, n, alpha: float, a: float = 0.5, b: float = 0.5, iters: int = 40):
    """Exact CS ``(lo, hi)`` for a proportion from ``k`` events in ``n`` trials.

    Beta(a, b)-binomial mixture (Robbins 1970; Howard et al. 2021): the set of ``p`` with
    ``log B(a+k, b+n-k) - log B(a, b) - k log p - (n-k) log(1-p) < log(1/alpha)``. The left side
    is convex in ``p`` with its minimum at ``k/n``, so the set is an interval; both ends are
    found by bisection. ``k`` may be fractional (an interpolated histogram count). ``n = 0``
    gives ``(0, 1)``.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    k, n = np.broadcast_arrays(np.clip(k, 0, None), n)
    shape = k.shape
    k = np.minimum(k, n).ravel()
    n = n.ravel()
    level = math.log(1.0 / alpha) - (_betaln(a + k, b + (n - k)) - _betaln(a, b))
    p_hat = np.where(n > 0, k / np.where(n > 0, n, 1), 0.5)
    # search both ends at once: rows [lower end; upper end], "in" = inside the set, "out" not
    kk, mm, lv = np.tile(k, 2), np.tile(n - k, 2), np.tile(level, 2)
    p_in = np.tile(p_hat, 2)
    p_out = np.concatenate([np.zeros_like(p_hat), np.ones_like(p_hat)])
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(iters):
            mid = (p_in + p_out) / 2
            f = -(kk * np.log(mid) + mm * np.log1p(-mid))
            ok = f < lv
            p_in = np.where(ok, mid, p_in)
            p_out = np.where(ok, p_out, mid)
    lo, hi = p_out[: len(k)], p_out[len(k):]
    lo = np.where((k <= 0) | (n <= 0), 0.0, lo)   # k = 0: the set reaches p = 0
    hi = np.where((k >= n) | (n <= 0), 1.0, hi)   # k = n: the set reaches p = 1
    lo, hi = lo.reshape(shape), hi.reshape(shape)
    return (lo, hi) if lo.ndim else (float(lo), float(hi))


# --- score buckets: PSI -------------------------------------------------------------------

def merge_sparse(counts_c, counts_b, min_expected: float = MIN_EXPECTED) -> list[list[int]]:
    """Group adjacent buckets so each group expects ``min_expected`` rows in the smaller arm.

    The expected count of a group is ``min(n_c, n_b) * pooled share`` - the usual rule for
    chi-square tests (a bucket a handful of rows fall in would otherwise dominate the statistic
    by chance). A trailing remainder joins the last group. Returns lists of bucket indices.
    """
    c = np.asarray(counts_c, dtype=float)
    b = np.asarray(counts_b, dtype=float)
    total = c.sum() + b.sum()
    if total <= 0:
        return [list(range(len(c)))]
    small = min(c.sum(), b.sum())
    groups: list[list[int]] = []
    current: list[int] = []
    expected = 0.0
    for i in range(len(c)):
        current.append(i)
        expected += small * (c[i] + b[i]) / total
        if expected >= min_expected:
            groups.append(current)
            current, expected = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def psi(counts_c, counts_b, eps: float = PSI_EPS) -> float:
    """Population stability index ``sum (c_i - b_i) * ln(c_i / b_i)`` over bucket shares.

    Shares below ``eps`` are raised to ``eps`` (an empty bucket would give log 0).
    """
    c = np.asarray(counts_c, dtype=float)
    b = np.asarray(counts_b, dtype=float)
    pc = np.maximum(c / max(c.sum(), 1e-300), eps)
    pb = np.maximum(b / max(b.sum(), 1e-300), eps)
    return float(np.sum((pc - pb) * np.log(pc / pb)))


def chi2_distance_cs(counts_c, counts_b, alpha: float, prior_sd_total):
    """CS for ``D = sum (p_c - p_b)**2 / m``, ``m = (p_c + p_b)/2``: PSI to second order.

    ``(p_c - p_b)**2 / L(p_c, p_b)`` with ``L`` the logarithmic mean is one PSI term exactly;
    ``L <= m``, so ``D <= PSI`` bucket by bucket with the two nearly equal for small shifts
    (within 4 % for a 2x ratio in a bucket). Whitened by ``m``, the vector ``p_c - p_b`` has
    covariance ``(1/n_c + 1/n_b) * (Id - sqrt(m) sqrt(m)^T)`` to first order: a d = (buckets
    used - 1) dimensional normal, so the multivariate normal-mixture radius applies to
    ``sqrt(D)``. A mixing prior with total variance ``prior_sd_total**2`` (sized on the PSI
    limit; one value or several) is spread evenly over the d dimensions. Counts may carry
    leading axes (one row per sequence). Returns ``(D_hat, lo, hi)`` for ``D``.
    """
    c = np.asarray(counts_c, dtype=float)
    b = np.asarray(counts_b, dtype=float)
    nc, nb = c.sum(axis=-1), b.sum(axis=-1)
    pc, pb = c / nc[..., None], b / nb[..., None]
    m = (pc + pb) / 2
    keep = m > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d_hat = np.where(keep, (pc - pb) ** 2 / np.where(keep, m, 1.0), 0.0).sum(axis=-1)
    dim = keep.sum(axis=-1) - 1
    info = 1.0 / (1.0 / nc + 1.0 / nb)
    # prior per dimension: total / sqrt(d) (any d >= 1; d = 0 has nothing to test)
    taus = np.atleast_1d(np.asarray(prior_sd_total, dtype=float))
    r = np.full(np.shape(info), 0.0)
    for d in np.unique(dim):
        if d >= 1:
            sel = dim == d
            r = np.where(sel, normal_mixture_radius(info, alpha, taus / math.sqrt(d), d), r)
    root = np.sqrt(d_hat)
    lo = np.where(dim >= 1, np.maximum(0.0, root - r) ** 2, 0.0)
    hi = np.where(dim >= 1, (root + r) ** 2, 0.0)
    if np.ndim(d_hat) == 0:
        return float(d_hat), float(lo), float(hi)
    return d_hat, lo, hi


# --- histograms -----------------------------------------------------------------------------

def bucket_bounds(edges) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of each non-cumulative bucket; the first starts at 0 and the
    ``+Inf`` bucket is given the last finite edge as both bounds (nothing is known above it)."""
    edges = np.asarray(edges, dtype=float)
    lower = np.concatenate([[0.0], edges])
    upper = np.concatenate([edges, [edges[-1]]])
    return lower, upper


def quantile(counts, edges, q: float) -> float:
    """The ``q`` quantile, interpolated linearly inside its bucket (as ``histogram_quantile``).

    ``counts`` are non-cumulative, one per edge plus the ``+Inf`` bucket. ``nan`` when empty.
    """
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return math.nan
    lower, upper = bucket_bounds(edges)
    rank = q * total
    cum = np.cumsum(counts)
    i = int(np.searchsorted(cum, rank, side="left"))
    i = min(i, len(counts) - 1)
    if i == len(counts) - 1:  # in the +Inf bucket: the last finite edge, as Prometheus does
        return float(upper[i])
    before = cum[i] - counts[i]
    inside = (rank - before) / counts[i] if counts[i] > 0 else 1.0
    return float(lower[i] + (upper[i] - lower[i]) * inside)


def edge_at_or_above(edges, x: float) -> float:
    """The smallest bucket edge >= ``x`` (``inf`` beyond the last): counts above it are exact."""
    for e in edges:
        if e >= x:
            return float(e)
    return math.inf


def count_above(counts, edges, x: float) -> float:
    """How many observations exceed ``x``; within a bucket the count is interpolated linearly.

    Everything in the ``+Inf`` bucket counts as above.
    """
    counts = np.asarray(counts, dtype=float)
    lower, upper = bucket_bounds(edges)
    above = 0.0
    for i, n in enumerate(counts):
        if n <= 0:
            continue
        if i == len(counts) - 1 or lower[i] >= x:
            above += n
        elif upper[i] > x:
            above += n * (upper[i] - x) / (upper[i] - lower[i])
    return above


def bucket_moments(counts, edges) -> tuple[float, float]:
    """Mean and variance from bucket midpoints, plus each bucket's uniform spread (w**2/12)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return math.nan, math.nan
    lower, upper = bucket_bounds(edges)
    mid = (lower + upper) / 2
    w = counts / total
    mean = float(np.sum(w * mid))
    second = float(np.sum(w * (mid ** 2 + (upper - lower) ** 2 / 12)))
    return mean, max(second - mean ** 2, 0.0)


# --- PSI over fixed groups: an exact CS from per-group share sequences -----------------------

def psi_groups(counts_b, min_share: float = PSI_MIN_SHARE) -> list[list[int]]:
    """Adjacent buckets grouped until each group holds ``min_share`` of the baseline's rows
    (a trailing remainder joins the last group). All buckets in one group when it is empty."""
    b = np.asarray(counts_b, dtype=float)
    total = b.sum()
    if not total > 0:
        return [list(range(len(b)))]
    groups: list[list[int]] = []
    current: list[int] = []
    share = 0.0
    for i in range(len(b)):
        current.append(i)
        share += b[i] / total
        if share >= min_share * (1 - 1e-9):   # float sums of exact shares land just under
            groups.append(current)
            current, share = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def coarsen(groups: list[list[int]], counts_c, counts_b,
            min_expected: float = MIN_EXPECTED) -> list[list[int]]:
    """``groups`` merged further (adjacent ones) until each expects ``min_expected`` rows in the
    smaller arm: the chi-square rule, for the normal approximation of the fail side. Merging
    never increases PSI (nor the chi-square form), so a lower bound over the coarser groups is
    a lower bound over ``groups``."""
    c = np.asarray(counts_c, dtype=float)
    b = np.asarray(counts_b, dtype=float)
    gc = np.array([c[g].sum() for g in groups])
    gb = np.array([b[g].sum() for g in groups])
    return [sum((groups[i] for i in m), []) for m in merge_sparse(gc, gb, min_expected)]


def _psi_term(x, y, eps: float = PSI_EPS):
    x, y = np.maximum(x, eps), np.maximum(y, eps)
    return (x - y) * np.log(x / y)


def psi_bounds(counts_c, counts_b, alpha: float, prior_sd_total,
               eps: float = PSI_EPS) -> tuple[float, float]:
    """A CS ``(lo, hi)`` for PSI (shares floored at ``eps``) over the given bucket groups (one
    count per group and arm), from two sequences at ``alpha / 2`` each.

    * A box: each group's share in each arm gets an exact beta-binomial sequence at
      ``alpha / 2 / (2 * groups)``, so every true share lies in its range at every look. A PSI
      term ``f(x, y) = (x - y) ln(x / y)`` is convex, zero on ``x = y`` and grows away from it:
      over a box its largest value ``a_i`` is at a corner; its smallest is 0 when the two ranges
      overlap, else at the corner nearest the diagonal (the lower end ``lo``).
    * The chi-square form ``D = sum (x - y)**2 / m`` (``chi2_distance_cs``, upper end ``d_hi``):
      a PSI term is ``(x - y)**2 / L`` with ``L`` the logarithmic mean, so term ``i`` is at most
      ``g_i`` times its ``D`` term, ``g_i = mean_ratio_factor`` of the largest share ratio the
      box allows (~1.1 for shares within 3x of each other).

    ``hi`` is the largest ``sum min(a_i, g_i D_i)`` over ``D_i >= 0`` with ``sum D_i <= d_hi``
    (filled greedily, largest ``g_i`` first): a bound on PSI itself, not on a second-order form
    of it, so a pass on ``hi`` shows PSI under the limit. ``(0, inf)`` when an arm is empty.
    """
    c = np.asarray(counts_c, dtype=float)
    b = np.asarray(counts_b, dtype=float)
    nc, nb = float(c.sum()), float(b.sum())
    if not (nc > 0 and nb > 0):
        return 0.0, math.inf
    a = alpha / 2 / (2 * len(c))
    xl, xh = (np.atleast_1d(v) for v in beta_binomial_cs(c, np.full(len(c), nc), a))
    yl, yh = (np.atleast_1d(v) for v in beta_binomial_cs(b, np.full(len(b), nb), a))
    corners = np.stack([_psi_term(xl, yl, eps), _psi_term(xl, yh, eps),
                        _psi_term(xh, yl, eps), _psi_term(xh, yh, eps)])
    caps = corners.max(axis=0)
    low_terms = np.where(xl > yh, _psi_term(xl, yh, eps),
                         np.where(yl > xh, _psi_term(xh, yl, eps), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(np.where(yl > 0, xh / yl, np.inf), np.where(xl > 0, yh / xl, np.inf))
    g = np.atleast_1d(mean_ratio_factor(ratio))
    d_hi = chi2_distance_cs(c, b, alpha / 2, prior_sd_total)[2] if len(c) > 1 else 0.0
    budget, hi = float(d_hi), 0.0
    for i in np.argsort(-g, kind="stable"):
        if not np.isfinite(g[i]):
            hi += caps[i]
            continue
        use = min(budget, caps[i] / g[i])
        hi += g[i] * use
        budget -= use
    return float(low_terms.sum()), float(min(hi, caps.sum()))


# --- bounded means: betting confidence sequences ---------------------------------------------
#
# For each candidate mean m, a gambler starting with wealth 1 bets a constant fraction c of it on
# the sign of X - m, scaled to the room X has on the losing side. Under mean m the wealth is a
# nonnegative (super)martingale, so by Ville's inequality the set of m whose wealth never reached
# 1/alpha is a CS (Waudby-Smith & Ramdas, "Estimating means of bounded random variables by
# betting", JRSS-B 86(1), 2024). Constant bets make the wealth a function of the counts alone
# (what Prometheus holds); several fractions are mixed with equal weights (an average of test
# martingales is one; WSR's "diversified" bets), which costs log(len(bets)) in the level
# against the best fraction in hindsight. Each side (lower end, upper end) uses alpha / 2.

CATEGORICAL_BETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.95)
SUM_BETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)


def _log_mean_exp(x, axis: int = 0):
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis=axis) + np.log(np.mean(np.exp(x - top), axis=axis))


def _bisect(rejected, m_in, m_out, iters: int):
    """Move ``m_in`` (not rejected) and ``m_out`` (rejected) towards each other; ``rejected(m)``
    must be monotone between them. Returns ``m_out``: the reported end is never inside."""
    for _ in range(iters):
        mid = (m_in + m_out) / 2
        r = rejected(mid)
        m_out = np.where(r, mid, m_out)
        m_in = np.where(r, m_in, mid)
    return m_out


def categorical_mean_cs(values, counts, alpha: float, low: float, high: float,
                        bets=CATEGORICAL_BETS, iters: int = 36):
    """Exact betting CS ``(lo, hi)`` for the mean of X taking the ``values`` (in
    ``[low, high]``), from how often each was seen (``counts``: last axis = values; leading
    axes are independent sequences). For decision flips: values (-1, 0, 1).

    Lower end: betting fraction ``c`` on "the mean is above m" has wealth
    ``prod_k (1 + c (v_k - m) / (m - low)) ** n_k``; every factor is at least ``1 - c > 0`` and
    decreases in ``m``, so the mixture crosses ``2/alpha`` once and bisection finds where. At the
    sample mean the wealth is at most 1 (concavity), so the sample mean is always inside. The
    upper end mirrors it with ``(m - v_k) / (high - m)``.
    """
    v = np.asarray(values, dtype=float)
    n = np.asarray(counts, dtype=float)
    shape = n.shape[:-1]
    n = n.reshape(-1, len(v))
    total = n.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    mean = np.clip((n @ v) / safe, low, high)
    c = np.asarray(bets, dtype=float)[:, None, None]          # (bets, 2 * seqs, values)
    level = math.log(2.0 / alpha)
    k = len(mean)
    nn = np.concatenate([n, n])
    sign = np.concatenate([np.ones(k), -np.ones(k)])[:, None]  # +: lower end, -: upper end

    def rejected(m):
        room = np.where(sign > 0, m[:, None] - low, high - m[:, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.log1p(c * sign * (v - m[:, None]) / room)
        return _log_mean_exp((nn * np.where(nn > 0, f, 0.0)).sum(axis=2)) >= level

    ends = _bisect(rejected, np.concatenate([mean, mean]),
                   np.concatenate([np.full(k, float(low)), np.full(k, float(high))]), iters)
    lo = np.where((total > 0) & (mean > low), ends[:k], low)
    hi = np.where((total > 0) & (mean < high), ends[k:], high)
    lo, hi = lo.reshape(shape), hi.reshape(shape)
    return (lo, hi) if lo.ndim else (float(lo), float(hi))


def _fan_psi(c):
    return -np.log1p(-c) - c


def bounded_mean_cs(n, total, total_sq, alpha: float, low: float, high: float,
                    bets=SUM_BETS, iters: int = 36):
    """Betting CS ``(lo, hi)`` for the mean of X in ``[low, high]`` from ``n``, the sum of X and
    the sum of X**2 only (a Prometheus counter holds sums, not the sequence).

    The exact wealth ``prod (1 + c xi_i)``, ``xi_i = (X_i - m) / u >= -1``, needs every X_i; it is
    bounded below by ``exp(c sum xi - psi(c) sum xi**2)``, ``psi(c) = -log(1 - c) - c``
    (Fan, Grama & Liu, "Exponential inequalities for martingales with applications",
    Electron. J. Probab. 20, 2015, the inequality ``log(1 + c xi) >= c xi - psi(c) xi**2`` for
    ``xi >= -1``; the same bound underlies Howard et al.'s sub-exponential boundaries). A
    process below a test supermartingale keeps Ville's inequality, so the set where the bound
    stays under ``2/alpha`` is still a CS, and both sums are counters. The scale
    ``u = max(m - low, 2 psi(c) (high - low) / c)`` keeps ``xi >= -1`` and makes the exponent
    decrease in ``m`` below the sample mean (it is a concave quadratic in ``m`` or in ``1/u``
    whose top lies beyond the range), so bisection applies. The upper end mirrors it.
    """
    n, s, q = (np.asarray(x, dtype=float) for x in (n, total, total_sq))
    n, s, q = np.broadcast_arrays(n, s, q)
    shape = n.shape
    n, s, q = n.ravel(), s.ravel(), q.ravel()
    safe = np.where(n > 0, n, 1.0)
    mean = np.clip(s / safe, low, high)
    c = np.asarray(bets, dtype=float)[:, None]
    psi = _fan_psi(c)
    floor = 2 * psi * (high - low) / c
    level = math.log(2.0 / alpha)
    k = len(mean)
    nn, ss, qq = np.tile(n, 2), np.tile(s, 2), np.tile(q, 2)
    sign = np.concatenate([np.ones(k), -np.ones(k)])          # +: lower end, -: upper end

    def rejected(m):
        u = np.maximum(np.where(sign > 0, m - low, high - m), floor)
        dev = sign * (ss - nn * m)                          # sum of the bet-on deviations
        sq = np.maximum(qq - 2 * m * ss + nn * m * m, 0.0)  # sum (X - m)**2
        return _log_mean_exp(c * dev / u - psi * sq / (u * u)) >= level

    ends = _bisect(rejected, np.tile(mean, 2),
                   np.concatenate([np.full(k, float(low)), np.full(k, float(high))]), iters)
    lo = np.where(n > 0, ends[:k], low)
    hi = np.where(n > 0, ends[k:], high)
    lo, hi = lo.reshape(shape), hi.reshape(shape)
    return (lo, hi) if lo.ndim else (float(lo), float(hi))


def mean_ratio_factor(ratio):
    """The largest ``m / L`` for two shares whose ratio lies within ``[1/ratio, ratio]``:
    ``m`` their arithmetic mean, ``L`` their logarithmic mean (``(x - y) / ln(x / y)``). One PSI
    term is ``(x - y)**2 / L`` and one term of the chi-square form ``(x - y)**2 / m``, so PSI is
    at most this factor times the chi-square form. 1 at ratio 1, ~1.04 at 2, ~1.15 at 4."""
    r = np.maximum(np.asarray(ratio, dtype=float), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (r + 1) / 2 * np.log(r) / (r - 1)
    g = np.where(r - 1 < 1e-9, 1.0, g)
    g = np.where(np.isfinite(r), g, np.inf)
    return g if g.ndim else float(g)
