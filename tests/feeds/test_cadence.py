"""Cadences as agencies write them (English and Vietnamese), their canonical text, periods and deadlines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cityops.clock import LOCAL_TZ
from cityops.feeds.cadence import Cadence, CadenceError, parse_cadence, period_for_key
from cityops.observations.periods import parse_period


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str) -> datetime:
    """A wall-clock time in Hà Nội, as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ).astimezone(UTC)


ACCEPTED = [
    ("every 5 minutes", "every 5 minutes"),
    ("Every 15 mins", "every 15 minutes"),
    ("every minute", "every 1 minute"),
    ("every 2 hours", "every 2 hours"),
    ("mỗi 5 phút", "every 5 minutes"),
    ("Mỗi giờ", "every 1 hour"),
    ("mỗi 6 tiếng", "every 6 hours"),
    ("daily by 17:00", "daily by 17:00"),
    ("DAILY  BY  8:30", "daily by 08:30"),
    ("every day by 17:00", "daily by 17:00"),
    ("hằng ngày trước 17:00", "daily by 17:00"),
    ("hàng ngày trước 17h", "daily by 17:00"),
    ("mỗi ngày trước 16h30", "daily by 16:30"),
    ("daily by 00:00", "daily by 24:00"),
    ("hằng ngày trước 24:00", "daily by 24:00"),
    ("monthly by day 5", "monthly by day 5"),
    ("hằng tháng trước ngày 5", "monthly by day 5"),
    ("hàng tháng trước ngày 31", "monthly by day 31"),
    ("quarterly by day 10", "quarterly by day 10"),
    ("hằng quý trước ngày 10", "quarterly by day 10"),
    ("yearly by 31/01", "yearly by 31/01"),
    ("annually by 31 January", "yearly by 31/01"),
    ("hằng năm trước 31/01", "yearly by 31/01"),
    ("hằng năm trước ngày 31 tháng 1", "yearly by 31/01"),
    ("yearly by 29/02", "yearly by 29/02"),
    ("each school year by 30 September", "each school year by 30 September"),
    ("every school year by 30 Sept", "each school year by 30 September"),
    ("mỗi năm học trước 30/09", "each school year by 30 September"),
    ("hằng năm học trước ngày 30 tháng 9", "each school year by 30 September"),
]


@pytest.mark.parametrize(("text", "canonical"), ACCEPTED)
def test_every_accepted_form_reads_to_its_canonical_text(text: str, canonical: str) -> None:
    assert parse_cadence(text).text == canonical


@pytest.mark.parametrize(("text", "canonical"), ACCEPTED)
def test_canonical_and_vietnamese_texts_read_back_to_the_same_cadence(text: str, canonical: str) -> None:
    cadence = parse_cadence(text)
    assert parse_cadence(cadence.text) == cadence
    assert cadence.describe("en") == canonical
    vietnamese = cadence.describe("vi")
    assert parse_cadence(vietnamese) == cadence
    assert any(letter in vietnamese for letter in "ỗằăọ"), vietnamese


@pytest.mark.parametrize(
    ("text", "period_type"),
    [
        ("every 5 minutes", "instant"),
        ("daily by 17:00", "day"),
        ("monthly by day 5", "month"),
        ("quarterly by day 10", "quarter"),
        ("yearly by 31/01", "year"),
        ("each school year by 30 September", "school_year"),
    ],
)
def test_each_cadence_delivers_periods_of_its_type(text: str, period_type: str) -> None:
    assert parse_cadence(text).period_type == period_type


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "weekly by Monday",
        "hằng tuần trước thứ hai",
        "every 7 minutes",  # does not divide a day
        "mỗi 7 phút",
        "every 0 minutes",
        "every 2 days",
        "every 25 hours",
        "daily at 17:00",
        "daily by 25:00",
        "daily by 17:60",
        "daily by 24:30",
        "daily by 17",
        "monthly by day 0",
        "monthly by day 32",
        "hằng tháng trước ngày 40",
        "quarterly by day 45",
        "yearly by 30/02",
        "yearly by 31/13",
        "yearly by 00/01",
        "each school year by 30 Septembre",
        "each school year by 30 ju",  # June or July?
        "mỗi năm học trước",
        "daily by 17:00; DROP TABLE feeds",
    ],
)
def test_texts_that_are_not_cadences_are_refused(text: str) -> None:
    with pytest.raises(CadenceError):
        parse_cadence(text)


