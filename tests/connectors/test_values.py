"""Numbers and dates as agencies write them: the Vietnamese way (1.234,5 and 27/11/2026), the English way, plain."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cityops.clock import LOCAL_TZ
from cityops.connectors.values import parse_date_text, parse_number, period_text


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1.234,5", 1234.5),
        ("2,5", 2.5),
        ("1.234.567", 1234567),
        ("1.234.567,89", 1234567.89),
        ("1,234.5", 1234.5),
        ("1,234,567.89", 1234567.89),
        ("1234.5", 1234.5),
        ("1234,5", 1234.5),
        ("1234", 1234),
        ("0,125", 0.125),
        ("0.125", 0.125),
        ("1.234", 1234),  # a lone separator followed by three digits groups thousands
        ("1,234", 1234),
        ("12,34", 12.34),
        ("-1.234,5", -1234.5),
        ("\u22121.234,5", -1234.5),  # a typographic minus
        ("+7", 7),
        ("1 234 567,5", 1234567.5),
        ("1\u00a0234,5", 1234.5),  # a no-break space groups thousands in Word and Excel
        ("  42  ", 42),
        ("85,5%", 85.5),
    ],
)
def test_numbers_are_read_in_every_style(text: str, number: float) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "%",
        "không có",
        "12a",
        "1.2.3",  # groups that are not three digits
        "1,2,3",
        "12.34,5",  # grouping by two, then a decimal
        "1.234,5,6",
        "1,5.3",
        ",5",
        "5.",
        "--5",
        "1e5",
        "inf",
        "NaN",
        "0x1F",
    ],
)
def test_what_is_not_a_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("27/11/2026", "2026-11-27"),
        ("1/2/2026", "2026-02-01"),
        ("27-11-2026", "2026-11-27"),
        ("27.11.2026", "2026-11-27"),
        ("27/11/2026 08:30", "2026-11-27T01:30:00+00:00"),  # local time (UTC+7)
        ("27/11/2026 08:30:15", "2026-11-27T01:30:15+00:00"),
        ("2026-11-27 08:30:00", "2026-11-27T01:30:00+00:00"),
        ("2026-11-27T08:30", "2026-11-27T01:30:00+00:00"),
        ("11/2026", "2026-11"),
        ("Tháng 11/2026", "2026-11"),
        ("tháng 11 năm 2026", "2026-11"),
        ("Quý 3/2026", "2026-Q3"),
        ("Q3/2026", "2026-Q3"),
        ("Quý III năm 2026", "2026-Q3"),
        ("quý iv/2026", "2026-Q4"),
        ("Năm 2026", "2026"),
        # Already in cityops' own forms: left for the period parser.
        ("2026-11-27", "2026-11-27"),
        ("2026-11", "2026-11"),
        ("2025-2026", "2025-2026"),
        ("2026-11-27T08:30:00+07:00", "2026-11-27T08:30:00+07:00"),
        ("không rõ", "không rõ"),
    ],
)
def test_dates_and_periods_are_read_as_agencies_write_them(text: str, period: str) -> None:
    assert parse_date_text(text) == period


@pytest.mark.parametrize("text", ["31/02/2026", "32/01/2026", "13/2026", "27/13/2026", "27/11/2026 25:00"])
def test_impossible_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date_text(text)


@pytest.mark.parametrize(
    ("value", "period"),
    [
        (date(2026, 11, 27), "2026-11-27"),
        (datetime(2026, 11, 27), "2026-11-27"),  # noqa: DTZ001 - a spreadsheet's cells are naive, local time
        (datetime(2026, 11, 27, 8, 30), "2026-11-27T01:30:00+00:00"),  # noqa: DTZ001
        (datetime(2026, 11, 27, 8, 30, tzinfo=LOCAL_TZ), "2026-11-27T01:30:00+00:00"),
        (2026, "2026"),
        (2026.0, "2026"),
        ("27/11/2026", "2026-11-27"),
    ],
)
def test_a_period_is_read_from_a_cell_or_a_json_value(value: object, period: str) -> None:
    assert period_text(value) == period


@pytest.mark.parametrize("value", [True, None, {"ngay": 1}, [2026]])
def test_a_value_that_cannot_be_a_period_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        period_text(value)
