"""The four gates: candidate against baseline over the same window, each pass/fail/inconclusive.

Every statistical check compares a confidence sequence (see ``stats``) with its limit: *fail*
when the whole sequence lies beyond the limit, *pass* when it lies wholly within, otherwise
*inconclusive*. Because the sequences are time-uniform, the same window may be judged at every
poll. ``alpha`` is split evenly (Bonferroni) over the :data:`N_SEQUENCES` sequences a step
computes, so the chance that an identical candidate fails *any* check at *any* look is at most
``alpha`` (asymptotically, for the normal-mixture ones).

Paired (shadow) statistics: when the candidate's serving process also scored its requests with
the baseline version (``WindowCounts.paired``, shadow version = the baseline), the rejection
gate judges the mean of the per-row decision flips and the score gate the mean paired score
difference relative to stable's mean, both with exact betting sequences over the same rows
(variance: the flip rate, ~1 %, instead of p(1 - p) ~ 0.23 for two independent groups). PSI
stays a check of the candidate's own score distribution against the baseline's. Without
paired series (no shadow: e.g. a model too large to load twice) every gate uses the unpaired
statistics.

Checks built on asymptotic sequences (mean score, PSI, rejection rate, error-rate difference)
say *inconclusive* below ``min_samples`` rows/requests per version, whatever the data; the
paired checks need ``min_samples`` paired rows. The latency checks use exact (beta-binomial)
sequences and may fail from the first slow requests; the error burst rule and a candidate
restart fail at once. Nothing passes below ``min_samples``.

Each check's status is a function of its interval (:func:`decide`), so the judge can intersect
a check's interval with the one of the previous look and decide again (``judge``).
"""

from __future__ import annotations

import math

import numpy as np

from paddle_canary import telemetry
from paddle_canary.analysis import stats
from paddle_canary.analysis.config import GateConfig
from paddle_canary.analysis.counts import PairedCounts, WindowCounts
from paddle_canary.analysis.verdict import FAIL, INCONCLUSIVE, PASS, Check, GateResult, combine

# Sequences per step: mean, PSI, rejection, latency absolute, latency ratio (stable P95 + two
# candidate shares), error-rate difference.
N_SEQUENCES = 8
P95 = 0.95

# How a check's status follows from its interval (lo, hi) and limit; checks not listed here
# (p95_ratio, whose threshold moves with stable's P95; burst; restarts) are not re-decided.
BAND, UPPER, SHARE = "band", "upper", "share"
RULES = {"mean_score": BAND, "reject_rate_diff": BAND, "psi": UPPER, "error_rate_diff": UPPER,
         "p95_under_max_ms": SHARE}


def decide(rule: str, lo: float, hi: float, limit: float) -> str:
    """``band``: pass inside [-limit, limit], fail wholly outside. ``upper``: fail when the
    interval lies above ``limit``, pass when it lies at or under it. ``share``: fail above,
    pass strictly under (the caller adds the ``min_samples`` condition). NaN: inconclusive."""
    if rule == BAND:
        if lo > limit or hi < -limit:
            return FAIL
        if lo >= -limit and hi <= limit:
            return PASS
        return INCONCLUSIVE
    if lo > limit:
        return FAIL
    if (hi <= limit) if rule == UPPER else (hi < limit):
        return PASS
    return INCONCLUSIVE


def _priors(margin: float) -> tuple[float, ...]:
    """Mixing-prior widths for a gate whose margin is ``margin`` (see ``stats.PRIOR_SCALES``)."""
    return tuple(margin * k for k in stats.PRIOR_SCALES)


def _gate(name: str, checks: list[Check], samples, thresholds, details) -> GateResult:
    status = combine(c.status for c in checks)
    deciding = next((c for c in checks if c.status == status), checks[0])
    shown = [c for c in checks if c.status == FAIL] if status == FAIL else checks
    reason = f"{name} {status}: " + "; ".join(c.reason for c in shown)
    return GateResult(gate=name, status=status, effect=deciding.effect,
                      interval=deciding.interval, samples=tuple(float(s) for s in samples),
                      reason=reason, thresholds=thresholds, checks=tuple(checks),
                      details=details)


