"""Limits on what a client may hold of a serving process before its request is even read.

uvicorn's httptools protocol takes request headers of any size (a 1 MB header was accepted)
and keeps a connection open for as long as a client sends header bytes, however slowly (a
slow-header connection stayed open indefinitely; uvicorn's keep-alive timeout only runs
between requests, and nothing runs on a fresh connection). :func:`guarded_protocol` builds a
subclass that

* answers **431** and closes when the request line and headers exceed ``max_header_bytes``
  (default 16 KiB, h11's default limit; nginx sends at most 4 x 8 KiB), counted on the raw bytes
  while the headers are incomplete (httptools would otherwise buffer a huge header before any
  callback sees it) and exactly on the parsed headers when they complete;
* answers **408** and closes when the headers have not all arrived ``header_timeout_s``
  (default 10 s) after the connection opened or after the first byte of a keep-alive
  connection's next request.

Bodies are not affected (the app's own size limits apply; see ``app._read_body``).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT_S = 10.0


class _HeadersTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    max_header_bytes = MAX_HEADER_BYTES
    header_timeout_s = HEADER_TIMEOUT_S

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._reading_headers = True
        self._raw_header_bytes = 0
        self._parsed_header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._too_large = False

    # --- connection ----------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._reading_headers:
            self._raw_header_bytes += len(data)
            if self._header_timer is None:
                self._arm()
        super().data_received(data)
        if self._reading_headers and self._raw_header_bytes > self.max_header_bytes \
                and not self.transport.is_closing():
            self._reject(431, "request headers too large")

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error with 400; the one our callback raised is a 431
        if self._too_large:
            self._reject(431, "request headers too large")
        else:
            super().send_400_response(msg)

    # --- parser callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._parsed_header_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._raw_header_bytes = 0
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_headers = True   # the next request's timer starts with its first byte

    # --- helpers -------------------------------------------------------------------------
    def _count(self, n: int) -> None:
        self._parsed_header_bytes += n
        if self._parsed_header_bytes > self.max_header_bytes:
            self._too_large = True
            raise _HeadersTooLarge()   # httptools stops parsing; uvicorn calls send_400_response

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._reading_headers and not self.transport.is_closing():
            self._reject(408, "request headers not received in time")

    def _reject(self, status: int, msg: str) -> None:
        self._disarm()
        self.logger.warning("%s (%s): closing the connection from %s", msg, status,
                            "%s:%d" % self.client if self.client else "?")
        body = msg.encode("ascii")
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n", body]))
        self.transport.close()


def guarded_protocol(max_header_bytes: int = MAX_HEADER_BYTES,
                     header_timeout_s: float = HEADER_TIMEOUT_S) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.run(..., http=...)`` with these limits."""
    if max_header_bytes < 1 or not header_timeout_s > 0:
        raise ValueError("header limits must be positive")
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"max_header_bytes": int(max_header_bytes),
                 "header_timeout_s": float(header_timeout_s)})


__all__ = ["GuardedHttpToolsProtocol", "HEADER_TIMEOUT_S", "MAX_HEADER_BYTES",
           "guarded_protocol"]
