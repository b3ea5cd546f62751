"""Files as they come: CSV in UTF-8 with a BOM and ";" (Vietnamese Excel), in Windows-1258, with "," and quoted
numbers; dates written as text and as real dates; the long layout; and files that are not spreadsheets at all or
cannot be read, each refused whole with a clear problem (nothing stored). SQLite and PostgreSQL."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityops.clock import FrozenClock
from cityops.connectors.spreadsheet.connector import MAX_ROWS
from cityops.db.engine import Database
from cityops.web.app import create_app
from conftest import Backend, count_rows
from connectors.spreadsheet.sheets import (
    CHILDREN,
    DAILY_FEED,
    DENGUE,
    FEED,
    IMMUNISED,
    RATE,
    agency_key,
    communes,
    errors_at,
    make_feed,
    officer_sheet,
    preview_ok,
    stored,
    upload,
    xlsx,
)
from observations.observations_support import assert_problem

NOVEMBER = "2026-11"


@pytest.fixture
def places(database: Database) -> list[tuple[str, str]]:
    return communes(database, 4)


@pytest.fixture
def key(database: Database, clock: FrozenClock, places: list[tuple[str, str]]) -> dict[str, str]:
    """Agency A's monthly feed and daily feed, and its key."""
    codes = [code for code, _name in places]
    make_feed(database, clock, subjects=codes)
    make_feed(database, clock, code=DAILY_FEED, indicators=[DENGUE], subjects=codes, cadence="daily by 17:00")
    return agency_key(database, clock)


def commit(client: TestClient, feed: str, upload_id: int, key: dict[str, str]) -> dict[str, Any]:
    answer = client.post(f"/api/v1/feeds/{feed}/uploads/{upload_id}/commit", headers=key)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def cp1258(text: str) -> bytes:
    """Text as Windows-1258 holds it: ư, ơ, â, ê, ô, ă, đ precomposed; the five tone marks as combining characters."""
    tones = "\u0300\u0301\u0303\u0309\u0323"
    out = bytearray()
    for letter in unicodedata.normalize("NFC", text):
        decomposed = unicodedata.normalize("NFD", letter)
        head = unicodedata.normalize("NFC", "".join(mark for mark in decomposed if mark not in tones))
        out += (head + "".join(mark for mark in decomposed if mark in tones)).encode("cp1258")
    return bytes(out)


# --- CSV -------------------------------------------------------------------------------------------------


def test_csv_in_utf8_with_bom_and_semicolons_as_vietnamese_excel_saves_it(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]], database: Database
) -> None:
    (code1, name1), (code2, name2), (code3, name3), _ = places
    text = (
        "Mã đơn vị;Tên đơn vị;Kỳ báo cáo;Trẻ em tròn 1 tuổi trong kỳ (trẻ);"
        "Trẻ em dưới 1 tuổi được tiêm chủng đầy đủ (trẻ);Tỷ lệ trẻ em dưới 1 tuổi được tiêm chủng đầy đủ (%)\r\n"
        f"{code1};{name1};11/2026;1.234;1.200;97,2\r\n"
        f";{name2};Tháng 11/2026;2.000,5;1.990;99,5\r\n"  # by name only
        f"{code3};{name3};11/2026;12;-;abc\r\n"
    )
    preview = preview_ok(client, FEED, text.encode("utf-8-sig"), name="tiem_chung.csv", headers=key)
    assert (preview["format"], preview["encoding"], preview["delimiter"]) == ("csv", "utf-8-sig", ";")
    errors = errors_at(preview)
    assert set(errors) == {(4, "E"), (4, "F")}
    assert errors[(4, "E")]["message_vi"].startswith("Dòng 4, cột E (Trẻ em dưới 1 tuổi được tiêm chủng đầy đủ):")
    assert "“abc” không phải là số" in errors[(4, "F")]["message_vi"]
    commit(client, FEED, preview["id"], key)
    assert stored(database) == {
        (CHILDREN, code1, NOVEMBER): 1234,
        (IMMUNISED, code1, NOVEMBER): 1200,
        (RATE, code1, NOVEMBER): 97.2,
        (CHILDREN, code2, NOVEMBER): 2000.5,
        (IMMUNISED, code2, NOVEMBER): 1990,
        (RATE, code2, NOVEMBER): 99.5,
        (CHILDREN, code3, NOVEMBER): 12,
    }


