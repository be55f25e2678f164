"""The traffic-router interface every data plane implements.

Modelled on Argo Rollouts' TrafficRoutingReconciler (SetWeight / VerifyWeight): the weight is
set, then read back from the data plane itself, never from our own bookkeeping.
"""

from __future__ import annotations

import abc
import numbers

from paddle_canary.errors import UserError


class RouterError(UserError):
    """The data plane cannot do what was asked (bad backend, config or patch refused, router
    not running, API unreachable). Shared by every router."""


class InvalidWeight(UserError, ValueError):
    """A weight that is not an integer percentage in 0..100."""


def check_weight(weight: object) -> int:
    """Return ``weight`` as an int in 0..100 or raise :class:`InvalidWeight`.

    ``True``/``False``, floats (even 5.0), strings and out-of-range numbers are refused:
    a typo must never move traffic.
    """
    if isinstance(weight, bool) or not isinstance(weight, numbers.Integral):
        raise InvalidWeight(f"weight must be an integer percentage 0..100, got {weight!r}")
    if not 0 <= int(weight) <= 100:
        raise InvalidWeight(f"weight must be between 0 and 100, got {weight}")
    return int(weight)


class TrafficRouter(abc.ABC):
    """Moves a share of users from the stable version to the candidate."""

    @abc.abstractmethod
    def set_weight(self, weight: int) -> None:
        """Send ``weight`` % of users (by sticky bucket) to the candidate. Idempotent."""

    @abc.abstractmethod
    def verify_weight(self, weight: int) -> bool:
        """True when the live data plane serves exactly ``weight`` % to the candidate."""

    @abc.abstractmethod
    def weight(self) -> int:
        """The candidate weight the live data plane serves now."""

    def reset(self) -> None:
        """All traffic to stable (weight 0)."""
        self.set_weight(0)
