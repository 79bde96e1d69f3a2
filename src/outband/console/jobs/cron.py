"""Five-field cron expressions: ``minute hour day-of-month month day-of-week``, e.g. ``0 7 * * 1-5`` (07:00 on
weekdays) or ``*/15 8-18 * * mon-fri``.

Each field is ``*``, a number, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n`` (from a to the end), or a
comma-separated list of those.  Months and weekdays also take English names (``jan``, ``mon``; case does not
matter); Sunday is 0 or 7.  ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly`` and ``@yearly``
(``@annually``) are the usual shorthands.  As in Vixie cron, when both the day of month and the day of week are
restricted, a day matches if *either* does (``0 0 1 * mon``: the 1st and every Monday).

Times are wall-clock times in the schedule's time zone.  Where the clock jumps forward (a time that does not
exist that day) the run happens once the gap has passed; where it falls back (a time that happens twice) the
run happens at the first occurrence only.

A missed run is not the parser's business: :meth:`CronExpression.next_after` just says when the next one is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_LENGTH: Final = 200
SEARCH_DAYS: Final = 366 * 9
"""How far ahead a match is looked for: Feb 29 recurs within 8 years (2096 -> 2104)."""

MACROS: Final = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
MONTHS: Final = {name: i for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
WEEKDAYS: Final = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}


class CronError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS: Final = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, MONTHS),
    _Field("day of week", 0, 7, WEEKDAYS),
)


def _number(text: str, field: _Field) -> int:
    value = field.names.get(text.lower())
    if value is None:
        if not text.isascii() or not text.isdigit() or len(text) > 2:
            raise CronError(f"{field.name}: {text!r} is not a number" + (
                f" or a name ({', '.join(field.names)})" if field.names else ""))
        value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field.name}: empty list item in {text!r}")
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit() or len(step_text) > 2 or int(step_text) == 0:
                raise CronError(f"{field.name}: step {step_text!r} is not a number from 1 to 99")
            step = int(step_text)
        if body == "*":
            low, high = field.low, field.high
        elif "-" in body:
            first, _, last = body.partition("-")
            low, high = _number(first, field), _number(last, field)
            if low > high:
                raise CronError(f"{field.name}: range {body!r} runs backwards")
        else:
            low = _number(body, field)
            high = field.high if slash else low
        values.update(range(low, high + 1, step))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronExpression:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday ... 6 = Saturday (7 is folded into 0)."""
    any_day: bool
    """The day-of-month field is unrestricted (``*``)."""
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        if len(text) > MAX_LENGTH:
            raise CronError(f"a cron expression has at most {MAX_LENGTH} characters")
        spec = text.strip()
        spec = MACROS.get(spec.lower(), spec)
        parts = spec.split()
        if len(parts) != len(_FIELDS):
            raise CronError(f"{text!r}: a cron expression has five fields (minute hour day-of-month month "
                            f"day-of-week), e.g. '0 7 * * 1-5'; it has {len(parts)}")
        minutes, hours, days, months, weekdays = (_parse_field(p, f) for p, f in zip(parts, _FIELDS, strict=True))
        expression = cls(text.strip(), minutes, hours, days, months,
                         frozenset(d % 7 for d in weekdays), parts[2].startswith("*"), parts[4].startswith("*"))
        if expression._never():
            raise CronError(f"{text!r} never matches a date (e.g. February 30th)")
        return expression

    def _never(self) -> bool:
        if not self.any_weekday and not self.any_day:
            return False  # either field matching is enough, and a weekday recurs every week
        if self.any_day:
            return False
        longest = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
        return all(day > longest[month] for month in self.months for day in self.days)

    def matches_day(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return in_week
        if self.any_weekday:
            return in_month
        return in_month or in_week

    def next_after(self, after: dt.datetime, zone: ZoneInfo | dt.timezone = dt.UTC) -> dt.datetime:
        """The first run strictly after ``after`` (timezone-aware), as a UTC instant."""
        if after.tzinfo is None:
            raise ValueError("next_after needs a timezone-aware time")
        local = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        start = local + dt.timedelta(minutes=1)
        hours = sorted(self.hours)
        minutes = sorted(self.minutes)
        day = start.date()
        for _ in range(SEARCH_DAYS):
            if self.matches_day(day):
                for hour in hours:
                    if day == start.date() and hour < start.hour:
                        continue
                    for minute in minutes:
                        wall = dt.datetime.combine(day, dt.time(hour, minute))
                        if wall < start:
                            continue
                        instant = wall.replace(tzinfo=zone).astimezone(dt.UTC)
                        if instant > after:
                            return instant
            day += dt.timedelta(days=1)
        raise CronError(f"{self.text!r} has no run in the next {SEARCH_DAYS // 366} years")


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name (``Europe/Paris``), with a clear error for a wrong one."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise CronError(f"{name!r} is not a time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin or UTC)") from None
