"""The names every part agrees on: Prometheus metric names, labels and bucket edges.

The serving server exposes these series; the analysis package queries them; the report reads
them. Every series carries ``model`` and ``version`` so canary and stable never mix
(Argo Rollouts #3802).
"""

LABELS = ("model", "version")

# Histogram of /predict latency in seconds, observed per request (batch requests count once).
REQUEST_LATENCY = "paddle_canary_request_duration_seconds"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04,
    0.05, 0.065, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
)

# Histogram of scores, one observation per scored row. Twenty equal-width buckets on [0, 1].
SCORE = "paddle_canary_score"
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

# Counter of decisions per scored row, label decision="approve"|"reject".
DECISIONS = "paddle_canary_decisions_total"

# Counter of /predict requests by outcome, label outcome="ok"|"invalid_input"|"error".
# "invalid_input" is the caller's fault (422) and is not held against the model;
# "error" is the model's or the server's fault (5xx, non-finite output).
REQUESTS = "paddle_canary_requests_total"

# Gauge = 1 with labels model, version, content_hash, device ("cpu" or "gpu:N").
MODEL_INFO = "paddle_canary_model_info"

# Paired (shadow) series: exposed only by a candidate's process started with --shadow, which
# also scores every answered request with the stable version loaded beside it (never returned;
# its time is not in REQUEST_LATENCY). Every paired series carries SHADOW_LABEL = the stable
# version that scored the rows as well as model and version (the candidate). Counters only, so
# Prometheus' reset handling applies; means and variances come from sums.
SHADOW_LABEL = "shadow_version"
# Gauge = 1 with labels model, version, shadow_version, shadow_content_hash.
SHADOW_INFO = "paddle_canary_shadow_info"
# Rows scored by both versions.
PAIRED_ROWS = "paddle_canary_paired_rows_total"
# Decision flips per row, label direction="approve_to_reject" (stable approved, candidate
# rejected) | "reject_to_approve".
PAIRED_FLIPS = "paddle_canary_paired_flips_total"
FLIP_DIRECTIONS = ("approve_to_reject", "reject_to_approve")
# Sum of scores over the paired rows, label scorer="candidate" | "stable" (clipped to [0, 1]).
PAIRED_SCORE_SUM = "paddle_canary_paired_score_sum_total"
SCORERS = ("candidate", "stable")
# Sum of (candidate score - stable score)**2 over the paired rows.
PAIRED_DIFF_SQ = "paddle_canary_paired_score_diff_squared_total"
# Requests answered but not shadow-scored, label reason="overload" (too many rows waiting for
# the shadow) | "error" (the shadow raised or gave a non-finite score).
SHADOW_SKIPPED = "paddle_canary_shadow_skipped_total"
SKIP_REASONS = ("overload", "error")
# Seconds spent scoring with the shadow (its cost, outside the candidate's latency).
SHADOW_SECONDS = "paddle_canary_shadow_seconds_total"

# Response header naming the version that answered; nginx passes it through.
VERSION_HEADER = "X-Model-Version"
# Request header carrying the user ID that sticky routing hashes.
USER_HEADER = "X-User-ID"