def regate(gate: GateResult, checks: list[Check]) -> GateResult:
    """``gate`` with its checks replaced (and its status, interval and reason re-derived)."""
    return _gate(gate.gate, checks, gate.samples, gate.thresholds, gate.details)


def _too_few(name: str, unit: str, what: str, nb: float, nc: float, min_samples: int,
             limit: float) -> Check | None:
    if nb >= min_samples and nc >= min_samples:
        return None
    return Check(name, INCONCLUSIVE, math.nan, (math.nan, math.nan), limit, unit,
                 f"too few {what} (baseline {nb:.0f}, candidate {nc:.0f}; "
                 f"min_samples {min_samples})")


def _share_status(lo: float, hi: float, tail: float, n: float, min_samples: int) -> str:
    """A tail share's status: fail as soon as its CS lies above ``tail`` (valid from the first
    request), pass only when it lies below and ``n`` reached ``min_samples``."""
    status = decide(SHARE, lo, hi, tail)
    return INCONCLUSIVE if status == PASS and n < min_samples else status


def _words(status: str, inside: str, outside: str) -> str:
    return {PASS: inside, FAIL: outside, INCONCLUSIVE: "CS straddles"}[status]


def paired_for(b: WindowCounts, c: WindowCounts) -> PairedCounts | None:
    """The candidate's paired counts when they were scored against this baseline."""
    p = c.paired
    if p is not None and p.shadow_version == b.version and p.rows > 0:
        return p
    return None


def _expm1(x: float) -> float:
    """``math.expm1`` that saturates at inf instead of raising ``OverflowError``."""
    return math.inf if x > 700 else math.expm1(x)


# --- score distribution ----------------------------------------------------------------------

def _mean(w: WindowCounts) -> float:
    if w.score_count > 0 and math.isfinite(w.score_sum):
        return w.score_sum / w.score_count
    return stats.bucket_moments(w.score_buckets, telemetry.SCORE_BUCKETS)[0]


def _variance(w: WindowCounts, mean: float) -> float:
    """Score variance from the buckets, capped by ``mean (1 - mean)`` (scores lie in [0, 1]:
    the Bhatia-Davis bound), so a mean near 0 is not paired with a bucket-width variance."""
    v = stats.bucket_moments(w.score_buckets, telemetry.SCORE_BUCKETS)[1]
    if 0 <= mean <= 1:
        v = min(v, mean * (1 - mean))
    return max(v, 1e-12)


def _unpaired_mean_check(b, c, nb, nc, r, alpha) -> Check:
    mb, mc = _mean(b), _mean(c)
    est, lo, hi = stats.log_ratio_cs(mc, _variance(c, mc), nc, mb, _variance(b, mb), nb, alpha,
                                     prior_sd=_priors(math.log1p(r)))
    if not (math.isfinite(est) and mb > 0 and mc > 0):
        return Check("mean_score", INCONCLUSIVE, math.nan, (math.nan, math.nan), r,
                     "relative", f"mean score {mc:.3g} vs {mb:.3g}: not comparable")
    # decided in log space (no overflow for a collapsed candidate), shown as relative change
    status = _log_band(lo, hi, r)
    eff, lo_r, hi_r = _expm1(est), _expm1(lo), _expm1(hi)
    return Check("mean_score", status, eff, (lo_r, hi_r), r, "relative",
                 f"mean score {mc:.3g} vs {mb:.3g} ({eff:+.1%}, CS {lo_r:+.1%}..{hi_r:+.1%}) "
                 f"{_words(status, 'within', 'outside')} +/-{r:.0%}")


