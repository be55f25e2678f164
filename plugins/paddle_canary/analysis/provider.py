"""Metric providers: a query in, numbers out, and ``is_online()`` (Flagger's RunQuery/IsOnline).

:class:`PrometheusProvider` reads Prometheus' HTTP API through ``prometheus-api-client``.
Connection settings come from the environment (``PADDLE_CANARY_PROMETHEUS_URL``) or from an
Airflow connection-like object (``host``, ``port``, ``schema``); nothing is hard-coded.
:meth:`MetricsProvider.window_counts` never raises for a missing or unreachable Prometheus: it
returns :class:`NoData` with the reason, which the judge turns into *inconclusive*.
"""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from paddle_canary.analysis import promql
from paddle_canary.analysis.counts import NoData, WindowCounts
from paddle_canary.errors import UserError

ENV_URL = "PADDLE_CANARY_PROMETHEUS_URL"
DEFAULT_TIMEOUT_S = 5.0


class QueryError(RuntimeError):
    """Prometheus could not be asked, or refused the query."""


class MetricsProvider(ABC):
    @abstractmethod
    def query(self, promql_text: str) -> list[promql.Sample]:
        """An instant query: ``[(labels, value), ...]``; raises :class:`QueryError`."""

    @abstractmethod
    def samples(self, promql_text: str) -> list[tuple[dict, list[float]]]:
        """A range-vector query (``x[W] @ t``): ``[(labels, [value, ...]), ...]`` in time
        order; raises :class:`QueryError`."""

    @abstractmethod
    def is_online(self) -> bool:
        """True when the backend answers."""

    def window_counts(self, model: str, version: str, *, start: float | None = None,
                      end: float | None = None, window_s: float | None = None,
                      paired_with: str | None = None) -> WindowCounts | NoData:
        """``model``/``version``'s counts over ``[start, end]``, or the last ``window_s`` s.

        ``end`` defaults to now; give ``start`` or ``window_s``. ``paired_with``: the baseline
        version whose shadow scores (paired series) to include, when this version's process
        exports them.
        """
        end = time.time() if end is None else float(end)
        if start is None:
            if window_s is None or not window_s > 0:
                raise UserError("give the window's start or a window length > 0 seconds")
            start = end - float(window_s)
        start = float(start)
        if not end > start:
            raise UserError(f"window end {end:.3f} must be after its start {start:.3f}")
        queries = promql.window_queries(model, version, start, end)
        try:
            last = self.query(queries["end"])
            if not last:
                up = self.query(queries["up"])
                why = ("no scrape target has these labels" if not up else
                       "its scrapes failed throughout the window (up=0)"
                       if max(v for _, v in up) == 0 else "no serving series in it")
                return NoData(model, version, f"no series for model={model} version={version} "
                              f"between {start:.0f} and {end:.0f}: {why}", start, end)
            first = self.query(queries["start"])
            resets = self.query(queries["resets"])
            restarted = sorted({promql.normalise(lab)["__name__"]
                                for lab, v in resets if v > 0})
            raw = [s for name in restarted
                   for s in self.samples(promql.samples_query(name, model, version, start, end))]
        except QueryError as exc:
            return NoData(model, version, str(exc), start, end)
        increases = promql.series_increases(last, first, resets, raw)
        return promql.counts_from_increases(model, version, start, end, increases,
                                            paired_with=paired_with,
                                            restarts=promql.restarts_from_resets(resets))


