"""Fire times of a schedule's trigger: croniter for cron, calendar arithmetic for recurrences.

All results are timezone-aware datetimes in UTC. Rules (Azure ML's, see docs/guide/schedules.md):

- the first fire is at ``start_time`` or later; without a ``start_time`` the schedule's creation
  time is the start (Azure: "the first job will run instantly");
- cron: croniter over the expression in ``time_zone`` (daylight-saving aware);
- recurrence without a pattern: ``start + k * interval`` units (minutes and hours in absolute
  time; days, weeks and months on the wall clock of ``time_zone``; a month without the start's
  day, e.g. the 31st, is skipped, as Azure documents);
- recurrence with a pattern: the periods are ``interval`` units apart counted from the period
  holding ``start_time`` (weeks begin on Monday); each period fires at every combination of its
  pattern's week_days/month_days, hours and minutes (seconds 0);
- no fire after ``end_time``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openaml.entities._schedule import WEEK_DAYS, parse_trigger_time, resolve_time_zone

__all__ = ["FireClock"]

_SEARCH_DAYS = 366 * 60  # a month_days=[31] monthly pattern with a long interval still finds its next fire


class FireClock:
    """Fire times of one trigger (a validated trigger dict as ``JobSchedule.trigger`` dumps it).

    Args:
        trigger: ``{"type": "cron"|"recurrence", ...}``.
        anchor: the start when the trigger has no ``start_time`` (the schedule's creation time).
    """

    def __init__(self, trigger: dict[str, Any], anchor: datetime) -> None:
        self.trigger = trigger
        self.zone: ZoneInfo = resolve_time_zone(trigger.get("time_zone"))
        st = trigger.get("start_time")
        self.start = (parse_trigger_time(st, self.zone) if st else anchor).astimezone(UTC)
        et = trigger.get("end_time")
        self.end = parse_trigger_time(et, self.zone).astimezone(UTC) if et else None

    # ------------------------------------------------------------------ public
    def next_after(self, t: datetime, *, inclusive: bool = False) -> datetime | None:
        """The first fire time after ``t`` (at or after, with ``inclusive``), or None past ``end_time``."""
        t = t.astimezone(UTC)
        if t < self.start:
            t, inclusive = self.start, True
        if self.trigger["type"] == "cron":
            found = self._cron_next(t, inclusive)
        else:
            found = self._recurrence_next(t, inclusive)
        if found is None or (self.end is not None and found > self.end):
            return None
        return found

    def between(self, after: datetime, until: datetime, limit: int = 10_000) -> Iterator[datetime]:
        """Fire times in ``[after, until]`` (at most ``limit``)."""
        t = self.next_after(after, inclusive=True)
        n = 0
        while t is not None and t <= until and n < limit:
            yield t
            n += 1
            t = self.next_after(t)

    # ------------------------------------------------------------------ cron
    def _cron_next(self, t: datetime, inclusive: bool) -> datetime | None:
        from croniter import croniter

        base = t.astimezone(self.zone)
        if inclusive:
            base -= timedelta(microseconds=1)
        it = croniter(self.trigger["expression"], base)
        nxt: datetime = it.get_next(datetime)
        return nxt.astimezone(UTC)

    # ------------------------------------------------------------------ recurrence
    def _recurrence_next(self, t: datetime, inclusive: bool) -> datetime | None:
        freq = self.trigger["frequency"]
        interval = int(self.trigger["interval"])
        pattern = self.trigger.get("schedule") or {}
        has_pattern = any(pattern.get(k) for k in ("hours", "minutes", "week_days", "month_days"))
        if freq == "minute" or (freq == "hour" and not has_pattern):
            step = timedelta(minutes=interval) if freq == "minute" else timedelta(hours=interval)
            return self._arithmetic(t, step, inclusive)
        if freq == "hour":
            return self._hourly(t, interval, pattern["minutes"], inclusive)
        return self._calendar(t, freq, interval, pattern if has_pattern else None, inclusive)

    def _arithmetic(self, t: datetime, step: timedelta, inclusive: bool) -> datetime:
        k, rem = divmod(t - self.start, step)
        if rem or not inclusive:
            k += 1
        return self.start + max(k, 0) * step

    def _hourly(self, t: datetime, interval: int, minutes: list[int], inclusive: bool) -> datetime | None:
        local = self.start.astimezone(self.zone)
        period0 = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        step = timedelta(hours=interval)
        k = max(0, (t - period0) // step - 1)
        for _ in range(4):
            p = period0 + k * step
            for m in sorted(set(minutes)):
                cand = p + timedelta(minutes=m)
                if cand >= self.start and (cand > t or (inclusive and cand == t)):
                    return cand
            k += 1
        return None

    def _calendar(self, t: datetime, freq: str, interval: int, pattern: dict[str, Any] | None,
                  inclusive: bool) -> datetime | None:
        s = self.start.astimezone(self.zone)
        if pattern is None:
            hours, minutes, second = [s.hour], [s.minute], s.second
            week_days = [s.weekday()] if freq == "week" else []
            month_days = [s.day] if freq == "month" else []
        else:
            hours, minutes, second = sorted(set(pattern["hours"])), sorted(set(pattern["minutes"])), 0
            week_days = [WEEK_DAYS.index(d) for d in pattern.get("week_days") or []]
            month_days = list(pattern.get("month_days") or [])
            if freq == "week" and not week_days:
                week_days = [s.weekday()]
            if freq == "month" and not week_days and not month_days:
                month_days = [s.day]
        start_date = s.date()
        start_monday = start_date - timedelta(days=start_date.weekday())
        day = t.astimezone(self.zone).date()
        for _ in range(_SEARCH_DAYS):
            if self._day_fires(day, freq, interval, start_date, start_monday, week_days, month_days):
                for h in hours:
                    for m in minutes:
                        cand = datetime(day.year, day.month, day.day, h, m, second, tzinfo=self.zone).astimezone(UTC)
                        if cand >= self.start and (cand > t or (inclusive and cand == t)):
                            return cand
            day += timedelta(days=1)
        return None

    @staticmethod
    def _day_fires(day: date, freq: str, interval: int, start_date: date, start_monday: date,
                   week_days: list[int], month_days: list[int]) -> bool:
        if freq == "day":
            return (day - start_date).days % interval == 0
        if freq == "week":
            weeks = (day - start_monday).days // 7
            return weeks % interval == 0 and day.weekday() in week_days
        months = (day.year * 12 + day.month) - (start_date.year * 12 + start_date.month)
        if months % interval:
            return False
        if month_days and day.day not in month_days:
            return False
        return not week_days or day.weekday() in week_days