def _log_band(lo: float, hi: float, r: float) -> str:
    """The relative band [-r, r] judged on a log-ratio interval."""
    return decide(BAND, _expm1(lo), _expm1(hi), r)


def _paired_mean_check(p: PairedCounts, r: float, alpha: float) -> Check:
    """Mean paired difference relative to stable's mean on the same rows. Two betting
    sequences at ``alpha / 2`` each: the difference (in [-1, 1]) and stable's mean (in
    [0, 1]; sum of squares bounded by the sum); the ratio's range follows from both."""
    n = p.rows
    d_sum = p.candidate_score_sum - p.stable_score_sum
    d_lo, d_hi = stats.bounded_mean_cs(n, d_sum, p.diff_sq_sum, alpha / 2, -1.0, 1.0)
    s_lo, s_hi = stats.bounded_mean_cs(n, p.stable_score_sum, p.stable_score_sum, alpha / 2,
                                       0.0, 1.0)
    ms = p.stable_score_sum / n
    if s_lo > 0:
        ends = (d_lo / s_lo, d_lo / s_hi, d_hi / s_lo, d_hi / s_hi)
        lo, hi = min(ends), max(ends)
    else:
        lo, hi = -math.inf, math.inf
    eff = d_sum / p.stable_score_sum if p.stable_score_sum > 0 else math.nan
    status = decide(BAND, lo, hi, r)
    return Check("mean_score", status, eff, (lo, hi), r, "relative",
                 f"paired mean score difference {d_sum / n:+.4f} on {n:.0f} rows scored by "
                 f"both ({eff:+.1%} of stable's {ms:.3f}, CS {lo:+.1%}..{hi:+.1%}) "
                 f"{_words(status, 'within', 'outside')} +/-{r:.0%}")


def score_distribution(b: WindowCounts, c: WindowCounts, cfg: GateConfig) -> GateResult:
    g = cfg.score_distribution
    alpha = cfg.alpha / N_SEQUENCES
    nb, nc = float(sum(b.score_buckets)), float(sum(c.score_buckets))
    r = g.max_mean_rel_diff
    thresholds = {"max_mean_rel_diff": r, "max_psi": g.max_psi, "min_samples": cfg.min_samples}
    paired = paired_for(b, c)
    details: dict[str, float] = {"paired": 1.0 if paired else 0.0}
    few = _too_few("mean_score", "relative", "scored rows", nb, nc, cfg.min_samples, r)
    if few:
        psi_few = Check("psi", INCONCLUSIVE, math.nan, (math.nan, math.nan), g.max_psi, "psi",
                        "PSI not judged below min_samples")
        return _gate("score_distribution", [few, psi_few], (nb, nc), thresholds, details)

    if paired is not None:
        details["paired_rows"] = paired.rows
        few_paired = _too_few("mean_score", "relative", "paired rows", nb, paired.rows,
                              cfg.min_samples, r)
        mean_check = few_paired or _paired_mean_check(paired, r, alpha)
    else:
        mean_check = _unpaired_mean_check(b, c, nb, nc, r, alpha)

    # PSI over fixed groups (each >= PSI_MIN_SHARE of the baseline's rows): fail on the lower
    # end of the chi-square form (coarser groups at small counts), pass on a bound on PSI itself
    groups = stats.psi_groups(b.score_buckets)
    kc = np.array([sum(c.score_buckets[i] for i in grp) for grp in groups])
    kb = np.array([sum(b.score_buckets[i] for i in grp) for grp in groups])
    psi_hat = stats.psi(kc, kb)
    priors = _priors(math.sqrt(g.max_psi))
    coarse = stats.coarsen(groups, c.score_buckets, b.score_buckets)
    cc = np.array([sum(c.score_buckets[i] for i in grp) for grp in coarse])
    cb = np.array([sum(b.score_buckets[i] for i in grp) for grp in coarse])
    d_hat, d_lo, _ = stats.chi2_distance_cs(cc, cb, alpha, priors)
    _, psi_hi = stats.psi_bounds(kc, kb, alpha, priors)
    status = decide(UPPER, d_lo, psi_hi, g.max_psi)
    psi_check = Check(
        "psi", status, psi_hat, (d_lo, psi_hi), g.max_psi, "psi",
        f"PSI {psi_hat:.3f} over {len(groups)} score groups (CS {d_lo:.3f}..{psi_hi:.3f}) "
        f"{_words(status, 'below', 'above')} {g.max_psi:g}")
    details.update({"baseline_mean_score": _mean(b), "candidate_mean_score": _mean(c),
                    "psi": psi_hat, "psi_chi2_form": d_hat, "psi_buckets": float(len(groups))})
    return _gate("score_distribution", [mean_check, psi_check], (nb, nc), thresholds, details)


