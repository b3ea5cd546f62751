"""Periods: parse what agencies send (2026-11-27, 2026-11, 2026-Q3, 2026, 2025-2026, an instant)
into a canonical key and its start and end in UTC. Calendar periods are local (Asia/Ho_Chi_Minh)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from cityops.clock import LOCAL_TZ

PERIOD_TYPES = ("instant", "day", "month", "quarter", "year", "school_year")

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$", re.ASCII)
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$", re.ASCII)
_YEAR = re.compile(r"^(\d{4})$", re.ASCII)
_SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$", re.ASCII)
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII)

SCHOOL_YEAR_START_MONTH = 9  # a school year runs from 1 September …
SCHOOL_YEAR_END_MONTH = 6  # … to the end of May (exclusive end: 1 June).


class PeriodError(ValueError):
    """The text is not a period cityops understands."""


@dataclass(frozen=True, slots=True)
class Period:
    """A canonical period: its type, its key as stored, and its [start, end) in UTC."""

    type: str
    key: str
    start: datetime
    end: datetime


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)


def _month_start(year: int, month: int) -> date:
    while month > 12:
        year, month = year + 1, month - 12
    return date(year, month, 1)


def parse_period(text: str) -> Period:
    """Parse a period or an RFC 3339 instant (with its offset); raise PeriodError otherwise."""
    text = text.strip()
    try:
        if m := _DAY.match(text):
            day = date(int(m[1]), int(m[2]), int(m[3]))
            start = _local_midnight(day)
            end = _local_midnight(date.fromordinal(day.toordinal() + 1))
            return Period("day", day.isoformat(), start, end)
        if m := _MONTH.match(text):
            year, month = int(m[1]), int(m[2])
            first = date(year, month, 1)
            return Period(
                "month",
                f"{year:04d}-{month:02d}",
                _local_midnight(first),
                _local_midnight(_month_start(year, month + 1)),
            )
        if m := _QUARTER.match(text):
            year, quarter = int(m[1]), int(m[2])
            first_month = 3 * (quarter - 1) + 1
            return Period(
                "quarter",
                f"{year:04d}-Q{quarter}",
                _local_midnight(date(year, first_month, 1)),
                _local_midnight(_month_start(year, first_month + 3)),
            )
        if m := _YEAR.match(text):
            year = int(m[1])
            return Period(
                "year", f"{year:04d}", _local_midnight(date(year, 1, 1)), _local_midnight(date(year + 1, 1, 1))
            )
        if m := _SCHOOL_YEAR.match(text):
            first_year, second_year = int(m[1]), int(m[2])
            if second_year != first_year + 1:
                raise PeriodError("a school year is two consecutive years, e.g. 2025-2026")
            return Period(
                "school_year",
                f"{first_year:04d}-{second_year:04d}",
                _local_midnight(date(first_year, SCHOOL_YEAR_START_MONTH, 1)),
                _local_midnight(date(second_year, SCHOOL_YEAR_END_MONTH, 1)),
            )
        if _INSTANT.match(text):
            instant = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00")).astimezone(UTC)
            return Period("instant", instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), instant, instant)
    except (ValueError, OverflowError) as exc:  # OverflowError: a date near year 1 or 9999 shifted out of range
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(str(exc)) from exc
    raise PeriodError(f"not a period: {text[:40]!r}")


def period_of(period_type: str, moment: datetime) -> Period:
    """The period of the given type that contains a moment (for simulators and reports)."""
    local = moment.astimezone(LOCAL_TZ)
    if period_type == "instant":
        return parse_period(moment.astimezone(UTC).isoformat())
    if period_type == "day":
        return parse_period(local.date().isoformat())
    if period_type == "month":
        return parse_period(f"{local.year:04d}-{local.month:02d}")
    if period_type == "quarter":
        return parse_period(f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}")
    if period_type == "year":
        return parse_period(f"{local.year:04d}")
    if period_type == "school_year":
        first = local.year if local.month >= SCHOOL_YEAR_START_MONTH else local.year - 1
        return parse_period(f"{first:04d}-{first + 1:04d}")
    raise PeriodError(f"unknown period type {period_type!r}")
