"""Periods as agencies write them, and their local (Asia/Ho_Chi_Minh) boundaries in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cityops.observations.periods import PeriodError, parse_period, period_of


@pytest.mark.parametrize(
    ("text", "kind", "key", "start"),
    [
        ("2026-11-27", "day", "2026-11-27", datetime(2026, 11, 26, 17, tzinfo=UTC)),
        ("2026-11", "month", "2026-11", datetime(2026, 10, 31, 17, tzinfo=UTC)),
        ("2026-Q3", "quarter", "2026-Q3", datetime(2026, 6, 30, 17, tzinfo=UTC)),
        ("2026-q3", "quarter", "2026-Q3", datetime(2026, 6, 30, 17, tzinfo=UTC)),
        ("2026", "year", "2026", datetime(2025, 12, 31, 17, tzinfo=UTC)),
        ("2025-2026", "school_year", "2025-2026", datetime(2025, 8, 31, 17, tzinfo=UTC)),
        ("2026-11-27T10:00:00+07:00", "instant", "2026-11-27T03:00:00.000000Z", datetime(2026, 11, 27, 3, tzinfo=UTC)),
        ("2026-11-27T03:00:00Z", "instant", "2026-11-27T03:00:00.000000Z", datetime(2026, 11, 27, 3, tzinfo=UTC)),
    ],
)
def test_each_period_form(text: str, kind: str, key: str, start: datetime) -> None:
    period = parse_period(text)
    assert (period.type, period.key, period.start) == (kind, key, start)


def test_a_month_ends_where_the_next_begins() -> None:
    assert parse_period("2026-12").end == parse_period("2027-01").start
    assert parse_period("2026-Q4").end == parse_period("2027-Q1").start


def test_a_school_year_runs_from_september_to_may() -> None:
    school_year = parse_period("2025-2026")
    assert school_year.end == datetime(2026, 5, 31, 17, tzinfo=UTC)
    assert period_of("school_year", datetime(2026, 3, 1, tzinfo=UTC)).key == "2025-2026"
    assert period_of("school_year", datetime(2026, 9, 10, tzinfo=UTC)).key == "2026-2027"


def test_local_midnight_decides_the_day() -> None:
    # 18:30 UTC on the 26th is already 01:30 on the 27th in Hà Nội.
    assert period_of("day", datetime(2026, 11, 26, 18, 30, tzinfo=UTC)).key == "2026-11-27"


@pytest.mark.parametrize(
    "text",
    ["2026-13", "2026-02-30", "2026-Q5", "2025-2027", "26-11", "2026-11-27T10:00:00", "", "tháng 11", "２０２６"],
)
def test_wrong_periods_are_refused(text: str) -> None:
    with pytest.raises(PeriodError):
        parse_period(text)