def test_csv_in_windows_1258_with_decomposed_letters_and_commas(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]], database: Database
) -> None:
    """Older Excel saves Vietnamese CSV in Windows-1258 (tones as combining marks); the numbers are quoted."""
    (code1, name1), *_ = places
    text = (
        "Mã đơn vị,Tên đơn vị,Kỳ báo cáo,Trẻ em tròn 1 tuổi trong kỳ,"
        "Tỷ lệ trẻ em dưới 1 tuổi được tiêm chủng đầy đủ\r\n"
        f'{code1},{name1},11/2026,"1.234","97,5"\r\n'
    )
    content = cp1258(text)
    preview = preview_ok(client, FEED, content, name="cu.csv", headers=key)
    assert (preview["encoding"], preview["delimiter"]) == ("cp1258", ",")
    assert preview["errors"] == [] and preview["good_items"] == 2
    assert [column["header"] for column in preview["columns"]][:3] == ["Mã đơn vị", "Tên đơn vị", "Kỳ báo cáo"]
    commit(client, FEED, preview["id"], key)
    assert stored(database) == {(CHILDREN, code1, NOVEMBER): 1234, (RATE, code1, NOVEMBER): 97.5}


def test_a_file_sent_as_the_body_is_read_too(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]]
) -> None:
    (code1, _name1), *_ = places
    body = f"ma don vi;ky bao cao;{CHILDREN}\n{code1};11/2026;5\n".encode()
    answer = client.post(
        f"/api/v1/feeds/{FEED}/uploads", content=body, params={"file_name": "he_thong.csv"}, headers=key
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["file_name"] == "he_thong.csv" and answer.json()["good_items"] == 1


# --- dates and layouts ---------------------------------------------------------------------------------------


def test_a_date_written_as_text_and_as_a_real_date_give_the_same_day(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]], database: Database
) -> None:
    (code1, name1), (code2, name2), (code3, name3), (code4, name4) = places

    def build(sheet: Any) -> None:
        sheet.append(["Mã xã", "Tên xã", "Ngày", "Ca mắc sốt xuất huyết Dengue (ca)"])
        sheet.append([code1, name1, "27/11/2026", 3])
        sheet.append([code2, name2, datetime(2026, 11, 27), 4])  # noqa: DTZ001 — Excel dates have no zone
        sheet.append([code3, name3, "Ngày 26/11/2026", 5])
        sheet.append([int(code4), name4, "2026-11-25", 6])  # the code as a number
        sheet["C3"].number_format = "dd/mm/yyyy"

    preview = preview_ok(client, DAILY_FEED, xlsx(build), headers=key)
    assert preview["errors"] == []
    commit(client, DAILY_FEED, preview["id"], key)
    assert stored(database) == {
        (DENGUE, code1, "2026-11-27"): 3,
        (DENGUE, code2, "2026-11-27"): 4,
        (DENGUE, code3, "2026-11-26"): 5,
        (DENGUE, code4, "2026-11-25"): 6,
    }


def test_a_day_sent_for_a_monthly_indicator_is_named_as_such(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]]
) -> None:
    (code1, name1), *_ = places
    content = xlsx(officer_sheet([[1, code1, name1, "27/11/2026", 1, 1, 100]]))
    preview = preview_ok(client, FEED, content, headers=key)
    assert {error["code"] for error in preview["errors"]} == {"period_type_mismatch"}
    error = preview["errors"][0]
    assert error["message_vi"].startswith("Dòng 4, cột E") and "theo tháng" in error["message_vi"]