# --- deadlines -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "period", "due"),
    [
        # the day's figures by 17:00 local time that day = 10:00 UTC
        ("daily by 17:00", "2026-11-27", utc("2026-11-27T10:00")),
        ("daily by 08:30", "2026-11-27", utc("2026-11-27T01:30")),
        ("daily by 24:00", "2026-11-27", local("2026-11-28T00:00")),
        # a month by (the end of) day 5 of the next month
        ("monthly by day 5", "2026-11", local("2026-12-06T00:00")),
        ("monthly by day 5", "2026-12", local("2027-01-06T00:00")),
        # day 31 is the last day of a shorter month: February 28 in a common year, 29 in a leap year
        ("monthly by day 31", "2026-01", local("2026-03-01T00:00")),
        ("monthly by day 31", "2028-01", local("2028-03-01T00:00")),
        ("monthly by day 30", "2027-01", local("2027-03-01T00:00")),
        ("monthly by day 29", "2028-01", local("2028-03-01T00:00")),
        ("monthly by day 29", "2027-01", local("2027-03-01T00:00")),
        ("monthly by day 31", "2026-03", local("2026-05-01T00:00")),
        ("monthly by day 31", "2026-04", local("2026-06-01T00:00")),
        # a quarter by day 10 of the month after it
        ("quarterly by day 10", "2026-Q3", local("2026-10-11T00:00")),
        ("quarterly by day 10", "2026-Q4", local("2027-01-11T00:00")),
        # a year by a date of the next year; 29/02 is 28/02 in common years
        ("yearly by 31/01", "2026", local("2027-02-01T00:00")),
        ("yearly by 29/02", "2027", local("2028-03-01T00:00")),
        ("yearly by 29/02", "2025", local("2026-03-01T00:00")),
        ("yearly by 31/12", "2026", local("2027-01-01T00:00")),  # the year's own last day
        # a school year (1 September – 31 May) by 30 September after it
        ("each school year by 30 September", "2025-2026", local("2026-10-01T00:00")),
        ("mỗi năm học trước 31/05", "2025-2026", local("2026-06-01T00:00")),
    ],
)
def test_a_period_is_due_by_its_cadence(text: str, period: str, due: datetime) -> None:
    cadence = parse_cadence(text)
    assert cadence.due(parse_period(period)) == due


def test_the_school_year_deadline_is_the_end_of_30_september_local_time() -> None:
    due = parse_cadence("each school year by 30 September").due(parse_period("2025-2026"))
    assert due == utc("2026-09-30T17:00")
    assert due.astimezone(LOCAL_TZ).isoformat() == "2026-10-01T00:00:00+07:00"


def test_five_minute_slots_are_due_at_their_end() -> None:
    cadence = parse_cadence("every 5 minutes")
    slot = cadence.slot(utc("2026-11-27T03:02:10"))
    assert (slot.type, slot.start, slot.end) == ("instant", utc("2026-11-27T03:00"), utc("2026-11-27T03:05"))
    assert cadence.due(slot) == utc("2026-11-27T03:05")
    assert cadence.slot(utc("2026-11-27T03:05")).start == utc("2026-11-27T03:05")
    assert cadence.next(slot).start == utc("2026-11-27T03:05")
    assert period_for_key(cadence, slot.key) == slot


