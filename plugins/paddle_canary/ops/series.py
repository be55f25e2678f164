"""Series the alert rules and the dashboard read beyond what serving exports (``telemetry``).

Serving processes know their own model and version but not their role in a release, nor the
live weight, nor the plan. These series carry that; the rules and the dashboard are written
against them and tested with synthetic samples. Every one carries ``model``; a model with no
release running exports only the gateway series.

Exported by the gateway (it knows what it routes), one set per model it routes:

* ``paddle_canary_gateway_weight{model}``: the candidate weight (0..100) the live gateway serves.
* ``paddle_canary_gateway_weight_since_seconds{model}``: unix time that weight took effect
  (a reload that keeps the weight, e.g. new backends, keeps the time).
* ``paddle_canary_gateway_backend_info{model, version, role}`` = 1: the version routed as
  ``role="stable"`` and, while there is one, the one routed as ``role="candidate"``.

Exported while a release of the model runs (by whatever serves the gateway's series, fed by
the release controller), absent otherwise:

* ``paddle_canary_release_step_seconds{model}``: how long the release plans to hold the
  current weight: the step interval, plus one more per inconclusive extension granted, plus
  the response timeout of an approval asked before the next step.
* ``paddle_canary_release_window_wait_seconds{model}``: how long the next step waits for its
  promotion window (window opening - time the step became due); 0 or absent when none.
* ``paddle_canary_release_verdict_timestamp_seconds{model, version, weight, status}``: unix
  time of each step's final verdict (``status`` pass / fail / inconclusive; ``version`` the
  candidate, ``weight`` the step's weight), one series per step, kept for the whole release.
  The dashboard draws each as an annotation at that time (Grafana's "series value as
  timestamp"); a counter would not do: a series born at 1 shows no increase.
"""

GATEWAY_WEIGHT = "paddle_canary_gateway_weight"
GATEWAY_WEIGHT_SINCE = "paddle_canary_gateway_weight_since_seconds"
GATEWAY_BACKEND_INFO = "paddle_canary_gateway_backend_info"
ROLES = ("stable", "candidate")

RELEASE_STEP_SECONDS = "paddle_canary_release_step_seconds"
RELEASE_WINDOW_WAIT = "paddle_canary_release_window_wait_seconds"
RELEASE_VERDICT_TIME = "paddle_canary_release_verdict_timestamp_seconds"
VERDICT_STATUSES = ("pass", "fail", "inconclusive")

# Label names, as in telemetry.LABELS.
ROLE_LABEL = "role"
WEIGHT_LABEL = "weight"
STATUS_LABEL = "status"
