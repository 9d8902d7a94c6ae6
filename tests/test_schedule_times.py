"""Fire-time rules of schedule triggers (docs/guide/schedules.md), on fixed dates.

Pure computations of ``FireClock`` over validated ``JobSchedule`` triggers; the expected times are
written out by hand from the calendar. The end-to-end firing is in tests/test_schedules.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from openaml.entities import JobSchedule
from openaml.services._schedule_times import FireClock

ANCHOR = datetime(2030, 1, 1, tzinfo=UTC)


def _clock(trigger: dict[str, Any]) -> FireClock:
    sched = JobSchedule.model_validate({"name": "t", "create_job": "azureml:j", "trigger": trigger})
    return FireClock(sched.trigger.model_dump(mode="json", exclude_none=True), ANCHOR)


def _times(trigger: dict[str, Any], after: datetime, until: datetime) -> list[str]:
    return [t.isoformat() for t in _clock(trigger).between(after, until)]


def test_monthly_on_the_31st_skips_short_months() -> None:
    trig = {"type": "recurrence", "frequency": "month", "interval": 1, "start_time": "2030-01-31T08:00:00"}
    assert _times(trig, ANCHOR, datetime(2030, 8, 1, tzinfo=UTC)) == [
        "2030-01-31T08:00:00+00:00", "2030-03-31T08:00:00+00:00", "2030-05-31T08:00:00+00:00",
        "2030-07-31T08:00:00+00:00"]


def test_every_other_week_on_two_days() -> None:
    # 2030-01-01 is a Tuesday; weeks are counted from Monday 2029-12-31
    trig = {"type": "recurrence", "frequency": "week", "interval": 2, "start_time": "2030-01-01T00:00:00",
            "schedule": {"hours": 10, "minutes": 15, "week_days": ["Monday", "friday"]}}
    assert _times(trig, ANCHOR, datetime(2030, 1, 31, tzinfo=UTC)) == [
        "2030-01-04T10:15:00+00:00", "2030-01-14T10:15:00+00:00", "2030-01-18T10:15:00+00:00",
        "2030-01-28T10:15:00+00:00"]


def test_first_monday_of_the_month_from_month_days_and_week_days() -> None:
    trig = {"type": "recurrence", "frequency": "month", "interval": 1, "start_time": "2030-01-01T00:00:00",
            "schedule": {"hours": [6], "minutes": [0], "month_days": [1, 2, 3, 4, 5, 6, 7], "week_days": ["monday"]}}
    assert _times(trig, ANCHOR, datetime(2030, 3, 31, tzinfo=UTC)) == [
        "2030-01-07T06:00:00+00:00", "2030-02-04T06:00:00+00:00", "2030-03-04T06:00:00+00:00"]


def test_hourly_pattern_in_a_half_hour_zone() -> None:
    trig = {"type": "recurrence", "frequency": "hour", "interval": 3, "start_time": "2030-01-01T10:20:00",
            "time_zone": "India Standard Time", "schedule": {"minutes": [0, 45]}}
    got = _times(trig, ANCHOR, datetime(2030, 1, 1, 12, tzinfo=UTC))
    assert got == ["2030-01-01T05:15:00+00:00", "2030-01-01T07:30:00+00:00", "2030-01-01T08:15:00+00:00",
                   "2030-01-01T10:30:00+00:00", "2030-01-01T11:15:00+00:00"]  # 10:45, 13:00, 13:45 ... IST


def test_every_90_minutes_is_absolute_time_across_dst() -> None:
    trig = {"type": "recurrence", "frequency": "minute", "interval": 90, "start_time": "2030-03-10T00:00:00",
            "time_zone": "Pacific Standard Time"}
    got = _times(trig, datetime(2030, 3, 10, tzinfo=UTC), datetime(2030, 3, 10, 13, tzinfo=UTC))
    assert got == ["2030-03-10T08:00:00+00:00", "2030-03-10T09:30:00+00:00", "2030-03-10T11:00:00+00:00",
                   "2030-03-10T12:30:00+00:00"]


def test_daily_keeps_the_wall_clock_across_dst() -> None:
    trig = {"type": "recurrence", "frequency": "day", "interval": 1, "start_time": "2030-03-09T09:00:00",
            "time_zone": "Pacific Standard Time"}
    assert _times(trig, ANCHOR, datetime(2030, 3, 11, 23, tzinfo=UTC)) == [
        "2030-03-09T17:00:00+00:00", "2030-03-10T16:00:00+00:00", "2030-03-11T16:00:00+00:00"]


def test_cron_honours_day_of_month_and_end_time() -> None:
    trig = {"type": "cron", "expression": "0 6 1 * *", "start_time": "2030-01-01T00:00:00",
            "end_time": "2030-03-01T05:00:00"}
    assert _times(trig, ANCHOR, datetime(2031, 1, 1, tzinfo=UTC)) == [
        "2030-01-01T06:00:00+00:00", "2030-02-01T06:00:00+00:00"]
    assert _clock(trig).next_after(datetime(2030, 2, 2, tzinfo=UTC)) is None


def test_start_time_with_an_offset_is_that_instant() -> None:
    trig = {"type": "recurrence", "frequency": "hour", "interval": 1, "start_time": "2030-01-01T00:00:00+02:00",
            "time_zone": "Pacific Standard Time"}
    assert _clock(trig).next_after(datetime(2029, 1, 1, tzinfo=UTC), inclusive=True) == \
        datetime(2029, 12, 31, 22, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["UTC", "utc", "UTC-11", "W. Europe Standard Time", "Mid-Atlantic Standard Time",
                                  "Kamchatka Standard Time", "Europe/Paris"])
def test_time_zone_names_resolve(zone: str) -> None:
    assert _clock({"type": "cron", "expression": "0 0 * * *", "time_zone": zone}).zone is not None
