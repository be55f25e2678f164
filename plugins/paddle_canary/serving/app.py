"""The HTTP side of a serving process: a plain ASGI application (run by uvicorn).

Routes
  POST /predict        {"user_id", "features": [n]}        -> {"score", "decision", ...}
  POST /predict/batch  {"user_id", "instances": [[n], ...]} -> {"scores", "decisions", ...}
  GET  /health         the process is up
  GET  /deep_health    a real inference on reference rows: finite and in [0, 1], else 503
  GET  /metrics        Prometheus text (names in ``paddle_canary.telemetry``)

With a shadow (``paddle-canary serve --shadow VERSION``: the stable version loaded in the same
process), every answered /predict request is then scored by the shadow too and the pair counted
in the paired series (``serving.shadow``); the shadow's answer is never returned.

Every response carries ``X-Model-Version`` and ``X-Request-ID`` (the caller's, when it sent a
sane one; a new one otherwise). Bad input is 422 (413 for a body over the size limit) with
``{"error": "..."}`` naming the problem; a model failure (an exception, a non-finite score) is
500 and is counted as ``outcome="error"``; the process stays up either way.

No web framework: a Starlette echo answers half the requests per second of a bare ASGI echo
here, more than this whole model costs (bench/RESULTS.md, "Serving"), and five fixed routes do
not need one.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time

import numpy as np
import orjson

from paddle_canary import telemetry
from paddle_canary.serving import inputs
from paddle_canary.serving.batcher import MicroBatcher
from paddle_canary.serving.inputs import InvalidInput
from paddle_canary.serving.logs import RequestLog, log
from paddle_canary.serving.metrics import CONTENT_TYPE, ServingMetrics
from paddle_canary.serving.shadow import Shadow

# Every /deep_health scores this many reference rows live (spread over the sample); every
# reference row is scored once at start, so a fault that only some inputs trigger (bad-nan: NaN
# for 50 of its 200 rows) shows too, without a slow model (bad-slow: ~15 ms a row) stalling the
# event loop for seconds on each probe.
DEEP_HEALTH_ROWS = 8
JSON = b"application/json"


def _caller_request_id(scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if 0 < len(value) <= 128 and value.isascii() and value.decode().isprintable():
                return value.decode()
            break
    return None


def _content_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class ServingApp:
    """ASGI app over one model version. ``card`` is a registry ``ModelCard`` (or anything with
    ``model, version, n_features, content_hash, decision(score), reference_inputs()``);
    ``predictor`` has ``predict(rows) -> scores`` and ``device``. ``shadow_card`` and
    ``shadow_predictor``: the stable version to score every answered request with as well
    (paired analysis), or None."""

    def __init__(self, card, predictor, deep_health_rows: int = DEEP_HEALTH_ROWS,
                 shadow_card=None, shadow_predictor=None):
        self.card = card
        self.predictor = predictor
        self.model, self.version = card.model, card.version
        self.n_features = int(card.n_features)
        self.metrics = ServingMetrics(
            card.model, card.version, card.content_hash, predictor.device,
            shadow_version=shadow_card.version if shadow_card else None,
            shadow_hash=shadow_card.content_hash if shadow_card else None)
        self.shadow = (Shadow(shadow_card, shadow_predictor, self.metrics,
                              card.decision_threshold) if shadow_card else None)
        self.batcher = MicroBatcher(predictor.predict)
        self.request_log = RequestLog(card.model, card.version)
        # Request IDs we make: a random per-process prefix and a counter (unique, and cheap).
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)
        ref = np.asarray(card.reference_inputs(), dtype=np.float32)
        self.reference_rows = ref
        self.probe_index = np.unique(np.linspace(0, len(ref) - 1, min(deep_health_rows, len(ref)))
                                     .astype(int))
        self.reference_problem = self.check_rows(np.arange(len(ref)))
        if self.reference_problem:
            log(logging.WARNING, "reference check failing", reason=self.reference_problem,
                rows=len(ref))
        self.started = time.time()
        self._version_header = (telemetry.VERSION_HEADER.lower().encode(), card.version.encode())
        self._routes = {
            "/predict": ("POST", self.predict),
            "/predict/batch": ("POST", self.predict_batch),
            "/health": ("GET", self.health),
            "/deep_health": ("GET", self.deep_health),
            "/metrics": ("GET", self.metrics_page),
        }

    # --- ASGI plumbing -------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        request_id = _caller_request_id(scope) or f"{self._id_prefix}{next(self._ids)}"
        route = self._routes.get(scope["path"])
        if route is None:
            return await self._send(send, 404, {"error": f"no route {scope['path']}"},
                                    request_id)
        method, handler = route
        if scope["method"] != method and not (method == "GET" and scope["method"] == "HEAD"):
            return await self._send(send, 405, {"error": f"use {method} on {scope['path']}"},
                                    request_id, extra=[(b"allow", method.encode())])
        try:
            await handler(scope, receive, send, request_id)
        except Exception:  # noqa: BLE001 - last resort: answer 500, keep serving
            log(logging.ERROR, "unhandled error", request_id=request_id, path=scope["path"],
                exc_info=True)
            await self._send(send, 500, {"error": "internal error"}, request_id)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                log(logging.INFO, "ready", device=self.predictor.device,
                    content_hash=self.card.content_hash)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                log(logging.INFO, "stopping", predictor_calls=self.batcher.calls,
                    rows_scored=self.batcher.rows)
                self.request_log.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send(self, send, status: int, payload, request_id: str,
                    content_type: bytes = JSON, extra=()):
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            self._version_header,
            (b"x-request-id", request_id.encode()),
            *extra,
        ]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _read_body(scope, receive, limit: int) -> bytes:
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            raise InvalidInput(f"body is {declared} bytes; at most {limit} here", status=413)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionError("client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise InvalidInput(f"body is over {limit} bytes; at most {limit} here",
                                   status=413)
            chunks.append(chunk)
            if not message.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # --- routes ----------------------------------------------------------------------------
    async def predict(self, scope, receive, send, request_id):
        await self._score(scope, receive, send, request_id, inputs.MAX_BODY_SINGLE,
                          inputs.parse_single, batch=False)

    async def predict_batch(self, scope, receive, send, request_id):
        await self._score(scope, receive, send, request_id, inputs.MAX_BODY_BATCH,
                          inputs.parse_batch, batch=True)

    async def _score(self, scope, receive, send, request_id, limit, parse, batch):
        t0 = time.perf_counter()
        try:
            rows = parse(await self._read_body(scope, receive, limit), self.n_features)[1]
        except InvalidInput as exc:
            self.metrics.refused()
            self.request_log.line("refused", request_id, status=exc.status,
                                  outcome="invalid_input", error=str(exc))
            return await self._send(send, exc.status, {"error": str(exc)}, request_id)
        except ConnectionError:
            return
        try:
            scores = await self.batcher.score(rows)
            total = sum(scores)
            if total - total != 0.0:  # NaN or inf somewhere (or an overflowing sum): look
                bad = [i for i, s in enumerate(scores) if not math.isfinite(s)]
                if bad:
                    raise FloatingPointError(f"the model returned a non-finite score "
                                             f"({scores[bad[0]]}) for row {bad[0]}")
        except Exception as exc:  # noqa: BLE001 - the model's fault, counted against it
            seconds = time.perf_counter() - t0
            self.metrics.failed(seconds)
            log(logging.ERROR, "model error", request_id=request_id, status=500,
                outcome="error", error=f"{type(exc).__name__}: {exc}",
                latency_ms=round(seconds * 1000, 3),
                exc_info=not isinstance(exc, FloatingPointError))
            return await self._send(send, 500, {"error": f"model error: {exc}"}, request_id)
        decide = self.card.decision
        decisions = [decide(s) for s in scores]
        if batch:
            payload = {"scores": scores, "decisions": decisions}
        else:
            payload = {"score": scores[0], "decision": decisions[0]}
        payload["model_version"] = self.version
        payload["request_id"] = request_id
        body = orjson.dumps(payload)
        seconds = time.perf_counter() - t0
        self.metrics.scored(scores, decisions, seconds)
        detail = {"rejects": decisions.count("reject")} if batch else {"decision": decisions[0]}
        self.request_log.line("predict", request_id, status=200, outcome="ok",
                              rows=len(scores), latency_ms=round(seconds * 1000, 3), **detail)
        await self._send(send, 200, body, request_id)
        if self.shadow is not None:  # after the answer: not in the latency above
            await self.shadow.score(rows, scores, request_id)

    async def health(self, scope, receive, send, request_id):
        await self._send(send, 200, {"status": "ok", "model": self.model,
                                     "version": self.version,
                                     "uptime_s": round(time.time() - self.started, 1)},
                         request_id)

    def check_rows(self, index: np.ndarray) -> str | None:
        """Score the reference rows at ``index``: None when every score is finite and in
        [0, 1], the first problem otherwise."""
        try:
            scores = self.predictor.predict(self.reference_rows[index])
        except Exception as exc:  # noqa: BLE001
            return f"inference failed: {type(exc).__name__}: {exc}"
        for i, s in zip(index.tolist(), scores.tolist()):
            if not math.isfinite(s):
                return f"reference row {i} scored {s}: not finite"
            if not 0.0 <= s <= 1.0:
                return f"reference row {i} scored {s}: outside [0, 1]"
        return None

    async def deep_health(self, scope, receive, send, request_id):
        t0 = time.perf_counter()
        reason = self.check_rows(self.probe_index)
        if reason is None and self.reference_problem:
            reason = (f"{self.reference_problem} (all {len(self.reference_rows)} reference rows "
                      "were scored at start)")
        body = {"status": "ok" if reason is None else "failing", "model": self.model,
                "version": self.version, "device": self.predictor.device,
                "shadow": self.shadow.version if self.shadow else None,
                "rows": len(self.probe_index), "reference_rows": len(self.reference_rows),
                "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
        if reason is not None:
            body["reason"] = reason
            log(logging.WARNING, "deep_health failing", request_id=request_id, reason=reason)
        await self._send(send, 200 if reason is None else 503, body, request_id)

    async def metrics_page(self, scope, receive, send, request_id):
        await self._send(send, 200, self.metrics.exposition(), request_id,
                         content_type=CONTENT_TYPE.encode())


def create_app(card, predictor, **kwargs) -> ServingApp:
    """The ASGI app serving ``card``'s version with ``predictor``."""
    return ServingApp(card, predictor, **kwargs)
