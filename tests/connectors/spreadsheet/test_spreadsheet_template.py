"""The template of a feed: Vietnamese headers with a merged group cell, the subjects to cover and the period filled
in, cells formatted, instructions in Vietnamese and English — and what it makes, filled in and uploaded, is
accepted without a single error, as XLSX and as CSV. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.feeds.models import LATE, FeedExpectation
from cityops.geo.models import Subject
from cityops.observations.periods import parse_period
from connectors.spreadsheet.sheets import (
    CHILDREN,
    DAILY_FEED,
    DENGUE,
    FEED,
    IMMUNISED,
    MONTHLY,
    RATE,
    XLSX,
    agency_key,
    communes,
    make_feed,
    preview_ok,
    read_xlsx,
    stored,
)
from observations.observations_support import assert_problem

HEADERS = [
    "Mã đơn vị",
    "Tên đơn vị",
    "Kỳ báo cáo",
    "Trẻ em tròn 1 tuổi trong kỳ (trẻ)",
    "Trẻ em dưới 1 tuổi được tiêm chủng đầy đủ (trẻ)",
    "Tỷ lệ trẻ em dưới 1 tuổi được tiêm chủng đầy đủ (%)",
]


@pytest.fixture
def key(database: Database, clock: FrozenClock) -> dict[str, str]:
    return agency_key(database, clock)


def province_communes(database: Database) -> list[tuple[str, str]]:
    with database.reading() as session:
        province_id = session.scalar(select(Subject.id).where(Subject.code == "40"))
        rows = session.execute(
            select(Subject.code, Subject.name_vi).where(Subject.parent_id == province_id).order_by(Subject.code)
        )
        return [(code, name) for code, name in rows]


def template(client: TestClient, key: dict[str, str], feed: str = FEED, fmt: str = "xlsx", **params: str) -> bytes:
    answer = client.get(f"/api/v1/feeds/{feed}/template.{fmt}", headers=key, params=params)
    assert answer.status_code == 200, answer.text
    return answer.content


def test_the_xlsx_template_has_vietnamese_headers_the_subjects_and_the_period(
    client: TestClient, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    places = communes(database, 3)
    make_feed(database, clock, subjects=[code for code, _name in places])
    answer = client.get(f"/api/v1/feeds/{FEED}/template.xlsx", headers=key)
    assert answer.headers["content-type"] == XLSX
    assert f'filename="mau-{FEED}-2026-11.xlsx"' in answer.headers["content-disposition"]
    workbook = read_xlsx(answer.content)
    assert workbook.sheetnames == ["Số liệu", "Hướng dẫn"]
    sheet = workbook["Số liệu"]
    assert "Tháng 11/2026" in sheet["A1"].value
    assert [sheet.cell(row=2, column=c).value for c in range(1, 5)] == [*HEADERS[:3], "Số liệu các chỉ tiêu"]
    assert [sheet.cell(row=3, column=c).value for c in range(4, 7)] == HEADERS[3:]
    assert [sheet.cell(row=4, column=c).value for c in range(1, 7)] == ["subject", "subject_name", "period", *MONTHLY]
    merged = {str(cell_range) for cell_range in sheet.merged_cells.ranges}
    assert {"A2:A3", "B2:B3", "C2:C3", "D2:F2", "A1:F1"} <= merged
    rows = [[sheet.cell(row=r, column=c).value for c in range(1, 7)] for r in range(5, 8)]
    assert rows == [[code, name, "Tháng 11/2026", None, None, None] for code, name in places]
    assert sheet.max_row == 7
    assert sheet["A5"].number_format == "@" and sheet["C5"].number_format == "@"  # codes and periods stay text
    assert sheet["D5"].number_format == "General"
    assert sheet.freeze_panes == "D5"
    rules = {str(rule.sqref): rule for rule in sheet.data_validations.dataValidation}
    assert rules["F5:F7"].type == "decimal" and float(rules["F5:F7"].formula2) == 100  # a rate: 0–100
    assert float(rules["D5:D7"].formula1) == 0
    help_text = " ".join(
        str(cell.value) for row in workbook["Hướng dẫn"].iter_rows() for cell in row if cell.value is not None
    )
    assert "Nhập số kiểu Việt Nam (1.234,5)" in help_text and "Enter numbers the Vietnamese way" in help_text
    assert RATE in help_text and "Sở Y tế" in help_text


def test_the_filled_in_xlsx_template_round_trips_without_an_error(
    client: TestClient, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    """Every commune of the province, three indicators: the officer fills each cell (one the Vietnamese way, as
    text) and uploads the file as it is."""
    make_feed(database, clock, coverage="communes")
    workbook = read_xlsx(template(client, key))
    sheet = workbook["Số liệu"]
    places = province_communes(database)
    assert sheet.max_row == 4 + len(places) == 134
    expected = {}
    for offset, (code, _name) in enumerate(places):
        row = 5 + offset
        assert sheet.cell(row=row, column=1).value == code
        children, immunised = 100 + offset, 90 + offset
        sheet.cell(row=row, column=4, value=children)
        sheet.cell(row=row, column=5, value=f"{immunised:,}".replace(",", ".") if offset % 2 else immunised)
        sheet.cell(row=row, column=6, value=round(immunised * 100 / children, 1))
        expected.update(
            {
                (CHILDREN, code, "2026-11"): children,
                (IMMUNISED, code, "2026-11"): immunised,
                (RATE, code, "2026-11"): round(immunised * 100 / children, 1),
            }
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    preview = preview_ok(client, FEED, buffer.getvalue(), name="mau-da-dien.xlsx", headers=key)
    assert preview["errors"] == [] and preview["ignored_columns"] == []
    assert preview["header_rows"] == [2, 3, 4]
    assert preview["rows_read"] == preview["good_rows"] == 130
    assert preview["good_items"] == 390
    done = client.post(f"/api/v1/feeds/{FEED}/uploads/{preview['id']}/commit", headers=key).json()
    assert done["result"]["accepted"] == 390 and done["result"]["rejected_count"] == 0
    assert stored(database) == expected


def test_the_filled_in_csv_template_round_trips_without_an_error(
    client: TestClient, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    places = communes(database, 5)
    make_feed(database, clock, subjects=[code for code, _name in places])
    content = template(client, key, fmt="csv")
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == HEADERS and rows[1] == ["subject", "subject_name", "period", *MONTHLY]
    assert [row[:3] for row in rows[2:]] == [[code, name, "Tháng 11/2026"] for code, name in places]
    for row in rows[2:]:
        row[3:] = ["1.234", "1.200", "97,2"]
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    preview = preview_ok(client, FEED, buffer.getvalue().encode("utf-8-sig"), name="mau.csv", headers=key)
    assert preview["errors"] == [] and preview["good_items"] == 15
    client.post(f"/api/v1/feeds/{FEED}/uploads/{preview['id']}/commit", headers=key)
    assert {value for value in stored(database).values()} == {1234, 1200, 97.2}
    assert len(stored(database)) == 15


def test_the_period_asked_for_or_the_one_due(
    client: TestClient, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    code, _name = communes(database, 1)[0]
    feed_id = make_feed(database, clock, subjects=[code])
    csv_period = lambda content: content.decode("utf-8-sig").splitlines()[2].split(";")[2]  # noqa: E731
    assert csv_period(template(client, key, fmt="csv")) == "Tháng 11/2026"
    assert csv_period(template(client, key, fmt="csv", period="10/2026")) == "Tháng 10/2026"
    assert csv_period(template(client, key, fmt="csv", period="Quý 3/2026")) == "Quý 3/2026"
    problem = assert_problem(
        client.get(f"/api/v1/feeds/{FEED}/template.csv", headers=key, params={"period": "13/2026"}),
        422,
        "spreadsheet_invalid_period",
    )
    assert "“13/2026”" in problem["message_vi"]
    # On 2 December, November's figures are due on the 5th: the template is November's.
    clock.advance(timedelta(days=5))
    assert csv_period(template(client, key, fmt="csv")) == "Tháng 11/2026"
    # A late period comes first.
    october = parse_period("2026-10")
    with database.writing() as session:
        session.execute(
            insert(FeedExpectation).values(
                feed_id=feed_id,
                period_type="month",
                period_key=october.key,
                period_start=october.start,
                period_end=october.end,
                due_at=october.end + timedelta(days=5),
                late_at=october.end + timedelta(days=5),
                state=LATE,
            )
        )
    assert csv_period(template(client, key, fmt="csv")) == "Tháng 10/2026"


def test_a_daily_feed_template_names_the_day(
    client: TestClient, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    places = communes(database, 2)
    make_feed(
        database,
        clock,
        code=DAILY_FEED,
        indicators=[DENGUE],
        subjects=[code for code, _ in places],
        cadence="daily by 17:00",
    )
    rows = template(client, key, DAILY_FEED, "csv").decode("utf-8-sig").splitlines()
    assert rows[0].split(";")[3] == "Ca mắc sốt xuất huyết Dengue (ca)"
    assert [row.split(";")[2] for row in rows[2:]] == ["27/11/2026", "27/11/2026"]
    filled = "\r\n".join([*rows[:2], *(row + "3" for row in rows[2:])]).encode("utf-8-sig")
    preview = preview_ok(client, DAILY_FEED, filled, name="sxh.csv", headers=key)
    assert preview["errors"] == []
    client.post(f"/api/v1/feeds/{DAILY_FEED}/uploads/{preview['id']}/commit", headers=key)
    assert stored(database) == {(DENGUE, code, "2026-11-27"): 3 for code, _ in places}