# --- rejection rate --------------------------------------------------------------------------

def rejection_rate(b: WindowCounts, c: WindowCounts, cfg: GateConfig) -> GateResult:
    m = cfg.rejection_rate.max_abs_diff_pp
    nb, nc = b.rows, c.rows
    thresholds = {"max_abs_diff_pp": m, "min_samples": cfg.min_samples}
    paired = paired_for(b, c)
    rb = b.reject / nb if nb > 0 else math.nan
    rc = c.reject / nc if nc > 0 else math.nan
    details = {"baseline_reject_rate": rb, "candidate_reject_rate": rc,
               "paired": 1.0 if paired else 0.0}
    alpha = cfg.alpha / N_SEQUENCES
    if paired is not None:
        n = paired.rows
        details.update({"paired_rows": n, "flips_approve_to_reject": paired.approve_to_reject,
                        "flips_reject_to_approve": paired.reject_to_approve})
        few = _too_few("reject_rate_diff", "pp", "paired rows", nb, n, cfg.min_samples, m)
        if few:
            return _gate("rejection_rate", [few], (nb, nc), thresholds, details)
        up, down = paired.approve_to_reject, paired.reject_to_approve
        lo, hi = stats.categorical_mean_cs((-1.0, 0.0, 1.0), (down, n - up - down, up), alpha,
                                           -1.0, 1.0)
        lo, hi = 100 * lo, 100 * hi
        eff = 100 * (up - down) / n
        status = decide(BAND, lo, hi, m)
        check = Check("reject_rate_diff", status, eff, (lo, hi), m, "pp",
                      f"paired: {up:.0f} rows approve->reject, {down:.0f} reject->approve of "
                      f"{n:.0f} scored by both: {eff:+.2f} pp (CS {lo:+.2f}..{hi:+.2f} pp) "
                      f"{_words(status, 'within', 'outside')} +/-{m:g} pp")
        return _gate("rejection_rate", [check], (nb, nc), thresholds, details)
    few = _too_few("reject_rate_diff", "pp", "scored rows", nb, nc, cfg.min_samples, m)
    if few:
        return _gate("rejection_rate", [few], (nb, nc), thresholds, details)
    lo, hi = stats.diff_cs(c.reject, nc, b.reject, nb, alpha, prior_sd=_priors(m / 100))
    lo, hi = 100 * lo, 100 * hi
    eff = 100 * (rc - rb)
    status = decide(BAND, lo, hi, m)
    check = Check("reject_rate_diff", status, eff, (lo, hi), m, "pp",
                  f"reject rate {rc:.1%} vs {rb:.1%}: {eff:+.2f} pp "
                  f"(CS {lo:+.2f}..{hi:+.2f} pp) {_words(status, 'within', 'outside')} "
                  f"+/-{m:g} pp")
    return _gate("rejection_rate", [check], (nb, nc), thresholds, details)


# --- latency ---------------------------------------------------------------------------------