def test_the_long_layout_one_value_per_row(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]], database: Database
) -> None:
    (code1, _name1), (code2, _), *_ = places

    def build(sheet: Any) -> None:
        sheet.append(["Mã chỉ tiêu", "Mã đơn vị", "Kỳ báo cáo", "Giá trị", "Lý do không có số liệu"])
        sheet.append([CHILDREN, code1, "11/2026", "1.234,5", None])
        sheet.append(["Tỷ lệ trẻ em dưới 1 tuổi được tiêm chủng đầy đủ", code1, "11/2026", 98, None])  # by name
        sheet.append([IMMUNISED, code2, "11/2026", None, "Trạm y tế chưa tổng hợp"])  # no value, with a reason
        sheet.append(["yte.khong_co", code2, "11/2026", 1, None])
        sheet.append([IMMUNISED, code2, "11/2026", None, None])

    preview = preview_ok(client, FEED, xlsx(build), headers=key)
    assert preview["layout"] == "long"
    assert {(error["row"], error["column"], error["code"]) for error in preview["errors"]} == {
        (5, "A", "unknown_indicator"),
        (6, "D", "empty_value"),
    }
    commit(client, FEED, preview["id"], key)
    assert stored(database) == {
        (CHILDREN, code1, NOVEMBER): 1234.5,
        (RATE, code1, NOVEMBER): 98,
        (IMMUNISED, code2, NOVEMBER): None,
    }


def test_total_rows_and_unknown_columns_are_left_out_and_said(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]], database: Database
) -> None:
    (code1, name1), (code2, name2), *_ = places

    def build(sheet: Any) -> None:
        sheet.append(
            ["STT", "Mã đơn vị", "Tên đơn vị", "Kỳ báo cáo", CHILDREN, "Số điểm tiêm", "Ghi chú", "dulich.doanh_thu"]
        )
        sheet.append([1, code1, name1, "11/2026", 10, 3, "đủ", 1])
        sheet.append([2, code2, name2, "11/2026", 20, 4, None, 2])
        sheet.append([None, None, "Tổng cộng", "11/2026", 30, 7, None, 3])

    preview = preview_ok(client, FEED, xlsx(build), headers=key)
    assert preview["errors"] == [] and preview["rows_read"] == 2
    ignored = {column["column"]: column["reason"] for column in preview["ignored_columns"]}
    assert ignored == {"A": "ignore", "F": "unknown", "G": "ignore", "H": "not_in_feed"}
    assert [note["row"] for note in preview["notes"]] == [4]
    assert "tổng" in preview["notes"][0]["message_vi"]
    commit(client, FEED, preview["id"], key)
    assert stored(database) == {(CHILDREN, code1, NOVEMBER): 10, (CHILDREN, code2, NOVEMBER): 20}


def test_a_percentage_cell_is_read_as_excel_shows_it(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]], database: Database
) -> None:
    (code1, name1), *_ = places

    def build(sheet: Any) -> None:
        officer_sheet([[1, code1, name1, "11/2026", 200, 191, 0.955]])(sheet)
        sheet["G4"].number_format = "0.0%"  # shown 95,5 %

    preview = preview_ok(client, FEED, xlsx(build), headers=key)
    commit(client, FEED, preview["id"], key)
    assert stored(database)[(RATE, code1, NOVEMBER)] == 95.5


