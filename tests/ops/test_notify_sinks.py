"""The notification sinks every test area can use: they receive what a real client sends."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage

import pytest
from notify_sinks import SmtpSink

from paddle_canary import process


def _post(url: str, payload: dict) -> int:
    req = urllib.request.Request(url, json.dumps(payload).encode(),
                                 {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_webhook_receiver_records_posts_by_path(webhook_receiver):
    assert _post(webhook_receiver.url_for("/hooks/slack"), {"text": "approval waiting"}) == 200
    assert _post(webhook_receiver.url_for("/hooks/other"), {"text": "other"}) == 200
    (got,) = webhook_receiver.wait_for(lambda r: r.path == "/hooks/slack")
    assert got.method == "POST"
    assert got.json == {"text": "approval waiting"}
    assert got.headers["content-type"] == "application/json"


def test_webhook_receiver_answers_the_status_it_is_given(webhook_receiver):
    webhook_receiver.status = 500
    assert _post(webhook_receiver.url, {"n": 1}) == 500
    assert webhook_receiver.wait_for(lambda r: r.json["n"] == 1)  # still recorded


def test_webhook_receiver_wait_is_bounded(webhook_receiver):
    _post(webhook_receiver.url, {"n": 1})
    with pytest.raises(process.Timeout):
        webhook_receiver.wait_for(lambda r: r.json["n"] == 2, timeout=0.3)
    # a body that is not JSON never matches a JSON predicate, and does not break the wait
    urllib.request.urlopen(urllib.request.Request(webhook_receiver.url, b"not json",
                                                  method="POST"), timeout=5).read()
    with pytest.raises(process.Timeout):
        webhook_receiver.wait_for(lambda r: r.json["n"] == 3, timeout=0.3)


def _mail(to: str = "owner@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "airflow@example.com"
    msg["To"] = to
    msg["Subject"] = "risk-score v2: approval before 50 % is waiting"
    msg.set_content("Approve or reject in the Airflow UI.\n")
    return msg


def test_smtp_sink_keeps_mails(smtp_sink):
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        client.send_message(_mail())
    (mail,) = smtp_sink.wait_for(lambda m: "approval" in m.subject)
    assert mail.mail_from == "airflow@example.com"
    assert mail.rcpt_tos == ("owner@example.com",)
    assert mail.text() == "Approve or reject in the Airflow UI.\n"
    assert mail.login is None


def test_smtp_sink_with_credentials_requires_them():
    with SmtpSink(credentials=("airflow", "s3cret")) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("airflow", "wrong")
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPSenderRefused):  # no AUTH, no mail
                client.send_message(_mail())
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.login("airflow", "s3cret")
            client.send_message(_mail())
        (mail,) = sink.wait_for()
        assert mail.login == "airflow"
