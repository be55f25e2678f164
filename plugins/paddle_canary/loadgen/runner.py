"""Send synthetic users' requests to a URL and summarise what came back.

A small pool of threads, each with one keep-alive ``http.client`` connection. With ``rate``
the requests follow a fixed schedule (request k at ``k / rate`` s, open loop, no catching up
beyond the schedule); without it every thread sends as fast as answers come (closed loop).
The run ends after ``requests`` requests, after ``duration_s`` seconds, or when ``stop`` is set
(the CLI sets it on SIGTERM/SIGINT), whichever comes first; the summary covers what was sent.

A keep-alive connection the server closed while idle (nginx closes idle connections on a
reload) is noticed before reuse and reopened (``reconnects``; nothing was sent on it), as
urllib3 does. If the close crosses a request already written, no byte of an answer came back
and the connection had served before, the request is sent once more on a fresh connection, as
browsers do; such retries are counted in ``stale_retries``. Neither is a failure. Anything else that is not a 2xx
answer is a failure: connection errors and non-2xx statuses, each counted.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import select
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import numpy as np

from paddle_canary.errors import UserError
from paddle_canary.loadgen.users import RequestPlan, synthetic_reference, user_ids
from paddle_canary.telemetry import USER_HEADER, VERSION_HEADER

_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
          http.client.RemoteDisconnected)
MAX_ERROR_SAMPLES = 10


@dataclasses.dataclass(frozen=True)
class Record:
    """One request: ``status`` 0 means no HTTP answer (``error`` says why)."""
    start_s: float  # seconds since the run started
    user_id: str
    status: int
    version: str | None
    latency_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclasses.dataclass
class LoadSummary:
    requests: int
    ok: int
    failures: int
    connection_errors: int
    http_errors: int
    stale_retries: int
    reconnects: int
    by_version: dict[str, int]
    by_status: dict[str, int]
    latency_ms: dict[str, float]
    duration_s: float
    throughput_rps: float
    error_samples: list[str]
    records: list[Record] = dataclasses.field(default_factory=list, repr=False)

    def to_dict(self, with_records: bool = False) -> dict:
        data = dataclasses.asdict(self)
        data["records"] = [dataclasses.asdict(r) for r in self.records] if with_records else []
        if not with_records:
            del data["records"]
        return data

    def to_json(self, with_records: bool = False) -> str:
        return json.dumps(self.to_dict(with_records), indent=2, sort_keys=True) + "\n"

    def lines(self) -> list[str]:
        lat = self.latency_ms
        versions = ", ".join(f"{v}={n}" for v, n in sorted(self.by_version.items())) or "-"
        return [
            f"requests {self.requests} in {self.duration_s:.1f}s "
            f"({self.throughput_rps:.0f}/s): ok {self.ok}, failures {self.failures} "
            f"(connection {self.connection_errors}, non-2xx {self.http_errors}), "
            f"keep-alive: {self.reconnects} reopened idle, {self.stale_retries} resent",
            f"versions: {versions}",
            f"latency ms: p50 {lat.get('p50', float('nan')):.2f}  p95 {lat.get('p95', float('nan')):.2f}"
            f"  p99 {lat.get('p99', float('nan')):.2f}",
        ] + [f"error: {e}" for e in self.error_samples]


def summarise(records: list[Record], duration_s: float, stale_retries: int = 0,
              reconnects: int = 0, keep_records: bool = False) -> LoadSummary:
    ok = [r for r in records if r.ok]
    conn_errors = sum(1 for r in records if r.status == 0)
    http_errors = sum(1 for r in records if r.status and not r.ok)
    latencies = np.array([r.latency_s for r in ok]) * 1000.0
    latency = {}
    if latencies.size:
        p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
        latency = {"p50": float(p50), "p95": float(p95), "p99": float(p99),
                   "mean": float(latencies.mean()), "max": float(latencies.max())}
    samples = []
    for r in records:
        if not r.ok and len(samples) < MAX_ERROR_SAMPLES:
            samples.append(f"{r.user_id}: " + (r.error or f"HTTP {r.status}"))
    return LoadSummary(
        requests=len(records), ok=len(ok), failures=len(records) - len(ok),
        connection_errors=conn_errors, http_errors=http_errors, stale_retries=stale_retries,
        reconnects=reconnects,
        by_version=dict(Counter(r.version or "none" for r in ok)),
        by_status=dict(Counter(str(r.status) for r in records)),
        latency_ms=latency, duration_s=duration_s,
        throughput_rps=len(records) / duration_s if duration_s > 0 else 0.0,
        error_samples=samples, records=records if keep_records else [])


def _target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UserError(f"load target must be an http:// URL, got {url!r}")
    return parts.hostname, parts.port or 80, parts.path or "/predict"


class _Worker:
    def __init__(self, host: str, port: int, path: str, timeout_s: float) -> None:
        self.host, self.port, self.path, self.timeout_s = host, port, path, timeout_s
        self.conn: http.client.HTTPConnection | None = None
        self.stale_retries = 0
        self.reconnects = 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _exchange(self, user: str, body: bytes) -> tuple[int, str | None]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        headers = {"Content-Type": "application/json"}
        if user:
            headers[USER_HEADER] = user
        self.conn.request("POST", self.path, body=body, headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        if resp.will_close:
            self.close()
        return resp.status, resp.getheader(VERSION_HEADER)

    def _drop_if_closed(self) -> None:
        """Reopen a kept-alive connection the server has closed (readable while idle = EOF)."""
        sock = self.conn.sock if self.conn is not None else None
        if sock is not None and select.select([sock], [], [], 0)[0]:
            self.close()
            self.reconnects += 1

    def send(self, t0: float, user: str, body: bytes) -> Record:
        start = time.perf_counter()
        self._drop_if_closed()
        reused = self.conn is not None and self.conn.sock is not None
        try:
            try:
                status, version = self._exchange(user, body)
            except _STALE:
                if not reused:
                    raise
                self.close()  # the server closed an idle keep-alive connection: reopen once
                self.stale_retries += 1
                status, version = self._exchange(user, body)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Record(start - t0, user, 0, None, time.perf_counter() - start,
                          f"{type(exc).__name__}: {exc}")
        return Record(start - t0, user, status, version, time.perf_counter() - start)


def run_load(url: str, *, users: int | list[str] = 1000, duration_s: float | None = None,
             requests: int | None = None, rate: float | None = None, concurrency: int = 4,
             reference=None, seed: int = 0, timeout_s: float = 10.0,
             stop: threading.Event | None = None, keep_records: bool = False,
             without_user_share: float = 0.0) -> LoadSummary:
    """Send requests from synthetic users to ``url`` (``http://host:port/predict``).

    ``users``: a count (IDs ``user-000001``...) or a list of IDs. ``reference``: feature rows to
    draw from (a model card's ``reference_inputs()``); seeded standard-normal rows if None.
    ``without_user_share``: fraction of requests sent without ``X-User-ID`` (their body still
    names the user; their record's ``user_id`` is ""). At least one of ``duration_s`` / ``requests`` bounds the run.
    """
    if duration_s is None and requests is None:
        raise UserError("bound the load: give a duration, a request count or both")
    if duration_s is not None and not duration_s > 0:
        raise UserError(f"duration must be > 0 s, got {duration_s}")
    if requests is not None and (isinstance(requests, bool) or not isinstance(requests, int)
                                 or requests < 1):
        raise UserError(f"requests must be a positive integer, got {requests!r}")
    if rate is not None and not rate > 0:
        raise UserError(f"rate must be > 0 requests/s, got {rate}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 256:
        raise UserError(f"concurrency must be an integer in 1..256, got {concurrency!r}")
    if not 0.0 <= without_user_share <= 1.0:
        raise UserError(f"without_user_share must be in [0, 1], got {without_user_share}")
    host, port, path = _target(url)
    ids = user_ids(users) if isinstance(users, int) else list(users)
    if not ids:
        raise UserError("no users given")
    plan = RequestPlan(ids, synthetic_reference(seed=seed) if reference is None else reference,
                       seed)
    no_user_every = round(1 / without_user_share) if without_user_share else 0
    stop = stop or threading.Event()

    lock = threading.Lock()
    counter = iter(range(requests if requests is not None else 2**62))
    records: list[Record] = []
    workers = [_Worker(host, port, path, timeout_s) for _ in range(concurrency)]
    t0 = time.perf_counter()
    deadline = t0 + duration_s if duration_s is not None else None

    def loop(worker: _Worker) -> None:
        try:
            while not stop.is_set():
                with lock:
                    k = next(counter, None)
                if k is None:
                    return
                if rate is not None:
                    due = t0 + k / rate
                    if deadline is not None and due >= deadline:
                        return
                    delay = due - time.perf_counter()
                    if delay > 0 and stop.wait(delay):
                        return
                elif deadline is not None and time.perf_counter() >= deadline:
                    return
                user, body = plan.body(k)
                header_user = "" if no_user_every and k % no_user_every == 0 else user
                record = worker.send(t0, header_user, body)
                with lock:
                    records.append(record)
        finally:
            worker.close()

    threads = [threading.Thread(target=loop, args=(w,), daemon=True, name=f"loadgen-{i}")
               for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)  # short joins keep the main thread responsive to signals
    duration = time.perf_counter() - t0
    with lock:
        done = sorted(records, key=lambda r: r.start_s)
    return summarise(done, duration, sum(w.stale_retries for w in workers),
                     sum(w.reconnects for w in workers), keep_records)
