"""Real local endpoints that notifications are sent to in tests: an HTTP webhook receiver and
an SMTP sink. Both listen on 127.0.0.1, record what they receive and wait on it with a deadline.

Fixtures (imported by tests/conftest.py, so every test area has them):

- ``webhook_receiver``: a started :class:`WebhookReceiver`; ``.url`` is its base URL, any path
  under it is accepted (``.url_for("/slack")``); ``.wait_for(...)`` returns the POSTs received.
- ``smtp_sink``: a started :class:`SmtpSink` (aiosmtpd); ``.host``/``.port`` for the SMTP
  connection; ``.wait_for(...)`` returns the mails received, parsed.

Both stop when the test ends. For SMTP AUTH, build ``SmtpSink(credentials=("user", "pw"))``.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

from paddle_canary import process


@dataclass(frozen=True)
class Received:
    """One HTTP request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON (ValueError if it is not JSON)."""
        return json.loads(self.body)


class WebhookReceiver:
    """An HTTP server in a thread of the test process that records every request.

    Answers ``status`` (200 by default; set ``.status = 500`` to test a sender's retries) with
    an empty JSON object. The port is bound at construction (no free-port race).
    """

    def __init__(self, host: str = "127.0.0.1", status: int = 200) -> None:
        self.status = status
        self._received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver._received.append(Received(
                        self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                        body))
                out = b"{}"
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_PUT = do_GET = _record

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + (path if path.startswith("/") else "/" + path)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def wait_for(self, match: Callable[[Received], bool] = lambda r: True, count: int = 1,
                 timeout: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` received requests satisfy ``match``; return those."""
        def found():
            hits = [r for r in self.received if _matches(match, r)]
            return hits if len(hits) >= count else None
        return process.wait_until(found, timeout, what=f"{count} matching webhook request(s)")

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _matches(match: Callable, item) -> bool:
    try:
        return bool(match(item))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return False  # e.g. a body that is not JSON, or lacks the key looked at


@dataclass(frozen=True)
class Mail:
    """One mail the SMTP sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    login: str | None = None  # the AUTH user, when the client logged in
    message: EmailMessage = field(init=False, compare=False)

    def __post_init__(self):
        # SMTP carries CRLF line ends; the parsed message has plain "\n" ones
        object.__setattr__(self, "message", email.message_from_bytes(
            self.raw.replace(b"\r\n", b"\n"), policy=email.policy.default))

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def text(self) -> str:
        """The plain-text body (or the HTML one when there is no plain text)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every mail it accepts.

    With ``credentials=(user, password)`` it requires AUTH (PLAIN/LOGIN, allowed without TLS
    on this loopback sink) and refuses other credentials with 535.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.host = host
        self.port = port or process.free_port(host)
        self._mails: list[Mail] = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                login = session.login_data.decode() if session.login_data else None
                with sink._lock:
                    sink._mails.append(Mail(envelope.mail_from, tuple(envelope.rcpt_tos),
                                            envelope.original_content or envelope.content,
                                            login))
                return "250 Message accepted for delivery"

        kwargs: dict[str, Any] = {}
        if credentials is not None:
            user, password = (c.encode() for c in credentials)

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = getattr(auth_data, "login", None) == user and \
                    getattr(auth_data, "password", None) == password
                # handled=False: aiosmtpd answers the failure (535) itself
                return AuthResult(success=ok, handled=False,
                                  auth_data=auth_data if ok else None)

            # Loopback only, so AUTH without TLS is what we want; aiosmtpd warns per connection.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS",
                                    UserWarning)
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=False)
        self._controller = Controller(Handler(), hostname=host, port=self.port, **kwargs)

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def wait_for(self, match: Callable[[Mail], bool] = lambda m: True, count: int = 1,
                 timeout: float = 10.0) -> list[Mail]:
        """Wait until at least ``count`` accepted mails satisfy ``match``; return those."""
        def found():
            hits = [m for m in self.mails if _matches(match, m)]
            return hits if len(hits) >= count else None
        return process.wait_until(found, timeout, what=f"{count} matching mail(s)")

    def start(self) -> "SmtpSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def webhook_receiver():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_sink():
    with SmtpSink() as sink:
        yield sink
