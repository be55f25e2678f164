"""The four gates: candidate against baseline over the same window, each pass/fail/inconclusive.

Every statistical check compares a confidence sequence (see ``stats``) with its limit: *fail*
when the whole sequence lies beyond the limit, *pass* when it lies wholly within, otherwise
*inconclusive*. Because the sequences are time-uniform, the same window may be judged at every
poll. ``alpha`` is split evenly (Bonferroni) over the :data:`N_SEQUENCES` sequences a step
computes, so the chance that an identical candidate fails *any* check at *any* look is at most
``alpha`` (asymptotically, for the normal-mixture ones).

Checks built on asymptotic sequences (mean score, PSI, rejection rate, error-rate difference)
say *inconclusive* below ``min_samples`` rows/requests per version, whatever the data. The
latency checks use exact (beta-binomial) sequences and may fail from the first slow requests;
the error burst rule fails at once. Nothing passes below ``min_samples``.
"""

from __future__ import annotations

import math

import numpy as np

from paddle_canary import telemetry
from paddle_canary.analysis import stats
from paddle_canary.analysis.config import GateConfig
from paddle_canary.analysis.counts import WindowCounts
from paddle_canary.analysis.verdict import FAIL, INCONCLUSIVE, PASS, Check, GateResult, combine

# Sequences per step: mean, PSI, rejection, latency absolute, latency ratio (stable P95 + two
# candidate shares), error-rate difference.
N_SEQUENCES = 8
P95 = 0.95


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


def _too_few(name: str, unit: str, what: str, nb: float, nc: float, min_samples: int,
             limit: float) -> Check | None:
    if nb >= min_samples and nc >= min_samples:
        return None
    return Check(name, INCONCLUSIVE, math.nan, (math.nan, math.nan), limit, unit,
                 f"too few {what} (baseline {nb:.0f}, candidate {nc:.0f}; "
                 f"min_samples {min_samples})")


def _band(lo: float, hi: float, low_limit: float, high_limit: float) -> str:
    """pass if [lo, hi] lies inside [low_limit, high_limit], fail if wholly outside."""
    if lo > high_limit or hi < low_limit:
        return FAIL
    if lo >= low_limit and hi <= high_limit:
        return PASS
    return INCONCLUSIVE


def _share_status(lo: float, hi: float, tail: float, n: float, min_samples: int) -> str:
    """A tail share's status: fail as soon as its CS lies above ``tail`` (valid from the first
    request), pass only when it lies below and ``n`` reached ``min_samples``."""
    if lo > tail:
        return FAIL
    if hi < tail and n >= min_samples:
        return PASS
    return INCONCLUSIVE


def _words(status: str, inside: str, outside: str) -> str:
    return {PASS: inside, FAIL: outside, INCONCLUSIVE: "CS straddles"}[status]


# --- score distribution ----------------------------------------------------------------------

def _mean(w: WindowCounts) -> float:
    if w.score_count > 0 and math.isfinite(w.score_sum):
        return w.score_sum / w.score_count
    return stats.bucket_moments(w.score_buckets, telemetry.SCORE_BUCKETS)[0]


