"""Property-based tests (hypothesis) of the parsers every input path relies on: periods, Vietnamese numbers and
dates, and the JSON mapping of connectors. Whatever they are given, they answer or refuse with their own error —
never another exception — and what they accept means what it says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.connectors.mapping import Mapping, apply
from cityops.connectors.values import parse_date_text, parse_number, period_text
from cityops.observations.periods import PeriodError, parse_period, period_of

settings.register_profile("cityops", max_examples=200, deadline=None)
settings.load_profile("cityops")

DAYS = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))


@given(st.text(max_size=60))
def test_any_text_is_a_period_or_a_period_error(text: str) -> None:
    try:
        period = parse_period(text)
    except PeriodError:
        return
    assert period.start <= period.end
    assert parse_period(period.key) == period  # the canonical key reads back as itself


@given(DAYS, st.sampled_from(["day", "month", "quarter", "year", "school_year"]))
def test_the_period_of_a_moment_contains_it_and_reads_back(day: date, period_type: str) -> None:
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    period = period_of(period_type, moment)
    if period_type == "school_year" and day.month in (6, 7, 8):
        # The summer holidays belong to no school year: the school year of a summer day is the one just ended.
        assert period.end <= moment < period.end + timedelta(days=92)
    else:
        assert period.start <= moment < period.end
    assert parse_period(period.key) == period
    assert period_of(period_type, period.end - timedelta(microseconds=1)) == period  # the last instant is inside


@given(st.text(max_size=40))
def test_any_text_is_a_number_or_a_value_error(text: str) -> None:
    try:
        number = parse_number(text)
    except ValueError:
        return
    assert number == number and abs(number) != float("inf")


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=0, max_value=99))
def test_numbers_written_the_vietnamese_way_read_back(whole: int, cents: int) -> None:
    grouped = f"{abs(whole):,}".replace(",", ".")
    text = f"{'-' if whole < 0 else ''}{grouped},{cents:02d}"
    expected = (abs(whole) + cents / 100) * (-1 if whole < 0 else 1)
    assert abs(parse_number(text) - expected) <= 1e-6 * max(1.0, abs(expected))


@given(DAYS)
def test_dates_written_dd_mm_yyyy_are_that_day(day: date) -> None:
    assert parse_date_text(f"{day.day:02d}/{day.month:02d}/{day.year:04d}") == day.isoformat()
    assert period_text(day) == day.isoformat()


@given(st.text(max_size=40))
def test_any_date_text_is_a_text_or_a_value_error(text: str) -> None:
    try:
        result = parse_date_text(text)
    except ValueError:
        return
    assert isinstance(result, str)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)
MAPPING = Mapping.model_validate(
    {
        "records": "data.items",
        "subject": "ma_xa",
        "period": "ngay",
        "observations": [{"indicator": {"value": "yte.ca_sot_xuat_huyet"}, "value": "so_ca"}],
    }
)


@given(JSON)
def test_any_json_document_maps_to_items_and_rejections_without_crashing(document: object) -> None:
    try:
        items, rejected = apply(MAPPING, document)
    except ValueError:  # MappingFailed: the document as a whole has no records where the mapping says
        return
    for item in items:
        assert set(item) >= {"indicator", "subject", "period", "value"}
    assert all(rejection.code for rejection in rejected)


@given(st.lists(st.fixed_dictionaries({"ma_xa": st.text(max_size=8), "ngay": JSON, "so_ca": JSON}), max_size=5))
def test_each_record_is_an_item_or_a_rejection(records: list[dict[str, object]]) -> None:
    items, rejected = apply(MAPPING, {"data": {"items": records}})
    assert len(items) + len(rejected) == len(records)