def latency_p95(b: WindowCounts, c: WindowCounts, cfg: GateConfig) -> GateResult:
    """P95 under ``max_ms`` and at most ``max_ratio`` x stable's, judged on tail shares.

    "P95 <= T" is "at most 5 % of requests take longer than T", a proportion: an exact
    beta-binomial sequence on the candidate's share above ``T`` needs no distributional
    assumption and is valid from the first request. 80 ms is a bucket edge, so that count is
    exact. For the ratio, ``T = max(max_ratio * P95_stable, P95_stable + min_delta_ms)``;
    stable's P95 is bracketed by a sequence (Howard & Ramdas, "Sequential estimation of
    quantiles with applications to A/B-testing and best-arm identification", Bernoulli 28(3),
    2022) and interpolated inside its bucket as ``histogram_quantile`` does. To *fail*, the
    candidate's share above the first bucket edge at or above ``T`` (from the upper end of
    stable's P95) must exceed 5 %: an exact count, no assumption about where in a bucket its
    requests fall. To *pass*, its share above ``T`` (from the lower end), interpolated inside
    the bucket, must stay under 5 %. A shadow's scoring time is not in the candidate's
    histogram (the serving process measures a request before it scores the shadow).
    """
    g = cfg.latency_p95
    alpha = cfg.alpha / N_SEQUENCES
    edges = telemetry.LATENCY_BUCKETS
    nb, nc = float(sum(b.latency_buckets)), float(sum(c.latency_buckets))
    tail = 1 - P95
    thresholds = {"max_ms": g.max_ms, "max_ratio": g.max_ratio, "min_delta_ms": g.min_delta_ms,
                  "min_samples": cfg.min_samples}
    p95_b = stats.quantile(b.latency_buckets, edges, P95) * 1000
    p95_c = stats.quantile(c.latency_buckets, edges, P95) * 1000
    details = {"baseline_p95_ms": p95_b, "candidate_p95_ms": p95_c}
    checks = []

    # absolute: share of candidate requests above max_ms
    k = stats.count_above(c.latency_buckets, edges, g.max_ms / 1000)
    lo, hi = stats.beta_binomial_cs(k, nc, alpha) if nc > 0 else (0.0, 1.0)
    share = k / nc if nc > 0 else math.nan
    status = _share_status(lo, hi, tail, nc, cfg.min_samples)
    text = (f"candidate P95 {p95_c:.1f} ms; {share:.1%} of {nc:.0f} requests above "
            f"{g.max_ms:g} ms (CS {lo:.1%}..{hi:.1%}), limit {tail:.0%}")
    if status == INCONCLUSIVE and nc < cfg.min_samples:
        text += f" (min_samples {cfg.min_samples})"
    checks.append(Check("p95_under_max_ms", status, share, (lo, hi), tail, "share", text))

    # relative: share of candidate requests above max(max_ratio x stable P95, + min_delta_ms)
    def limit(p95_s: float) -> float:
        return max(g.max_ratio * p95_s, p95_s + g.min_delta_ms / 1000)

    if nb < cfg.min_samples or nc == 0:
        checks.append(Check("p95_ratio", INCONCLUSIVE, math.nan, (math.nan, math.nan), tail,
                            "share", f"stable has {nb:.0f} requests, candidate {nc:.0f} "
                            f"(min_samples {cfg.min_samples} for stable's P95)"))
    else:
        lvl_lo, lvl_hi = stats.beta_binomial_cs(P95 * nb, nb, alpha)
        t_pass = limit(stats.quantile(b.latency_buckets, edges, lvl_lo))
        t_fail = stats.edge_at_or_above(
            edges, limit(stats.quantile(b.latency_buckets, edges, lvl_hi)))
        ks = [stats.count_above(c.latency_buckets, edges, t) for t in (t_fail, t_pass)]
        (lo_f, _), (_, hi_p) = zip(*stats.beta_binomial_cs(np.array(ks), nc, alpha))
        t_point = limit(p95_b / 1000)
        share = stats.count_above(c.latency_buckets, edges, t_point) / nc
        status = _share_status(lo_f, hi_p, tail, nc, cfg.min_samples)
        ratio = p95_c / p95_b if p95_b > 0 else math.inf
        checks.append(Check(
            "p95_ratio", status, share, (lo_f, hi_p), tail, "share",
            f"P95 {p95_c:.1f} ms vs stable {p95_b:.1f} ms (x{ratio:.2f}); {share:.1%} of "
            f"candidate requests above max({g.max_ratio:g}x stable P95, +{g.min_delta_ms:g} ms)"
            f" = {t_point * 1000:.1f} ms (CS {lo_f:.1%}..{hi_p:.1%}; fail counted above "
            f"{t_fail * 1000:g} ms), limit {tail:.0%}"))
        details["p95_ratio"] = ratio
    return _gate("latency_p95", checks, (nb, nc), thresholds, details)


