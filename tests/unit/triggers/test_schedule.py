"""The pure due-time arithmetic of cron and interval triggers: no event loop, no clock."""

from datetime import UTC, datetime, timedelta

import pytest

from conv3n.errors import InvalidInput
from conv3n.triggers.cron import CronSchedule
from conv3n.triggers.interval import IntervalSchedule
from conv3n.triggers.schedule import due, scheduled_at


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0):
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def walk(schedule: CronSchedule | IntervalSchedule, start: datetime, count: int) -> list[str]:
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment.strftime("%Y-%m-%d %H:%M:%S"))
    return found


# --- interval ------------------------------------------------------------------------------


def test_interval_due_times_are_multiples_of_the_period_since_the_epoch():
    every = IntervalSchedule(200)
    now = utc(2026, 12, 1, 20, 0, 0) + timedelta(milliseconds=130)
    assert every.next_after(now) == utc(2026, 12, 1, 20, 0, 0) + timedelta(milliseconds=200)
    assert every.latest_at_or_before(now) == utc(2026, 12, 1, 20, 0, 0)
    assert every.previous(utc(2026, 12, 1, 20, 0, 0)) == utc(2026, 12, 1, 19, 59, 59) + timedelta(
        milliseconds=800
    )


def test_interval_next_after_a_due_time_is_the_following_one():
    every = IntervalSchedule(1000)
    moment = utc(2026, 1, 1, 0, 0, 5)
    assert every.next_after(moment) == utc(2026, 1, 1, 0, 0, 6)
    assert every.latest_at_or_before(moment) == moment


@pytest.mark.parametrize("every_ms", [0, 99, -5, 366 * 86_400_000 + 1])
def test_interval_outside_the_limits_is_refused(every_ms: int):
    with pytest.raises(InvalidInput, match="every_ms must be between 100"):
        IntervalSchedule(every_ms)


def test_interval_ignores_leap_days_and_dst_because_it_counts_real_time():
    every = IntervalSchedule(86_400_000)
    assert walk(every, utc(2028, 2, 27, 12), 3) == [
        "2028-02-28 00:00:00",
        "2028-02-29 00:00:00",
        "2028-03-01 00:00:00",
    ]


# --- cron ----------------------------------------------------------------------------------


def test_five_field_cron_runs_at_its_minutes_in_utc():
    assert walk(CronSchedule("*/15 9 * * 1-5"), utc(2026, 12, 4, 9, 20), 3) == [
        "2026-12-04 09:30:00",
        "2026-12-04 09:45:00",
        "2026-12-07 09:00:00",  # Friday, then Monday
    ]


def test_six_field_cron_has_seconds_first():
    assert walk(CronSchedule("*/20 * * * * *"), utc(2026, 1, 1, 0, 0, 1), 3) == [
        "2026-01-01 00:00:20",
        "2026-01-01 00:00:40",
        "2026-01-01 00:01:00",
    ]
    assert walk(CronSchedule("30 0 12 * * *"), utc(2026, 1, 1), 1) == ["2026-01-01 12:00:30"]


def test_cron_in_a_time_zone_is_returned_in_utc():
    # 09:00 in New York is 14:00 UTC in winter, 13:00 UTC in summer
    schedule = CronSchedule("0 9 * * *", "America/New_York")
    assert walk(schedule, utc(2026, 1, 10), 1) == ["2026-01-10 14:00:00"]
    assert walk(schedule, utc(2026, 7, 10), 1) == ["2026-07-10 13:00:00"]


def test_cron_in_the_hour_clocks_skip_runs_right_after_the_jump():
    # Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day
    schedule = CronSchedule("30 2 * * *", "Europe/Berlin")
    assert walk(schedule, utc(2026, 3, 28, 12), 3) == [
        "2026-03-29 01:00:00",  # 03:00 CEST, right after the jump
        "2026-03-30 00:30:00",  # 02:30 CEST
        "2026-03-31 00:30:00",
    ]


def test_cron_at_a_fixed_time_runs_once_in_the_hour_that_repeats():
    # Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice
    schedule = CronSchedule("30 2 * * *", "Europe/Berlin")
    assert walk(schedule, utc(2026, 10, 24, 12), 2) == [
        "2026-10-25 00:30:00",  # 02:30 CEST, the first copy only
        "2026-10-26 01:30:00",  # 02:30 CET
    ]
    assert schedule.previous(utc(2026, 10, 26)) == utc(2026, 10, 25, 0, 30)


def test_cron_with_a_wildcard_hour_runs_in_both_copies_of_the_repeated_hour():
    schedule = CronSchedule("*/30 * * * *", "Europe/Berlin")
    assert walk(schedule, utc(2026, 10, 24, 23, 50), 6) == [
        "2026-10-25 00:00:00",  # 02:00 CEST
        "2026-10-25 00:30:00",  # 02:30 CEST
        "2026-10-25 01:00:00",  # 02:00 CET
        "2026-10-25 01:30:00",  # 02:30 CET
        "2026-10-25 02:00:00",
        "2026-10-25 02:30:00",
    ]


