"""Promotion windows: the hours in which a release may move traffic up.

A model's ``model.yaml`` may say when its steps may happen::

    promotion_window:
      days: [mon, tue, wed, thu, fri]   # default: every day
      hours: "09:00-17:00"              # start inclusive, end exclusive, same day
      timezone: Europe/Berlin           # an IANA name; default UTC

A step that becomes due outside the window waits (deferred: no worker slot) until the window
next opens; approvals may still be answered meanwhile, and a rollback never waits. The release
records each wait in its journal (``window_wait``) and the report shows it.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paddle_canary.errors import UserError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")


class WindowError(UserError):
    """A promotion window that cannot be read; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class PromotionWindow:
    days: tuple[int, ...]      # Monday = 0, as datetime.weekday()
    start: time
    end: time | None           # None: until midnight ("24:00")
    timezone: str

    @classmethod
    def parse(cls, raw: Any) -> "PromotionWindow":
        """From ``model.yaml``'s mapping; a clear :class:`WindowError` for anything else."""
        if not isinstance(raw, dict):
            raise WindowError(f"promotion_window must be a mapping with days, hours and "
                              f"timezone, got {raw!r}")
        unknown = set(raw) - {"days", "hours", "timezone"}
        if unknown:
            raise WindowError(f"promotion_window: unknown keys {sorted(unknown)} "
                              f"(known: days, hours, timezone)")
        days = raw.get("days", list(DAYS))
        if not isinstance(days, list) or not days or \
                not all(isinstance(d, str) and d.lower()[:3] in DAYS for d in days):
            raise WindowError(f"promotion_window.days must be a non-empty list of day names "
                              f"({', '.join(DAYS)}), got {days!r}")
        hours = raw.get("hours")
        m = _HOURS.match(hours) if isinstance(hours, str) else None
        if m is None:
            raise WindowError(f"promotion_window.hours must be 'HH:MM-HH:MM' (e.g. "
                              f"'09:00-17:00'), got {hours!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h2 == 24 and m2 != 0:
            raise WindowError(f"promotion_window.hours: {hours!r} ends after 24:00")
        start, end = time(h1, m1), (None if h2 == 24 else time(h2, m2))
        if end is not None and end <= start:
            raise WindowError(f"promotion_window.hours: {hours!r} must end after it starts on "
                              f"the same day (a window across midnight: end it at 24:00 and "
                              f"start the next day's at 00:00)")
        zone = raw.get("timezone", "UTC")
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise WindowError(f"promotion_window.timezone: unknown time zone {zone!r} "
                              f"(an IANA name such as Europe/Berlin)") from None
        return cls(days=tuple(sorted({DAYS.index(d.lower()[:3]) for d in days})),
                   start=start, end=end, timezone=str(zone))

    def to_dict(self) -> dict[str, Any]:
        """The ``model.yaml`` form (what :meth:`parse` reads)."""
        return {"days": [DAYS[d] for d in self.days], "hours": self.hours,
                "timezone": self.timezone}

    @property
    def hours(self) -> str:
        return f"{self.start:%H:%M}-{'24:00' if self.end is None else f'{self.end:%H:%M}'}"

    def describe(self) -> str:
        return f"{','.join(DAYS[d] for d in self.days)} {self.hours} {self.timezone}"

    def contains(self, when: datetime) -> bool:
        local = when.astimezone(ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        return local.weekday() in self.days and self.start <= clock and \
            (self.end is None or clock < self.end)

    def next_open(self, when: datetime) -> datetime | None:
        """``None`` when ``when`` is inside the window, else when it next opens (UTC)."""
        if self.contains(when):
            return None
        zone = ZoneInfo(self.timezone)
        today = when.astimezone(zone).date()
        for offset in range(8):
            day: date = today + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = datetime.combine(day, self.start, tzinfo=zone).astimezone(timezone.utc)
            if opens > when:
                return opens
        raise AssertionError("a window with at least one day opens within a week")
