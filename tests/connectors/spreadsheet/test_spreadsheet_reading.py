"""Reading sheets without a database: the reader (encodings, delimiters, merged cells, Excel's numbers and dates,
limits) and the connector's understanding of headers, subjects, periods and values."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

import pytest
from openpyxl import Workbook

from cityops.connectors.spreadsheet import reader
from cityops.connectors.spreadsheet.connector import (
    IndicatorTerm,
    LayoutError,
    SubjectTerm,
    Vocabulary,
    header_key,
    interpret,
    period_for,
    read_period,
)
from cityops.connectors.spreadsheet.schema import SpreadsheetSettings
from cityops.geo.service import search_keys

RECEIVED = IndicatorTerm("hcc.ho_so_tiep_nhan", "Hồ sơ tiếp nhận", "Dossiers received", "hồ sơ", "dossiers", "month", 0)
RATE = IndicatorTerm("hcc.ty_le_dung_han", "Tỷ lệ hồ sơ đúng hạn", "On-time rate", "%", "%", "month", 0, 100)
SUBJECTS = [
    SubjectTerm("40", "Tỉnh Nghệ An", frozenset(search_keys("Tỉnh Nghệ An") | {"toantinh"})),
    SubjectTerm("16681", "Phường Thành Vinh", frozenset(search_keys("Phường Thành Vinh"))),
    SubjectTerm("01234", "Xã Hòa Bình", frozenset(search_keys("Xã Hòa Bình"))),
    SubjectTerm("05678", "Phường Hòa Bình", frozenset(search_keys("Phường Hòa Bình"))),
]


def words(**aliases: str) -> Vocabulary:
    return Vocabulary([RECEIVED, RATE], SUBJECTS, search_keys, aliases)


def workbook(build: Any) -> bytes:
    book = Workbook()
    build(book.active)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def read(content: bytes, settings: SpreadsheetSettings | None = None, **aliases: str) -> Any:
    return interpret(reader.read(content, max_rows=1000), words(**aliases), settings or SpreadsheetSettings())


# --- the reader ----------------------------------------------------------------------------------------------


def test_merged_cells_are_read_in_every_cell_of_their_range() -> None:
    def build(sheet: Any) -> None:
        sheet["A1"] = "Nhóm"
        sheet.merge_cells("A1:C1")
        sheet["A2"] = "Mã đơn vị"
        sheet.merge_cells("A2:A3")
        sheet["B3"] = 1

    book = reader.read(workbook(build), max_rows=10)
    assert book.sheets[0].rows == [(1, ["Nhóm", "Nhóm", "Nhóm"]), (2, ["Mã đơn vị"]), (3, ["Mã đơn vị", 1])]


def test_numbers_and_dates_are_read_as_excel_shows_them_with_their_row_numbers() -> None:
    def build(sheet: Any) -> None:
        sheet["B3"] = 0.955
        sheet["B3"].number_format = "0.0%"
        sheet["C3"] = datetime(2026, 11, 27)  # noqa: DTZ001 — Excel dates have no zone
        sheet["D3"] = "  Phu\u031bo\u031b\u0300ng  "  # decomposed, with spaces around
        sheet["B7"] = "#DIV/0!"

    rows = reader.read(workbook(build), max_rows=10).sheets[0].rows
    assert rows == [(3, [None, 95.5, datetime(2026, 11, 27), "Phường"]), (7, [None, "#DIV/0!"])]  # noqa: DTZ001


@pytest.mark.parametrize(
    ("content", "encoding", "delimiter"),
    [
        ("Mã;Kỳ\r\n1;2\r\n".encode("utf-8-sig"), "utf-8-sig", ";"),
        ("Mã,Kỳ\n1,2\n".encode(), "utf-8", ","),
        ("Mã\tKỳ\n1\t2\n".encode("utf-16"), "utf-16", "\t"),
        ('Mã;Giá trị\n1;"1.234,5"\n2;"2,5"\n'.encode(), "utf-8", ";"),  # commas inside values
        ('Mã,Giá trị\n1,"1.234,5"\n2,"2,5"\n'.encode(), "utf-8", ","),
    ],
)
def test_csv_encodings_and_delimiters(content: bytes, encoding: str, delimiter: str) -> None:
    book = reader.read(content, max_rows=10)
    assert (book.format, book.encoding, book.delimiter) == ("csv", encoding, delimiter)
    assert book.sheets[0].rows[0][1] == ["Mã", "Kỳ"] or book.sheets[0].rows[0][1][0] == "Mã"


@pytest.mark.parametrize(
    ("content", "code", "reason"),
    [
        (b"", "empty", ""),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "not_spreadsheet", "xls"),
        (b"%PDF-1.5", "not_spreadsheet", "pdf"),
        (b"\x1f\x8b\x08\x00", "not_spreadsheet", "archive"),
        (b"a;b\x00c", "not_spreadsheet", "binary"),
        (b"PK\x03\x04broken", "unreadable", "workbook"),
    ],
)
def test_what_the_content_says_a_file_is(content: bytes, code: str, reason: str) -> None:
    with pytest.raises(reader.ReadError) as caught:
        reader.read(content, max_rows=10)
    assert (caught.value.code, caught.value.reason) == (code, reason)


def test_row_limits_count_non_empty_rows() -> None:
    content = ("h\n" + "\n" * 50 + "1\n2\n3\n").encode()
    assert len(reader.read(content, max_rows=4).sheets[0].rows) == 4
    with pytest.raises(reader.ReadError) as caught:
        reader.read(content, max_rows=3)
    assert caught.value.code == "too_many_rows"

    def build(sheet: Any) -> None:
        for row in range(1, 6):
            sheet.cell(row=row, column=1, value=row)

    with pytest.raises(reader.ReadError) as caught:
        reader.read(workbook(build), max_rows=4)
    assert caught.value.code == "too_many_rows"


def test_column_letters() -> None:
    assert [reader.column_letter(index) for index in (0, 25, 26, 51, 701, 702)] == ["A", "Z", "AA", "AZ", "ZZ", "AAA"]


# --- headers, subjects, periods, values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Mã đơn vị", "ma don vi"),
        ("  MÃ ĐƠN VỊ (*)", "ma don vi"),
        ("Hồ sơ tiếp nhận (hồ sơ)", "ho so tiep nhan"),
        ("1. Hồ sơ tiếp nhận [hồ sơ]", "ho so tiep nhan"),
        ("hcc.ho_so_tiep_nhan", "hcc.ho_so_tiep_nhan"),
        ("Kỳ báo cáo:", "ky bao cao"),
    ],
)
def test_header_keys(text: str, key: str) -> None:
    assert header_key(text) == key


@pytest.mark.parametrize(
    ("cell", "period"),
    [
        ("27/11/2026", "2026-11-27"),
        ("Ngày 27/11/2026", "2026-11-27"),
        ("11/2026", "2026-11"),
        ("Tháng 11/2026", "2026-11"),
        ("tháng 11-2026", "2026-11"),
        ("Quý 4/2026", "2026-Q4"),
        ("Q4/2026", "2026-Q4"),
        ("Năm 2026", "2026"),
        (2026, "2026"),
        ("Năm học 2025-2026", "2025-2026"),
        ("2026-11", "2026-11"),
        (date(2026, 11, 27), "2026-11-27"),
        (datetime(2026, 11, 27), "2026-11-27"),  # noqa: DTZ001
    ],
)
def test_periods_as_officers_write_them(cell: Any, period: str) -> None:
    assert read_period(cell)[0] == period


@pytest.mark.parametrize("cell", ["32/11/2026", "13/2026", "tháng mười", "", True])
def test_what_is_not_a_period(cell: Any) -> None:
    with pytest.raises(ValueError):
        read_period(cell)


def test_a_date_on_the_first_day_stands_for_the_indicator_s_period() -> None:
    text, as_date = read_period(datetime(2026, 10, 1))  # noqa: DTZ001 — what Excel makes of "10/2026"
    assert period_for(text, as_date, "month") == "2026-10"
    assert period_for(text, as_date, "quarter") == "2026-Q4"
    assert period_for(text, as_date, "day") == "2026-10-01"
    assert period_for(text, as_date, "year") == "2026-10-01"  # not 1 January: left for the catalog to refuse
    text, as_date = read_period("01/10/2026")  # typed as text: the officer meant the day
    assert period_for(text, as_date, "month") == "2026-10-01"


def test_subjects_by_code_name_or_key_and_ambiguous_names() -> None:
    vocabulary = words()
    assert vocabulary.subject_by_code(16681).code == "16681"  # type: ignore[union-attr]
    assert vocabulary.subject_by_code(1234.0).code == "01234"  # type: ignore[union-attr]  # Excel dropped the zero
    assert vocabulary.subject_by_code("99999") is None
    assert [s.code for s in vocabulary.subjects_by_name("PHƯỜNG THÀNH VINH")] == ["16681"]
    assert [s.code for s in vocabulary.subjects_by_name("thanh vinh")] == ["16681"]
    assert [s.code for s in vocabulary.subjects_by_name("Toàn tỉnh")] == ["40"]
    assert [s.code for s in vocabulary.subjects_by_name("Hòa Bình")] == ["01234", "05678"]
    assert [s.code for s in vocabulary.subjects_by_name("Xã Hòa Bình")] == ["01234"]


def sheet_of(rows: list[list[Any]]) -> bytes:
    def build(sheet: Any) -> None:
        for row in rows:
            sheet.append(row)

    return workbook(build)


def test_a_wide_sheet_with_every_kind_of_bad_cell() -> None:
    parsed = read(
        sheet_of(
            [
                ["Đơn vị", "Kỳ", "Hồ sơ tiếp nhận", "Tỷ lệ hồ sơ đúng hạn (%)"],
                ["Hòa Bình", "11/2026", 1, 2],  # ambiguous name
                ["Thành Vinh", "11/2026", True, "#N/A"],  # a boolean, a formula error
                ["Toàn tỉnh", "11/2026", datetime(2026, 1, 1), "1,5"],  # noqa: DTZ001 — a date in a number cell
                ["Phường Thành Vinh", None, 1, 1],  # no period
            ]
        )
    )
    found = {(e.row, e.column): e.code for e in parsed.errors}
    assert found == {
        (2, "A"): "ambiguous_subject",
        (3, "C"): "not_a_number",
        (3, "D"): "formula_error",
        (4, "C"): "date_in_number",
        (5, "B"): "missing_period",
    }
    assert "01234 Xã Hòa Bình, 05678 Phường Hòa Bình" in parsed.errors[0].message_vi
    assert [(s.row, s.item["subject"], s.item["value"]) for s in parsed.items] == [(4, "40", 1.5)]


def test_empty_cells_may_be_skipped_by_setting() -> None:
    content = sheet_of([["Mã đơn vị", "Kỳ báo cáo", RECEIVED.code, RATE.code], ["16681", "11/2026", 5, None]])
    assert [e.code for e in read(content).errors] == ["empty_value"]
    parsed = read(content, SpreadsheetSettings(empty_cells="skip"))
    assert parsed.errors == [] and len(parsed.items) == 1


def test_aliases_name_the_agency_s_own_headers() -> None:
    content = sheet_of([["Xã", "Thời điểm", "Số HS nhận"], ["16681", "11/2026", 7]])
    with pytest.raises(LayoutError) as caught:
        read(content)
    assert caught.value.code == "no_columns"
    parsed = read(content, **{"Số HS nhận": RECEIVED.code})
    assert [(s.item["indicator"], s.item["value"]) for s in parsed.items] == [(RECEIVED.code, 7)]
    assert parsed.columns[0].role == "subject_name"  # a code in the name column is still found
    content = sheet_of([["Địa bàn báo cáo", "Kỳ", "Hồ sơ tiếp nhận"], ["Thành Vinh", "11/2026", 8]])
    parsed = read(content, **{"địa bàn báo cáo": "subject_name"})
    assert [(s.item["subject"], s.item["value"]) for s in parsed.items] == [("16681", 8)]


def test_a_data_row_is_not_taken_for_a_header_row() -> None:
    """ "Nam" (male) or "Xã" in a data cell reads like a header; a row naming a known subject is data."""
    parsed = read(
        sheet_of(
            [
                ["Mã đơn vị", "Giới", "Kỳ", "Hồ sơ tiếp nhận"],
                ["16681", "Nam", "11/2026", 3],
            ]
        )
    )
    assert parsed.header_rows == [1] and len(parsed.items) == 1


def test_no_header_in_a_sheet_of_numbers() -> None:
    with pytest.raises(LayoutError) as caught:
        read(sheet_of([[1, 2, 3], [4, 5, 6]]))
    assert caught.value.code == "no_header"


def test_the_first_sheet_that_fits_is_read() -> None:
    book = Workbook()
    book.active.title = "Ghi chú"
    book.active.append(["Nội dung", "Người lập"])
    data = book.create_sheet("Số liệu")
    data.append(["Mã đơn vị", "Kỳ báo cáo", "Hồ sơ tiếp nhận"])
    data.append(["16681", "11/2026", 3])
    buffer = io.BytesIO()
    book.save(buffer)
    parsed = read(buffer.getvalue())
    assert parsed.sheet == "Số liệu" and len(parsed.items) == 1
    with pytest.raises(reader.ReadError) as caught:
        reader.read(buffer.getvalue(), max_rows=10, sheet_name="Không có")
    assert (caught.value.code, caught.value.reason) == ("unreadable", "no_sheet")
    assert reader.read(buffer.getvalue(), max_rows=10, sheet_name="số liệu").sheets[0].name == "Số liệu"
