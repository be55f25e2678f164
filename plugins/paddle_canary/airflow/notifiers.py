"""Airflow notifiers that tell people about a release: a JSON webhook and mail through the SMTP
provider. The message itself is built in :mod:`paddle_canary.ops.notify` (plain Python).

A notification that cannot be delivered is logged as an error and does not fail the task: an
approval whose mail bounced still waits in the UI and still times out to Reject, and a rollback
is not undone by a webhook that is down.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk.bases.notifier import BaseNotifier

from paddle_canary.ops.approvals import Notify
from paddle_canary.ops.notify import Message, NotifyError, post_webhook


class WebhookNotifier(BaseNotifier):
    """POST ``message`` as JSON (``{"text": ...}`` plus structured fields) to ``url``."""

    template_fields = ()  # the message is final text: never rendered as Jinja

    def __init__(self, url: str, message: Message, **kwargs):
        super().__init__(**kwargs)
        self.url, self.message = url, message

    def notify(self, context) -> None:
        try:
            post_webhook(self.url, self.message)
        except NotifyError as exc:
            self.log.error("release notification not delivered: %s", exc)


class ReleaseMailNotifier(SmtpNotifier):
    """Mail ``message`` through the SMTP provider's connection ``smtp_conn_id``."""

    template_fields = ()

    def __init__(self, to: list[str], message: Message, smtp_conn_id: str,
                 from_email: str | None = None, **kwargs):
        super().__init__(to=to, from_email=from_email, subject=message.title,
                         html_content=message.html(), smtp_conn_id=smtp_conn_id, **kwargs)

    def notify(self, context) -> None:
        try:
            super().notify(context)
        except Exception as exc:  # noqa: BLE001 - logged; see the module docstring
            self.log.error("release mail to %s not delivered: %s: %s", self.to,
                           type(exc).__name__, exc)


def notifiers_for(notify: Notify, message: Message) -> list[BaseNotifier]:
    """One notifier per webhook, and one mail to every address, as the model asks."""
    out: list[BaseNotifier] = [WebhookNotifier(url, message) for url in notify.webhooks]
    if notify.email:
        out.append(ReleaseMailNotifier(list(notify.email), message, notify.smtp_conn_id,
                                       notify.from_email))
    return out


def send(notifiers: list[BaseNotifier], context: dict[str, Any]) -> None:
    for notifier in notifiers:
        notifier(context)