def score_distribution(b: WindowCounts, c: WindowCounts, cfg: GateConfig) -> GateResult:
    g = cfg.score_distribution
    alpha = cfg.alpha / N_SEQUENCES
    nb, nc = float(sum(b.score_buckets)), float(sum(c.score_buckets))
    r = g.max_mean_rel_diff
    thresholds = {"max_mean_rel_diff": r, "max_psi": g.max_psi, "min_samples": cfg.min_samples}
    few = _too_few("mean_score", "relative", "scored rows", nb, nc, cfg.min_samples, r)
    if few:
        psi_few = Check("psi", INCONCLUSIVE, math.nan, (math.nan, math.nan), g.max_psi, "psi",
                        "PSI not judged below min_samples")
        return _gate("score_distribution", [few, psi_few], (nb, nc), thresholds, {})

    mb, mc = _mean(b), _mean(c)
    vb = stats.bucket_moments(b.score_buckets, telemetry.SCORE_BUCKETS)[1]
    vc = stats.bucket_moments(c.score_buckets, telemetry.SCORE_BUCKETS)[1]
    est, lo, hi = stats.log_ratio_cs(mc, max(vc, 1e-6), nc, mb, max(vb, 1e-6), nb, alpha,
                                     prior_sd=_priors(math.log1p(r)))
    if math.isnan(est):
        mean_check = Check("mean_score", INCONCLUSIVE, math.nan, (math.nan, math.nan), r,
                           "relative", f"mean score {mc:.3f} vs {mb:.3f}: not comparable")
    else:
        eff, lo_r, hi_r = math.expm1(est), math.expm1(lo), math.expm1(hi)
        status = _band(lo_r, hi_r, -r, r)
        mean_check = Check(
            "mean_score", status, eff, (lo_r, hi_r), r, "relative",
            f"mean score {mc:.3f} vs {mb:.3f} ({eff:+.1%}, CS {lo_r:+.1%}..{hi_r:+.1%}) "
            f"{_words(status, 'within', 'outside')} +/-{r:.0%}")

    groups = stats.merge_sparse(c.score_buckets, b.score_buckets)
    kc = np.array([sum(c.score_buckets[i] for i in grp) for grp in groups])
    kb = np.array([sum(b.score_buckets[i] for i in grp) for grp in groups])
    psi_hat = stats.psi(kc, kb)
    d_hat, d_lo, d_hi = stats.chi2_distance_cs(kc, kb, alpha, _priors(math.sqrt(g.max_psi)))
    if d_lo > g.max_psi:
        status = FAIL
    elif d_hi <= g.max_psi:
        status = PASS
    else:
        status = INCONCLUSIVE
    psi_check = Check(
        "psi", status, psi_hat, (d_lo, d_hi), g.max_psi, "psi",
        f"PSI {psi_hat:.3f} over {len(groups)} buckets (chi2 form {d_hat:.3f}, "
        f"CS {d_lo:.3f}..{d_hi:.3f}) {_words(status, 'below', 'above')} {g.max_psi:g}")
    details = {"baseline_mean_score": mb, "candidate_mean_score": mc, "psi": psi_hat,
               "psi_chi2_form": d_hat, "psi_buckets": float(len(groups))}
    return _gate("score_distribution", [mean_check, psi_check], (nb, nc), thresholds, details)


# --- rejection rate --------------------------------------------------------------------------

def rejection_rate(b: WindowCounts, c: WindowCounts, cfg: GateConfig) -> GateResult:
    m = cfg.rejection_rate.max_abs_diff_pp
    nb, nc = b.rows, c.rows
    thresholds = {"max_abs_diff_pp": m, "min_samples": cfg.min_samples}
    few = _too_few("reject_rate_diff", "pp", "scored rows", nb, nc, cfg.min_samples, m)
    if few:
        return _gate("rejection_rate", [few], (nb, nc), thresholds, {})
    lo, hi = stats.diff_cs(c.reject, nc, b.reject, nb, cfg.alpha / N_SEQUENCES,
                           prior_sd=_priors(m / 100))
    lo, hi = 100 * lo, 100 * hi
    rb, rc = b.reject / nb, c.reject / nc
    eff = 100 * (rc - rb)
    status = _band(lo, hi, -m, m)
    check = Check("reject_rate_diff", status, eff, (lo, hi), m, "pp",
                  f"reject rate {rc:.1%} vs {rb:.1%}: {eff:+.2f} pp "
                  f"(CS {lo:+.2f}..{hi:+.2f} pp) {_words(status, 'within', 'outside')} "
                  f"+/-{m:g} pp")
    details = {"baseline_reject_rate": rb, "candidate_reject_rate": rc}
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
    the bucket, must stay under 5 %.
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
    """Error-rate difference within ``max_abs_diff_pp`` (one-sided), plus a burst rule.

    Errors count against requests the model is answerable for (invalid input excluded). A
    burst - at least ``burst_min_errors`` candidate errors making up at least
    ``burst_min_rate_pp`` % of its requests while stable stays below that rate - fails at once,
    whatever the sample size.
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
        status = FAIL if lo > m else PASS if hi <= m else INCONCLUSIVE
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
    details = {"baseline_error_rate": rb, "candidate_error_rate": rc}
    return _gate("errors", checks, (nb, nc), thresholds, details)


GATE_FUNCTIONS = {
    "score_distribution": score_distribution,
    "rejection_rate": rejection_rate,
    "latency_p95": latency_p95,
    "errors": errors,
}
