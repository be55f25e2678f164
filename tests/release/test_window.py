"""Promotion windows: which moments are inside, when a closed window next opens (time zones,
daylight saving, days), and what a model.yaml may not say."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from paddle_canary.release.window import PromotionWindow, WindowError

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = PromotionWindow.parse({"days": ["mon", "tue", "wed", "thu", "fri"],
                                "hours": "09:00-17:00", "timezone": "Europe/Berlin"})


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def test_inside_and_outside_office_hours_in_the_window_s_own_zone():
    assert OFFICE.contains(berlin(2026, 12, 1, 9, 0))           # Tuesday, opening minute
    assert OFFICE.contains(berlin(2026, 12, 1, 16, 59))
    assert not OFFICE.contains(berlin(2026, 12, 1, 17, 0))      # end is exclusive
    assert not OFFICE.contains(berlin(2026, 12, 5, 12, 0))      # Saturday
    # 08:30 UTC is 09:30 in Berlin in winter: inside, whatever zone the moment comes in
    assert OFFICE.contains(datetime(2026, 12, 1, 8, 30, tzinfo=timezone.utc))
    assert OFFICE.next_open(berlin(2026, 12, 1, 10, 0)) is None


def test_a_closed_window_opens_at_the_next_allowed_day_s_start():
    # Tuesday evening -> Wednesday 09:00 Berlin (08:00 UTC in winter)
    assert OFFICE.next_open(berlin(2026, 12, 1, 18, 0)) == \
        datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    # Tuesday early morning -> the same day
    assert OFFICE.next_open(berlin(2026, 12, 1, 6, 0)) == \
        datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    # Friday evening -> Monday
    assert OFFICE.next_open(berlin(2026, 12, 4, 17, 0)) == \
        datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)


def test_opening_time_follows_daylight_saving():
    # Berlin goes to summer time on Sunday 2027-03-28: Friday's 09:00 is 08:00 UTC,
    # Monday's is 07:00 UTC
    assert OFFICE.next_open(berlin(2027, 3, 26, 18, 0)) == \
        datetime(2027, 3, 29, 7, 0, tzinfo=timezone.utc)


def test_a_single_day_window_waits_up_to_a_week():
    sundays = PromotionWindow.parse({"days": ["sun"], "hours": "10:00-24:00"})
    assert sundays.timezone == "UTC" and sundays.hours == "10:00-24:00"
    assert sundays.contains(datetime(2026, 12, 6, 23, 59, tzinfo=timezone.utc))
    assert sundays.next_open(datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)
    assert sundays.next_open(datetime(2026, 12, 7, 0, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 12, 13, 10, 0, tzinfo=timezone.utc)


def test_the_model_yaml_form_round_trips():
    assert PromotionWindow.parse(OFFICE.to_dict()) == OFFICE
    assert OFFICE.describe() == "mon,tue,wed,thu,fri 09:00-17:00 Europe/Berlin"


@pytest.mark.parametrize("raw, words", [
    ("09-17", "must be a mapping"),
    ({"hours": "9:00-17:00"}, "'HH:MM-HH:MM'"),
    ({"hours": "17:00-09:00"}, "must end after it starts"),
    ({"hours": "09:00-09:00"}, "must end after it starts"),
    ({"hours": "09:00-24:30"}, "ends after 24:00"),
    ({"hours": "09:00-17:00", "days": []}, "non-empty list of day names"),
    ({"hours": "09:00-17:00", "days": ["someday"]}, "non-empty list of day names"),
    ({"hours": "09:00-17:00", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"hours": "09:00-17:00", "tz": "UTC"}, "unknown keys ['tz']"),
])
def test_a_window_that_cannot_be_read_is_refused_naming_the_field(raw, words):
    with pytest.raises(WindowError, match=words.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(")):
        PromotionWindow.parse(raw)
