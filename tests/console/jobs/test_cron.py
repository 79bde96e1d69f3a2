"""The five-field cron parser: syntax, errors, day matching and the next run across months, years and DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outband.console.jobs.cron import CronError, CronExpression, zone

UTC = dt.UTC


def at(text: str, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def runs(expr: str, after: dt.datetime, count: int, tz: ZoneInfo | dt.timezone = UTC) -> list[str]:
    cron = CronExpression.parse(expr)
    out = []
    for _ in range(count):
        after = cron.next_after(after, tz)
        out.append(after.astimezone(tz).strftime("%a %Y-%m-%d %H:%M"))
    return out


def test_weekday_mornings():
    # 2030-01-04 is a Friday
    assert runs("0 7 * * 1-5", at("2030-01-04T06:59"), 3) == [
        "Fri 2030-01-04 07:00", "Mon 2030-01-07 07:00", "Tue 2030-01-08 07:00"]
    assert runs("0 7 * * mon-fri", at("2030-01-04T07:00"), 1) == ["Mon 2030-01-07 07:00"]


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("*/15 * * * *", "2030-01-01T00:07", ["Tue 2030-01-01 00:15", "Tue 2030-01-01 00:30", "Tue 2030-01-01 00:45"]),
    ("5,10-12 3 * * *", "2030-01-01T03:10", ["Tue 2030-01-01 03:11", "Tue 2030-01-01 03:12", "Wed 2030-01-02 03:05"]),
    ("0 8-18/5 * * *", "2030-01-01T00:00", ["Tue 2030-01-01 08:00", "Tue 2030-01-01 13:00", "Tue 2030-01-01 18:00"]),
    ("30 2/10 * * *", "2030-01-01T00:00", ["Tue 2030-01-01 02:30", "Tue 2030-01-01 12:30", "Tue 2030-01-01 22:30"]),
    ("0 0 31 * *", "2030-01-31T00:00", ["Sun 2030-03-31 00:00", "Fri 2030-05-31 00:00", "Wed 2030-07-31 00:00"]),
    ("0 0 29 2 *", "2030-01-01T00:00", ["Sun 2032-02-29 00:00", "Fri 2036-02-29 00:00", "Wed 2040-02-29 00:00"]),
    ("0 0 1 * mon", "2030-01-01T00:00", ["Mon 2030-01-07 00:00", "Mon 2030-01-14 00:00", "Mon 2030-01-21 00:00"]),
    ("0 0 * * 7", "2030-01-01T00:00", ["Sun 2030-01-06 00:00", "Sun 2030-01-13 00:00", "Sun 2030-01-20 00:00"]),
    ("0 12 * JAN,Jul SUN", "2030-01-01T00:00", ["Sun 2030-01-06 12:00", "Sun 2030-01-13 12:00",
                                                 "Sun 2030-01-20 12:00"]),
    ("@daily", "2030-12-31T23:59", ["Wed 2031-01-01 00:00", "Thu 2031-01-02 00:00", "Fri 2031-01-03 00:00"]),
    ("@hourly", "2030-01-01T10:00:30", ["Tue 2030-01-01 11:00", "Tue 2030-01-01 12:00", "Tue 2030-01-01 13:00"]),
    ("@yearly", "2030-06-01T00:00", ["Wed 2031-01-01 00:00", "Thu 2032-01-01 00:00", "Sat 2033-01-01 00:00"]),
])
def test_next_runs(expr, after, expected):
    assert runs(expr, at(after), 3) == expected


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    cron = CronExpression.parse("0 0 13 * fri")
    assert cron.matches_day(dt.date(2030, 1, 13))  # a Sunday, but the 13th
    assert cron.matches_day(dt.date(2030, 1, 4))  # a Friday
    assert not cron.matches_day(dt.date(2030, 1, 5))
    only_dom = CronExpression.parse("0 0 13 * *")
    assert not only_dom.matches_day(dt.date(2030, 1, 4))


def test_daylight_saving_gap_runs_after_the_gap_and_overlap_runs_once():
    berlin = ZoneInfo("Europe/Berlin")
    # 2030-03-31: 02:00 -> 03:00 in Berlin; 02:30 does not exist that day
    assert runs("30 2 * * *", at("2030-03-30T12:00", berlin), 3, berlin) == [
        "Sun 2030-03-31 03:30", "Mon 2030-04-01 02:30", "Tue 2030-04-02 02:30"]
    # 2030-10-27: 03:00 -> 02:00; 02:30 happens twice, the run happens once
    first = CronExpression.parse("30 2 * * *").next_after(at("2030-10-27T00:00", berlin), berlin)
    assert first == dt.datetime(2030, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert CronExpression.parse("30 2 * * *").next_after(first, berlin) == dt.datetime(2030, 10, 28, 1, 30, tzinfo=UTC)


def test_runs_are_strictly_increasing_across_a_fall_back_hour():
    berlin = ZoneInfo("Europe/Berlin")
    cron = CronExpression.parse("*/20 * * * *")
    moment = at("2030-10-27T01:50", berlin)
    seen = []
    for _ in range(8):
        moment = cron.next_after(moment, berlin)
        seen.append(moment)
    assert seen == sorted(set(seen))


@pytest.mark.parametrize(("expr", "message"), [
    ("", "five fields"),
    ("0 7 * *", "five fields"),
    ("0 7 * * * *", "five fields"),
    ("60 * * * *", "minute: 60 is outside 0-59"),
    ("* 24 * * *", "hour: 24 is outside 0-23"),
    ("* * 0 * *", "day of month: 0 is outside 1-31"),
    ("* * * 13 *", "month: 13 is outside 1-12"),
    ("* * * * 8", "day of week: 8 is outside 0-7"),
    ("* * * foo *", "month: 'foo' is not a number or a name"),
    ("*/0 * * * *", "step '0'"),
    ("5-1 * * * *", "runs backwards"),
    ("1,,2 * * * *", "empty list item"),
    ("0 0 30 2 *", "never matches"),
    ("0 0 31 4,6,9,11 *", "never matches"),
    ("\u0661 * * * *", "not a number"),  # an Arabic-Indic digit: isdigit() but not ASCII
    ("0 " * 150, "at most 200 characters"),
])
def test_errors_say_what_is_wrong(expr, message):
    with pytest.raises(CronError, match=message):
        CronExpression.parse(expr)


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        CronExpression.parse("* * * * *").next_after(dt.datetime(2030, 1, 1))


def test_time_zones():
    assert zone("Europe/Paris").key == "Europe/Paris"
    for bad in ("Mars/Olympus", "", "../etc/passwd", "/etc/localtime"):
        with pytest.raises(CronError):
            zone(bad)


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1), timezones=st.just(UTC)),
       st.sampled_from(["*/7 * * * *", "0 7 * * 1-5", "15 3 1,15 * *", "0 0 1 * mon", "@weekly", "59 23 31 12 *"]))
def test_next_run_matches_and_nothing_matches_in_between(after, expr):
    cron = CronExpression.parse(expr)
    found = cron.next_after(after)
    assert found > after
    assert found.second == 0
    assert cron.matches_day(found.date())
    assert found.hour in cron.hours
    assert found.minute in cron.minutes
    if found - after < dt.timedelta(days=2):  # brute force the gap minute by minute
        probe = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        while probe < found:
            assert not (cron.matches_day(probe.date()) and probe.hour in cron.hours and probe.minute in cron.minutes)
            probe += dt.timedelta(minutes=1)