# --- errors ----------------------------------------------------------------------------------

def errors(b: WindowCounts, c: WindowCounts, cfg: GateConfig) -> GateResult:
    """Error-rate difference within ``max_abs_diff_pp`` (one-sided), a burst rule, and the
    candidate's process staying up.

    Errors count against requests the model is answerable for (invalid input excluded). A
    burst - at least ``burst_min_errors`` candidate errors making up at least
    ``burst_min_rate_pp`` % of its requests while stable stays below that rate - fails at once,
    whatever the sample size. So does a restart of the candidate's serving process inside the
    window (its counters reset): a candidate that crashes is not one to promote.
    """
    g = cfg.errors
    m = g.max_abs_diff_pp
    nb, nc = b.served, c.served
    rb = b.errors / nb if nb > 0 else 0.0
    rc = c.errors / nc if nc > 0 else 0.0
    thresholds = {"max_abs_diff_pp": m, "burst_min_errors": g.burst_min_errors,
                  "burst_min_rate_pp": g.burst_min_rate_pp, "min_samples": cfg.min_samples}
    burst_rate = g.burst_min_rate_pp / 100
    burst = c.errors >= g.burst_min_errors and rc >= burst_rate and rb < burst_rate
    checks: list[Check] = []
    few = _too_few("error_rate_diff", "pp", "requests", nb, nc, cfg.min_samples, m)
    if few:
        checks.append(few)
    else:
        lo, hi = stats.diff_cs(c.errors, nc, b.errors, nb, cfg.alpha / N_SEQUENCES,
                               prior_sd=_priors(m / 100))
        lo, hi = 100 * lo, 100 * hi
        eff = 100 * (rc - rb)
        status = decide(UPPER, lo, hi, m)
        checks.append(Check(
            "error_rate_diff", status, eff, (lo, hi), m, "pp",
            f"error rate {rc:.2%} vs {rb:.2%}: {eff:+.2f} pp (CS {lo:+.2f}..{hi:+.2f} pp) "
            f"{_words(status, 'within', 'above')} +{m:g} pp"))
    checks.append(Check(
        "burst", FAIL if burst else PASS, c.errors, (c.errors, c.errors),
        float(g.burst_min_errors), "errors",
        (f"burst of {c.errors:.0f} errors = {rc:.1%} of {nc:.0f} candidate requests "
         f"(stable {rb:.1%})" if burst else
         f"no burst ({c.errors:.0f} errors, {rc:.1%})")))
    if c.restarts > 0:
        checks.append(Check("restarts", FAIL, c.restarts, (c.restarts, c.restarts), 0.0,
                            "restarts", f"the candidate's serving process restarted "
                            f"{c.restarts:.0f} time(s) in the window (its counters reset)"))
    details = {"baseline_error_rate": rb, "candidate_error_rate": rc}
    return _gate("errors", checks, (nb, nc), thresholds, details)


GATE_FUNCTIONS = {
    "score_distribution": score_distribution,
    "rejection_rate": rejection_rate,
    "latency_p95": latency_p95,
    "errors": errors,
}