class PrometheusProvider(MetricsProvider):
    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_S, retries: int = 1,
                 auth: tuple[str, str] | None = None, headers: dict[str, str] | None = None) -> None:
        parsed = urlparse(url or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"Prometheus URL must look like http://host:port, got {url!r}")
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = PrometheusConnect(
            url=self.url, disable_ssl=True, timeout=timeout, auth=auth, headers=headers,
            retry=Retry(total=retries, backoff_factor=0.2, status_forcelist=(502, 503, 504)))

    def __repr__(self) -> str:
        return f"PrometheusProvider({self.url!r})"

    @classmethod
    def from_env(cls, default: str | None = None, **kwargs: Any) -> "PrometheusProvider":
        """From ``$PADDLE_CANARY_PROMETHEUS_URL`` (else ``default``; else a clear error)."""
        url = os.environ.get(ENV_URL) or default
        if not url:
            raise UserError(f"set {ENV_URL} (e.g. http://127.0.0.1:9090) or pass --prometheus")
        return cls(url, **kwargs)

    @classmethod
    def from_connection(cls, conn: Any, **kwargs: Any) -> "PrometheusProvider":
        """From an object with ``host``, ``port`` and ``schema`` (an Airflow ``Connection``).

        ``schema`` is the URL scheme (http by default); ``host`` may already carry one. With a
        ``login``, requests use basic auth (``password``); an ``extra`` ``bearer_token`` is sent
        as ``Authorization: Bearer``.
        """
        host = (getattr(conn, "host", None) or "").strip()
        if not host:
            raise UserError("the Prometheus connection has no host")
        if "://" not in host:
            host = f"{getattr(conn, 'schema', None) or 'http'}://{host}"
        port = getattr(conn, "port", None)
        if port:
            host = f"{host.rstrip('/')}:{int(port)}"
        login = getattr(conn, "login", None)
        if login:
            kwargs.setdefault("auth", (login, getattr(conn, "password", None) or ""))
        extra = getattr(conn, "extra_dejson", None) or {}
        if extra.get("bearer_token"):
            kwargs.setdefault("headers", {"Authorization": f"Bearer {extra['bearer_token']}"})
        return cls(host, **kwargs)

    def _ask(self, promql_text: str, range_s: tuple[float, float, float] | None = None,
             at: float | None = None) -> list[dict]:
        import requests
        from prometheus_api_client import PrometheusApiClientException

        try:
            if range_s is not None:
                start, end, step = range_s
                return self._client.custom_query_range(
                    promql_text, datetime.fromtimestamp(start, timezone.utc),
                    datetime.fromtimestamp(end, timezone.utc), step=f"{step:g}")
            return self._client.custom_query(
                promql_text, params=None if at is None else {"time": f"{at:.3f}"})
        except requests.RequestException as exc:
            raise QueryError(f"Prometheus at {self.url} unreachable: "
                             f"{type(exc).__name__}") from None
        except PrometheusApiClientException as exc:
            raise QueryError(f"Prometheus at {self.url} refused the query: {exc}") from None
        except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not a query result
            raise QueryError(f"Prometheus at {self.url} answered garbage: "
                             f"{type(exc).__name__}: {exc}") from None

    def query(self, promql_text: str, at: float | None = None) -> list[promql.Sample]:
        """An instant query, evaluated now or at ``at`` (epoch seconds)."""
        out = []
        for item in self._ask(promql_text, at=at):
            if "value" not in item:
                raise QueryError("expected an instant vector, got a range vector")
            out.append((item.get("metric", {}), _float(item["value"][1])))
        return out

    def samples(self, promql_text: str) -> list[tuple[dict, list[float]]]:
        out = []
        for item in self._ask(promql_text):
            if "values" not in item:
                raise QueryError("expected a range vector, got an instant vector")
            out.append((item.get("metric", {}), [_float(v) for _, v in item["values"]]))
        return out

    def query_range(self, promql_text: str, start: float, end: float, step: float
                    ) -> list[tuple[dict, list[tuple[float, float]]]]:
        """A range query (whole seconds): ``[(labels, [(ts, value), ...]), ...]``; raises
        :class:`QueryError`."""
        out = []
        for item in self._ask(promql_text, range_s=(start, end, step)):
            if "values" not in item:
                raise QueryError("expected a matrix from a range query")
            out.append((item.get("metric", {}),
                        [(float(t), _float(v)) for t, v in item["values"]]))
        return out

    def is_online(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.url}/-/ready", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan
