"""Who may answer a release's approvals, how long they have, and where they are told.

Read from the ``approvals`` and ``notify`` sections of the model's ``model.yaml`` (both
optional)::

    approvals:
      owners: [alice, {id: bob, name: Bob B.}]   # Airflow user ids allowed to answer
      four_eyes: true            # the user who triggered the release may not answer its steps
      response_timeout_s: 14400  # unanswered after this: Reject (the release rolls back)
    notify:
      webhooks: [https://hooks.example/T000/B000]   # JSON {"text": ...} (Slack/Mattermost/Teams)
      email: [oncall@example.com]
      smtp_conn_id: smtp_default                     # the Airflow Connection of the SMTP server
      from_email: paddle-canary@example.com
      airflow_url: https://airflow.example           # links in the messages

Plain Python (no Airflow): the operators turn a :class:`ApprovalPolicy` into ``assigned_users``,
``response_timeout``, ``defaults`` and ``notifiers``.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

from paddle_canary.errors import UserError

#: Unanswered approvals are rejected after this by default (4 hours): nothing waits forever.
DEFAULT_RESPONSE_TIMEOUT_S = 4 * 3600.0
#: What an unanswered approval turns into. Only Reject is allowed: the safe outcome.
TIMEOUT_OUTCOME = "Reject"


class ApprovalPolicyError(UserError):
    """The model's approval or notification settings cannot be used (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Notify:
    webhooks: tuple[str, ...] = ()
    email: tuple[str, ...] = ()
    smtp_conn_id: str = "smtp_default"
    from_email: str | None = None
    airflow_url: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.webhooks or self.email)


@dataclasses.dataclass(frozen=True)
class ApprovalPolicy:
    owners: tuple[dict[str, str], ...] = ()
    four_eyes: bool = False
    response_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S
    notify: Notify = Notify()

    @classmethod
    def from_model_card(cls, card: dict[str, Any]) -> "ApprovalPolicy":
        """From the parsed ``model.yaml``; raises :class:`ApprovalPolicyError` naming the field."""
        section = card.get("approvals") or {}
        if not isinstance(section, dict):
            raise ApprovalPolicyError("model.yaml: 'approvals' must be a mapping")
        unknown = set(section) - {"owners", "four_eyes", "response_timeout_s"}
        if unknown:
            raise ApprovalPolicyError(f"model.yaml: unknown approvals field(s) {sorted(unknown)}")
        owners = tuple(_user(o) for o in section.get("owners") or [])
        four_eyes = section.get("four_eyes", False)
        if not isinstance(four_eyes, bool):
            raise ApprovalPolicyError(f"model.yaml: approvals.four_eyes must be true or false, "
                                      f"got {four_eyes!r}")
        timeout = section.get("response_timeout_s", DEFAULT_RESPONSE_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) \
                or not timeout > 0 or timeout != timeout:
            raise ApprovalPolicyError("model.yaml: approvals.response_timeout_s must be a "
                                      f"positive number of seconds, got {timeout!r}")
        return cls(owners=owners, four_eyes=four_eyes, response_timeout_s=float(timeout),
                   notify=_notify(card.get("notify") or {}))

    def assigned_users(self, triggered_by: str | None) -> list[dict[str, str]]:
        """The users who may answer: the owners, less the triggering user under four eyes.

        Empty means "anyone allowed to answer approvals" (Airflow's rule), so four eyes without
        a second owner is refused here rather than letting the triggering user approve."""
        users = [dict(u) for u in self.owners]
        if not self.four_eyes:
            return users
        if not self.owners:
            raise ApprovalPolicyError(
                "four eyes is on but model.yaml names no approvals.owners: nobody but the "
                "triggering user could be excluded; add the owners who may approve")
        if not triggered_by:
            return users  # a scheduled run (asset event): nobody to exclude
        users = [u for u in users if u["id"] != triggered_by]
        if not users:
            raise ApprovalPolicyError(
                f"four eyes: {triggered_by} triggered this release and is its only owner, so "
                "nobody may approve it; another owner must be added to model.yaml")
        return users

    def refusal(self, responder: str | None, triggered_by: str | None) -> str | None:
        """Why ``responder``'s answer may not count (None when it may). A check after the fact:
        Airflow already refuses users outside ``assigned_users`` (403), except for auth managers
        that let every user answer (e.g. ``simple_auth_manager_all_admins``)."""
        if self.four_eyes and responder and triggered_by and responder == triggered_by:
            return (f"four eyes: {responder} triggered this release and may not approve its "
                    "steps; another owner must answer")
        return None


def _user(value: Any) -> dict[str, str]:
    if isinstance(value, str) and value.strip():
        return {"id": value.strip(), "name": value.strip()}
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"].strip():
        uid = value["id"].strip()
        return {"id": uid, "name": str(value.get("name") or uid)}
    raise ApprovalPolicyError(f"model.yaml: an approvals owner is a user id or {{id, name}}, "
                              f"got {value!r}")


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ApprovalPolicyError(f"model.yaml: notify.{name} must be a list of strings, "
                                  f"got {value!r}")
    return tuple(v.strip() for v in value)


def _notify(section: Any) -> Notify:
    if not isinstance(section, dict):
        raise ApprovalPolicyError("model.yaml: 'notify' must be a mapping")
    unknown = set(section) - {f.name for f in dataclasses.fields(Notify)}
    if unknown:
        raise ApprovalPolicyError(f"model.yaml: unknown notify field(s) {sorted(unknown)}")
    hooks = _strings("webhooks", section.get("webhooks") or [])
    for url in hooks:
        if not url.startswith(("http://", "https://")):
            raise ApprovalPolicyError(f"model.yaml: notify.webhooks entry {url!r} is not an "
                                      "http(s) URL")
    return Notify(webhooks=hooks, email=_strings("email", section.get("email") or []),
                  smtp_conn_id=str(section.get("smtp_conn_id") or "smtp_default"),
                  from_email=section.get("from_email"),
                  airflow_url=(section.get("airflow_url") or None))