# --- files refused whole --------------------------------------------------------------------------------------


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), ".xls"),
        (
            _zip(
                {"[Content_Types].xml": b"<Types><Default ContentType='wordprocessingml.document.main+xml'/></Types>"}
            ),
            "Word",
        ),
        (_zip({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x/>"}), ".ods"),
        (_zip({"readme.txt": b"hello"}), "Word"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "ảnh"),
        (bytes(range(256)) * 4, "nhị phân"),
    ],
    ids=["pdf", "xls", "docx", "ods", "zip", "png", "binary"],
)
def test_what_is_not_a_spreadsheet_is_refused_by_its_content(
    client: TestClient, key: dict[str, str], database: Database, content: bytes, needle: str
) -> None:
    # Named .xlsx: the name does not decide, the content does.
    problem = assert_problem(
        upload(client, FEED, content, name="bao_cao.xlsx", headers=key), 415, "spreadsheet_not_spreadsheet"
    )
    assert needle in problem["message_vi"]
    assert count_rows(database, "spreadsheet_uploads") == 0


def test_a_damaged_workbook_is_unreadable(
    client: TestClient, key: dict[str, str], places: list[tuple[str, str]]
) -> None:
    (code1, name1), *_ = places
    good = xlsx(officer_sheet([[1, code1, name1, "11/2026", 1, 1, 1]]))
    damaged = good[: len(good) // 2]
    assert_problem(upload(client, FEED, damaged, headers=key), 422, "spreadsheet_unreadable")
    broken_sheet = _zip(
        {
            "[Content_Types].xml": b'<Types><Override ContentType="application/vnd.openxmlformats-officedocument.'
            b'spreadsheetml.sheet.main+xml" PartName="/xl/workbook.xml"/></Types>',
            "xl/workbook.xml": b"<not-a-workbook",
        }
    )
    assert_problem(upload(client, FEED, broken_sheet, headers=key), 422, "spreadsheet_unreadable")


@pytest.mark.parametrize(
    "content", [b"", b"\xef\xbb\xbf", b" \r\n \r\n", b";;;\r\n;;\r\n"], ids=["nothing", "bom", "blank", "cells"]
)
def test_an_empty_file_is_refused(client: TestClient, key: dict[str, str], content: bytes) -> None:
    assert_problem(upload(client, FEED, content, name="trong.csv", headers=key), 422, "spreadsheet_empty")


def test_an_empty_workbook_is_refused(client: TestClient, key: dict[str, str]) -> None:
    assert_problem(upload(client, FEED, xlsx(lambda sheet: None), headers=key), 422, "spreadsheet_empty")


def test_no_header_row(client: TestClient, key: dict[str, str]) -> None:
    content = b"16681;11/2026;5\n16690;11/2026;6\n"
    problem = assert_problem(upload(client, FEED, content, name="so.csv", headers=key), 422, "spreadsheet_no_header")
    assert "30" in problem["message_vi"]


def test_no_recognisable_columns_lists_what_was_found_and_what_is_missing(
    client: TestClient, key: dict[str, str]
) -> None:
    content = b"Ho va ten;So dien thoai;Dia chi\nNguyen Van A;0912;Vinh\n"
    problem = assert_problem(
        upload(client, FEED, content, name="danh_ba.csv", headers=key), 422, "spreadsheet_no_columns"
    )
    assert "“Ho va ten”" in problem["message_vi"] and "kỳ báo cáo" in problem["message_vi"]
    assert "reporting period" in problem["message_en"] and "“So dien thoai”" in problem["message_en"]
    # A header that names the units and the period but no indicator of the feed.
    content = "Mã đơn vị;Kỳ báo cáo;Doanh thu du lịch\n16681;11/2026;5\n".encode()
    answer = upload(client, FEED, content, name="sai.csv", headers=key)
    assert answer.status_code == 422 and answer.json()["code"] == "spreadsheet_no_columns"
    problem = answer.json()
    assert "các cột chỉ tiêu" in problem["message_vi"] and "“Doanh thu du lịch”" in problem["message_vi"]
    assert "indicator columns" in problem["message_en"] and "Ky bao cao" not in problem["message_en"]


def test_too_many_rows(client: TestClient, key: dict[str, str], database: Database) -> None:
    lines = ["Mã đơn vị;Kỳ báo cáo;" + CHILDREN] + [f"16681;11/2026;{n}" for n in range(MAX_ROWS + 1)]
    content = "\n".join(lines).encode()
    problem = assert_problem(
        upload(client, FEED, content, name="lon.csv", headers=key), 413, "spreadsheet_too_many_rows"
    )
    assert f"{MAX_ROWS}" in problem["message_vi"]
    assert count_rows(database, "spreadsheet_uploads") == 0


def test_no_file_in_the_form(client: TestClient, key: dict[str, str]) -> None:
    answer = client.post(
        f"/api/v1/feeds/{FEED}/uploads", data={"other": "x"}, files={"x": ("a.txt", b"1")}, headers=key
    )
    assert_problem(answer, 422, "spreadsheet_file_missing")


def test_a_file_over_the_body_limit_is_413(backend: Backend, clock: FrozenClock, key: dict[str, str]) -> None:
    settings = backend.settings.model_copy(update={"max_body_bytes": 2000})
    with TestClient(create_app(settings, clock=clock, database=backend.database)) as small:
        content = ("Mã đơn vị;Kỳ báo cáo;" + CHILDREN + "\n" + "16681;11/2026;1\n" * 200).encode()
        assert_problem(upload(small, FEED, content, name="a.csv", headers=key), 413, "body_too_large")