def test_cron_on_the_29th_of_february_runs_in_leap_years_only():
    assert walk(CronSchedule("0 0 29 2 *"), utc(2026, 1, 1), 2) == [
        "2028-02-29 00:00:00",
        "2032-02-29 00:00:00",
    ]


def test_cron_aliases_are_understood():
    assert walk(CronSchedule("@daily"), utc(2026, 5, 5, 5), 1) == ["2026-05-06 00:00:00"]
    assert walk(CronSchedule("@hourly"), utc(2026, 5, 5, 5, 5), 1) == ["2026-05-05 06:00:00"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "has 5 fields"),
        ("* * * * * * *", "has 5 fields"),
        ("61 * * * *", "not a valid cron expression"),
        ("* 25 * * *", "not a valid cron expression"),
        ("*/0 * * * *", "not a valid cron expression"),
        ("hello world foo bar baz", "not a valid cron expression"),
        ("0 0 31 2 *", "never matches"),
        ("@sometimes", "unknown cron alias"),
        ("1" * 300, "at most 256 characters"),
    ],
)
def test_invalid_cron_expressions_are_refused_with_a_clear_message(expression: str, message: str):
    with pytest.raises(InvalidInput, match=message):
        CronSchedule(expression)


def test_unknown_time_zone_is_refused():
    with pytest.raises(InvalidInput, match="unknown time zone 'Mars/Olympus'"):
        CronSchedule("* * * * *", "Mars/Olympus")


def test_latest_at_or_before_includes_a_due_time_exactly_now():
    schedule = CronSchedule("0 * * * *")
    assert schedule.latest_at_or_before(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 5)
    assert schedule.previous(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 4)


# --- catch-up ------------------------------------------------------------------------------

EVERY_SECOND = IntervalSchedule(1000)
LAST = utc(2026, 1, 1, 12, 0, 0)
NOW = utc(2026, 1, 1, 12, 0, 5) + timedelta(milliseconds=500)
MISSED = [utc(2026, 1, 1, 12, 0, s) for s in range(1, 6)]


def test_catch_up_all_fires_every_missed_due_time_oldest_first():
    plan = due(EVERY_SECOND, since=LAST, now=NOW, catch_up="all")
    assert list(plan.times) == MISSED
    assert plan.next_at == utc(2026, 1, 1, 12, 0, 6)
    assert plan.missed == 5


def test_catch_up_last_fires_only_the_most_recent_missed_due_time():
    plan = due(EVERY_SECOND, since=LAST, now=NOW, catch_up="last")
    assert list(plan.times) == MISSED[-1:]


def test_catch_up_none_skips_missed_due_times_and_waits_for_the_next():
    plan = due(EVERY_SECOND, since=LAST, now=NOW, catch_up="none")
    assert plan.times == ()
    assert plan.next_at == utc(2026, 1, 1, 12, 0, 6)
    assert plan.missed == 5


def test_catch_up_all_is_capped_at_the_most_recent_max_catch_up():
    plan = due(EVERY_SECOND, since=LAST, now=NOW, catch_up="all", max_catch_up=2)
    assert list(plan.times) == MISSED[-2:]
    assert plan.missed == 3  # counted up to the cap and one more


def test_a_month_of_downtime_at_100_ms_is_bounded_work():
    plan = due(IntervalSchedule(100), since=LAST, now=LAST + timedelta(days=30), catch_up="all")
    assert len(plan.times) == 100
    assert plan.times[-1] == LAST + timedelta(days=30)


def test_nothing_is_due_when_since_is_now():
    plan = due(EVERY_SECOND, since=NOW, now=NOW, catch_up="all")
    assert plan.times == ()


def test_a_due_time_exactly_at_since_is_not_fired_again():
    plan = due(EVERY_SECOND, since=MISSED[0], now=MISSED[1], catch_up="all")
    assert list(plan.times) == [MISSED[1]]


def test_catch_up_of_a_cron_schedule_across_a_dst_change():
    schedule = CronSchedule("0 * * * *", "Europe/Berlin")
    plan = due(schedule, since=utc(2026, 10, 24, 22), now=utc(2026, 10, 25, 3), catch_up="all")
    # five real hours pass; the local hour 02 happens twice and both copies are due
    assert [t.hour for t in plan.times] == [23, 0, 1, 2, 3]


def test_scheduled_at_is_iso_8601_utc_with_milliseconds():
    assert scheduled_at(utc(2026, 12, 1, 20, 0, 0) + timedelta(milliseconds=200)) == (
        "2026-12-01T20:00:00.200Z"
    )
