"""Job schedules (spec section 12): ``JobSchedule`` with a ``CronTrigger`` or a ``RecurrenceTrigger``.

Names, fields and YAML follow azure-ai-ml (``azure.ai.ml.entities.JobSchedule``, ``CronTrigger``,
``RecurrenceTrigger``, ``RecurrencePattern``; the ``schedule.schema.json`` YAML). Everything a
schedule can get wrong is rejected here, before anything is sent or stored: a cron expression
that is not five fields or that croniter cannot parse, a time zone that is neither one of the
Windows names Azure ML documents (``"Pacific Standard Time"``) nor an IANA name, a frequency
outside minute/hour/day/week/month, an interval below 1, a pattern field that the frequency
does not use, an ``end_time`` not after ``start_time``.

Times: ``start_time`` and ``end_time`` are ISO 8601 strings (``2022-07-10T10:00:00``, a date
alone, or with an offset) or datetimes. A time without an offset is wall-clock time in
``time_zone`` (Azure's rule: "leave the tzinfo as None and use the time_zone parameter").
"""

from __future__ import annotations

import difflib
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import Field, PrivateAttr, field_validator, model_validator

from openaml.entities._base import Entity, stringify_values, validation_error_from_pydantic

__all__ = ["CronTrigger", "JobSchedule", "RecurrencePattern", "RecurrenceTrigger", "parse_trigger_time",
           "resolve_time_zone", "validate_schedule", "READ_ONLY_FIELDS", "WEEK_DAYS", "FREQUENCIES"]

WEEK_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FREQUENCIES = ("minute", "hour", "day", "week", "month")

# Windows names that tzlocal's CLDR table lacks but azure-ai-ml's TimeZone enum lists.
_EXTRA_WINDOWS_ZONES = {"Mid-Atlantic Standard Time": "Etc/GMT+2", "Kamchatka Standard Time": "Asia/Kamchatka"}


@lru_cache(maxsize=1)
def _windows_zones() -> dict[str, str]:
    """Windows time zone name (lower case) -> IANA name, from CLDR's table as tzlocal ships it."""
    from tzlocal.windows_tz import win_tz

    table = {**win_tz, **_EXTRA_WINDOWS_ZONES}
    return {k.lower(): v for k, v in table.items()}


def resolve_time_zone(name: str | None) -> ZoneInfo:
    """The zone of a trigger's ``time_zone``: a Windows name as Azure ML uses (case-insensitive,
    ``"Pacific Standard Time"``, ``"UTC"``, ``"UTC-11"``) or an IANA name (``"Europe/Paris"``).

    Raises:
        ValueError: neither, naming close matches.
    """
    if name is None or str(name).strip() == "":
        return ZoneInfo("UTC")
    text = str(getattr(name, "value", name)).strip()
    iana = _windows_zones().get(text.lower())
    try:
        return ZoneInfo(iana or text)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    known = [k for k in _windows_zones()]
    close = difflib.get_close_matches(text.lower(), known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c.title()) for c in close)}?" if close else ""
    raise ValueError(f"unknown time zone {text!r}: use a Windows time zone name as Azure ML does "
                     f"(e.g. 'Pacific Standard Time', 'UTC') or an IANA name (e.g. 'America/Los_Angeles'){hint}")