def test_hour_slots_begin_at_local_midnight() -> None:
    cadence = parse_cadence("every 6 hours")
    slot = cadence.slot(local("2026-11-27T10:00"))
    assert (slot.start, slot.end) == (local("2026-11-27T06:00"), local("2026-11-27T12:00"))
    day = parse_cadence("every 24 hours").slot(local("2026-11-27T23:59"))
    assert (day.start, day.end) == (local("2026-11-27T00:00"), local("2026-11-28T00:00"))


# --- which periods are expected ------------------------------------------------------------------


def expected(cadence: Cadence, first_due: datetime, last_start: datetime) -> list[tuple[str, datetime]]:
    return [(item.period.key, item.due_at) for item in cadence.expected_between(first_due, last_start)]


def test_a_daily_feed_created_before_the_deadline_owes_that_day() -> None:
    cadence = parse_cadence("daily by 17:00")
    assert expected(cadence, local("2026-11-27T10:00"), local("2026-11-29T00:00")) == [
        ("2026-11-27", local("2026-11-27T17:00")),
        ("2026-11-28", local("2026-11-28T17:00")),
        ("2026-11-29", local("2026-11-29T17:00")),
    ]


def test_a_daily_feed_created_after_the_deadline_owes_from_the_next_day() -> None:
    cadence = parse_cadence("daily by 17:00")
    assert [key for key, _ in expected(cadence, local("2026-11-27T18:00"), local("2026-11-28T00:00"))] == ["2026-11-28"]


def test_monthly_periods_across_a_year_end_and_february() -> None:
    cadence = parse_cadence("monthly by day 31")
    assert expected(cadence, local("2026-11-27T10:00"), local("2027-02-01T00:00")) == [
        # October is due by the end of 30 November (November has no 31st), after the feed began
        ("2026-10", local("2026-12-01T00:00")),
        ("2026-11", local("2027-01-01T00:00")),
        ("2026-12", local("2027-02-01T00:00")),
        ("2027-01", local("2027-03-01T00:00")),
        ("2027-02", local("2027-04-01T00:00")),
    ]


def test_quarters_and_years_are_expected_in_order() -> None:
    quarterly = parse_cadence("quarterly by day 10")
    assert [key for key, _ in expected(quarterly, local("2026-11-27T10:00"), local("2027-07-01T00:00"))] == [
        "2026-Q4",
        "2027-Q1",
        "2027-Q2",
        "2027-Q3",
    ]
    yearly = parse_cadence("yearly by 31/01")
    assert expected(yearly, local("2027-01-15T00:00"), local("2028-01-01T00:00")) == [
        ("2026", local("2027-02-01T00:00")),
        ("2027", local("2028-02-01T00:00")),
        ("2028", local("2029-02-01T00:00")),
    ]


def test_school_years_step_over_the_summer() -> None:
    cadence = parse_cadence("each school year by 30 September")
    assert expected(cadence, local("2026-06-15T00:00"), local("2027-10-01T00:00")) == [
        ("2025-2026", local("2026-10-01T00:00")),
        ("2026-2027", local("2027-10-01T00:00")),
        ("2027-2028", local("2028-10-01T00:00")),
    ]


def test_interval_slots_from_the_one_in_progress() -> None:
    cadence = parse_cadence("every 5 minutes")
    assert expected(cadence, utc("2026-11-27T03:02"), utc("2026-11-27T03:15")) == [
        ("2026-11-27T03:00:00Z", utc("2026-11-27T03:05")),
        ("2026-11-27T03:05:00Z", utc("2026-11-27T03:10")),
        ("2026-11-27T03:10:00Z", utc("2026-11-27T03:15")),
        ("2026-11-27T03:15:00Z", utc("2026-11-27T03:20")),
    ]


def test_a_leap_day_period_is_a_day_like_any_other() -> None:
    cadence = parse_cadence("daily by 17:00")
    keys = [key for key, _ in expected(cadence, local("2028-02-28T00:00"), local("2028-03-01T00:00"))]
    assert keys == ["2028-02-28", "2028-02-29", "2028-03-01"]