def parse_trigger_time(value: str | datetime | date, zone: ZoneInfo) -> datetime:
    """An aware datetime from a trigger's ``start_time``/``end_time`` (naive = wall clock in ``zone``).

    Raises:
        ValueError: not an ISO 8601 date or date-time.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date-time; write e.g. '2022-07-10T10:00:00'") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return dt


def _time_field(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return v


def _int_list(v: Any) -> Any:
    if v is None or isinstance(v, list):
        return v
    if isinstance(v, tuple):
        return list(v)
    return [v]


class RecurrencePattern(Entity):
    """``trigger.schedule``: the times within each period of a recurrence (azure-ai-ml ``RecurrencePattern``).

    ``hours`` 0-23 and ``minutes`` 0-59 (an int or a list), ``week_days`` (``monday`` ... ``sunday``,
    any case), ``month_days`` 1-31. Which fields a frequency uses is checked by the trigger.
    """

    hours: list[Annotated[int, Field(ge=0, le=23)]] | None = None
    minutes: list[Annotated[int, Field(ge=0, le=59)]] | None = None
    week_days: list[str] | None = None
    month_days: list[Annotated[int, Field(ge=1, le=31)]] | None = None

    @field_validator("hours", "minutes", "month_days", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _int_list(v)

    @field_validator("week_days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> Any:
        v = _int_list(v)
        if v is None:
            return v
        out = []
        for day in v:
            d = str(getattr(day, "value", day)).strip().lower()
            if d not in WEEK_DAYS:
                raise ValueError(f"{day!r} is not a week day; allowed: {', '.join(WEEK_DAYS)}")
            out.append(d)
        return out


class _Trigger(Entity):
    start_time: str | None = None
    end_time: str | None = None
    time_zone: str = "UTC"

    @field_validator("start_time", "end_time", mode="before")
    @classmethod
    def _times(cls, v: Any) -> Any:
        return _time_field(v)

    @field_validator("time_zone", mode="before")
    @classmethod
    def _zone(cls, v: Any) -> Any:
        if v is None:
            return "UTC"
        v = str(getattr(v, "value", v))
        resolve_time_zone(v)
        return v

    @model_validator(mode="after")
    def _window(self) -> _Trigger:
        zone = self.zone
        start = parse_trigger_time(self.start_time, zone) if self.start_time else None
        end = parse_trigger_time(self.end_time, zone) if self.end_time else None
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end_time {self.end_time!r} is not after start_time {self.start_time!r}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return resolve_time_zone(self.time_zone)


class CronTrigger(_Trigger):
    """``type: cron``: a five-field cron expression (minute hour day-of-month month day-of-week) in ``time_zone``."""

    type: Literal["cron"] = "cron"
    expression: str

    @field_validator("expression")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        fields = v.split()
        if len(fields) != 5:
            raise ValueError(f"cron expression {v!r} has {len(fields)} fields; Azure ML takes five: "
                             "MINUTES HOURS DAYS MONTHS DAYS-OF-WEEK (e.g. '0 * * * *')")
        if not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a valid cron expression (five fields: MINUTES HOURS DAYS MONTHS "
                             "DAYS-OF-WEEK, e.g. '30 2 * * 1-5')")
        return " ".join(fields)


class RecurrenceTrigger(_Trigger):
    """``type: recurrence``: every ``interval`` minutes/hours/days/weeks/months from ``start_time``,
    at the times of ``schedule`` (a :class:`RecurrencePattern`) when given.

    Pattern fields by frequency: ``minute`` none; ``hour`` minutes; ``day`` hours and minutes;
    ``week`` hours, minutes and week_days; ``month`` hours, minutes, month_days and/or week_days.
    """

    type: Literal["recurrence"] = "recurrence"
    frequency: str
    interval: int
    schedule: RecurrencePattern | None = None

    @field_validator("frequency", mode="before")
    @classmethod
    def _frequency(cls, v: Any) -> Any:
        text = str(getattr(v, "value", v)).strip().lower()
        if text not in FREQUENCIES:
            raise ValueError(f"frequency {v!r} is not one of {', '.join(FREQUENCIES)}")
        return text

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError("interval must be a whole number, 1 or more")
        return v

    @model_validator(mode="after")
    def _pattern(self) -> RecurrenceTrigger:
        p = self.schedule
        if p is None:
            return self
        given = {k for k in ("hours", "minutes", "week_days", "month_days") if getattr(p, k)}
        allowed = {"minute": set(), "hour": {"minutes"}, "day": {"hours", "minutes"},
                   "week": {"hours", "minutes", "week_days"},
                   "month": {"hours", "minutes", "week_days", "month_days"}}[self.frequency]
        extra = sorted(given - allowed)
        if extra:
            uses = ", ".join(f"schedule.{k}" for k in sorted(allowed)) or "no schedule"
            raise ValueError(f"schedule.{extra[0]} is not used with frequency {self.frequency!r} "
                             f"(frequency {self.frequency} takes {uses})")
        required = {"hour": ["minutes"]}.get(self.frequency, ["hours", "minutes"])
        missing = [k for k in required if not getattr(p, k)] if self.frequency != "minute" else []
        if missing:
            raise ValueError(f"schedule.{missing[0]} is required with frequency {self.frequency!r} "
                             f"when schedule is given (list the {missing[0]} to fire at)")
        return self


class JobSchedule(Entity):
    """A schedule that creates a job at each fire time (azure-ai-ml ``JobSchedule``).

    ``create_job`` is a job entity (``load_job(...)``, ``command(...)``, a ``@dsl.pipeline``
    result), a job YAML path (``./job.yml``, ``file:./job.yml``), an existing job
    (``azureml:<job name>``), or a mapping ``{job: <path or azureml:name>, <fields to override>}``.

    Server-filled (read only): ``is_enabled``, ``provisioning_state``, ``creation_context``,
    ``last_fire_time``, ``next_fire_time``, ``last_job_name``, ``last_error``, ``fire_count``,
    ``missed_fires``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,254}$")
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    trigger: Annotated[CronTrigger | RecurrenceTrigger, Field(discriminator="type")]
    create_job: Any
    # server-populated
    id: str | None = None
    is_enabled: bool | None = None
    provisioning_state: str | None = None
    creation_context: dict[str, Any] | None = None
    last_fire_time: datetime | None = None
    next_fire_time: datetime | None = None
    last_job_name: str | None = None
    last_error: str | None = None
    fire_count: int | None = None
    missed_fires: int | None = None

    _create_job_wire: Any = PrivateAttr(default=None)

    @field_validator("tags", "properties", mode="before")
    @classmethod
    def _str_values(cls, v: Any) -> Any:
        return {} if v is None else stringify_values(v)

    @field_validator("trigger", mode="before")
    @classmethod
    def _trigger_type(cls, v: Any) -> Any:
        if isinstance(v, dict):
            t = v.get("type")
            if t is None:
                raise ValueError("trigger.type is required: cron or recurrence")
            if str(t).lower() not in ("cron", "recurrence"):
                raise ValueError(f"trigger.type {t!r} is not one of cron, recurrence")
            v = {**v, "type": str(t).lower()}
        return v

    @field_validator("create_job", mode="before")
    @classmethod
    def _job(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("create_job is required: a job YAML path, azureml:<job name>, or a job")
        return v

    @property
    def type(self) -> str:
        return "job"


# fields the server fills; a schedule read back and sent again ignores them
READ_ONLY_FIELDS = ("id", "is_enabled", "provisioning_state", "creation_context", "last_fire_time",
                    "next_fire_time", "last_job_name", "last_error", "fire_count", "missed_fires")


class _CleanLoc:
    """``exc.errors()`` without pydantic's union tags (``trigger.cron.expression`` -> ``trigger.expression``)."""

    def __init__(self, exc: pydantic.ValidationError) -> None:
        self._exc = exc

    def errors(self) -> list[dict[str, Any]]:
        out = []
        for err in self._exc.errors():
            loc = tuple(x for i, x in enumerate(err["loc"])
                        if not (i == 1 and err["loc"][0] == "trigger" and x in ("cron", "recurrence")))
            out.append({**err, "loc": loc})
        return out


def validate_schedule(data: dict[str, Any], *, source: str | None = None, lines: Any = None) -> JobSchedule:
    """A :class:`JobSchedule` from a mapping (YAML or wire).

    Raises:
        ValidationError: naming the file (``source``), line, field, value and what is allowed.
    """
    data = {k: v for k, v in data.items() if k not in READ_ONLY_FIELDS and k != "$schema"}
    try:
        return JobSchedule.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error_from_pydantic(_CleanLoc(exc), source=source, lines=lines,  # type: ignore[arg-type]
                                             kind="schedule") from None
