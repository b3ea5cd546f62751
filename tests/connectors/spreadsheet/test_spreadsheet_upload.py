"""Uploading an officer's own workbook: Vietnamese headers, a merged group cell, "1.234,5", dates as text and as
real dates, and bad rows — the preview names each bad row and column, the commit stores exactly the good values,
logs a run, audits the upload and keeps every rejected row in ingest_rejections. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from cityops.accounts.models import AuditEntry
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.clock import FrozenClock
from cityops.connectors.spreadsheet import service
from cityops.db.engine import Database
from cityops.feeds.models import EXPECTED, RECEIVED, FeedExpectation, FeedRun
from cityops.observations.models import IngestBatch, IngestRejection
from cityops.observations.periods import parse_period
from conftest import count_rows, csrf_header, login
from connectors.spreadsheet.sheets import (
    CHILDREN,
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
    xlsx,
)
from observations.observations_support import assert_english, assert_problem, assert_vietnamese

NOVEMBER = "2026-11"


@pytest.fixture
def places(database: Database) -> list[tuple[str, str]]:
    return communes(database, 6)


@pytest.fixture
def feed(database: Database, clock: FrozenClock, places: list[tuple[str, str]]) -> int:
    return make_feed(database, clock, subjects=[code for code, _name in places])


@pytest.fixture
def officer(client: TestClient, app: Any, personas: dict[str, str]) -> dict[str, str]:
    """officer_a (Sở Y tế) logged in; the CSRF header a page script sends."""
    login(client, "officer_a")
    return csrf_header(client, app)


def officer_workbook(places: list[tuple[str, str]]) -> bytes:
    """Rows 4–11 of the health centre's sheet: two good rows, then one fault per row, a duplicate, a signature."""
    (code1, name1), (code2, name2), (code3, name3), (code4, name4), (code5, _name5), _ = places
    rows = [
        [1, code1, name1, "11/2026", 120, 118, 98.3],  # row 4: good
        [2, code2, name2, date(2026, 11, 1), "1.250", "1.234,5", "99,7"],  # row 5: Excel made 11/2026 a date
        [3, None, "Xã Không Có Thật", "11/2026", 10, 9, 90],  # row 6: unknown commune
        [4, code3, name3, "11/2026", "mười hai", 5, -3],  # row 7: text in a number cell; a negative rate
        [5, code4, name4, "11/2026", None, 7, 50],  # row 8: an empty value
        [6, None, name1.upper(), "11/2026", 1, 2, 3],  # row 9: the same commune as row 4, by its name
        [7, code5, None, "32/11/2026", 1, 2, 3],  # row 10: no such day
        [None, None, "Người lập biểu", None, None, None, None],  # row 11: a signature, not data
    ]
    return xlsx(officer_sheet(rows))


def test_preview_names_each_bad_row_and_column_and_counts_the_good_ones(
    client: TestClient, officer: dict[str, str], feed: int, places: list[tuple[str, str]], database: Database
) -> None:
    preview = preview_ok(client, FEED, officer_workbook(places), headers=officer)

    assert preview["state"] == "preview"
    assert preview["format"] == "xlsx" and preview["sheet"] == "Báo cáo" and preview["layout"] == "wide"
    assert preview["header_rows"] == [2, 3]
    roles = {column["column"]: (column["role"], column.get("indicator")) for column in preview["columns"]}
    assert roles == {
        "B": ("subject", None),
        "C": ("subject_name", None),
        "D": ("period", None),
        "E": ("measure", CHILDREN),
        "F": ("measure", IMMUNISED),
        "G": ("measure", RATE),
    }
    assert preview["rows_read"] == 7  # the title, the headers and the signature are not data
    errors = errors_at(preview)
    assert set(errors) == {
        (6, "C"),
        (7, "E"),
        (7, "G"),
        (8, "E"),
        (9, "E"),
        (9, "F"),
        (9, "G"),
        (10, "D"),
    }, preview["errors"]
    assert errors[(6, "C")]["code"] == "unknown_subject"
    assert errors[(7, "E")]["code"] == "not_a_number"
    assert errors[(7, "G")]["code"] == "value_out_of_range"  # refused by the catalog (0–100 %), as ingest would
    assert errors[(8, "E")]["code"] == "empty_value"
    assert errors[(9, "E")]["code"] == "duplicate"
    assert errors[(10, "D")]["code"] == "invalid_period"
    for error in preview["errors"]:
        assert_vietnamese(error["message_vi"])
        # The English message quotes the sheet's Vietnamese header and cell; the rest is English.
        assert_english(error["message_en"].replace(error["header"], "").replace(str(error["value"]), ""))
        assert error["message_vi"].startswith(f"Dòng {error['row']}, cột {error['column']} (")
        assert error["message_en"].startswith(f"Row {error['row']}, column {error['column']} (")
    assert "“mười hai” không phải là số" in errors[(7, "E")]["message_vi"]
    assert errors[(7, "E")]["header"] == "Trẻ em tròn 1 tuổi trong kỳ"
    assert "Xã Không Có Thật" in errors[(6, "C")]["message_vi"]
    assert "dòng 4" in errors[(9, "F")]["message_vi"] and "row 4" in errors[(9, "F")]["message_en"]
    assert "32/11/2026" in errors[(10, "D")]["message_en"]

    assert preview["rows_with_errors"] == 5 and preview["good_rows"] == 2
    # Rows 4 and 5 give three values each, rows 7 and 8 two each; the catalog refuses one (-3 %): nine to store.
    assert preview["items_found"] == 10 and preview["good_items"] == 9
    assert preview["error_count"] == 8
    sample = {(item["row"], item["indicator"]): item for item in preview["sample"]}
    assert sample[(5, CHILDREN)]["value"] == 1250 and sample[(5, IMMUNISED)]["value"] == 1234.5
    assert sample[(5, RATE)]["value"] == 99.7
    assert sample[(5, CHILDREN)]["period"] == NOVEMBER  # the date 1/11/2026 read as the month
    assert sample[(4, CHILDREN)]["period"] == NOVEMBER
    # Nothing is stored by a preview.
    assert stored(database) == {}
    assert count_rows(database, "ingest_batches") == 0


def test_commit_stores_exactly_the_good_values_and_keeps_every_error(
    client: TestClient, officer: dict[str, str], feed: int, places: list[tuple[str, str]], database: Database
) -> None:
    preview = preview_ok(client, FEED, officer_workbook(places), headers=officer)
    answer = client.post(f"/api/v1/feeds/{FEED}/uploads/{preview['id']}/commit", headers=officer)
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert done["state"] == "committed" and done["committed_at"]
    assert done["result"]["accepted"] == 9 and done["result"]["created"] == 9
    assert done["result"]["rejected_count"] == 8

    code2 = places[1][0]
    assert stored(database) == _expected(places)

    # The same values through the read API.
    series = client.get(f"/api/v1/indicators/{RATE}/series", params={"subject": code2}, headers=officer)
    assert series.status_code == 200, series.text
    assert [(point["period"], point["value"]) for point in series.json()["items"]] == [(NOVEMBER, 99.7)]

    with database.reading() as session:
        batch = session.scalars(select(IngestBatch)).one()
        assert (batch.source, batch.feed_id, batch.accepted, batch.rejected) == ("spreadsheet", feed, 9, 8)
        run = session.scalars(select(FeedRun).where(FeedRun.feed_id == feed)).one()
        assert (run.trigger, run.status, run.accepted, run.rejected, run.batch_id) == (
            "upload",
            "partial",
            9,
            8,
            batch.id,
        )
        assert run.details["upload_id"] == preview["id"]
        assert run.message_vi.startswith("Dòng 6, cột C")
        rejections = session.scalars(select(IngestRejection).order_by(IngestRejection.id)).all()
        assert sorted((r.item_index, r.field[:1], r.code) for r in rejections) == sorted(
            (error["row"], error["column"], error["code"]) for error in preview["errors"]
        )
        assert {r.feed_id for r in rejections} == {feed}
        negative = next(r for r in rejections if r.item_index == 7 and r.field.startswith("G"))
        assert negative.indicator_id is not None and '"value":-3' in negative.item.replace(" ", "")
        assert negative.message_vi.startswith("Dòng 7, cột G")
        actions = [
            (entry.action, entry.actor, entry.entity_id)
            for entry in session.scalars(select(AuditEntry).where(AuditEntry.action.like("spreadsheet.%")))
        ]
    assert sorted(actions) == [
        ("spreadsheet.commit", "officer_a", str(preview["id"])),
        ("spreadsheet.upload", "officer_a", str(preview["id"])),
    ]

    again = client.get(f"/api/v1/feeds/{FEED}/uploads/{preview['id']}", headers=officer)
    assert again.status_code == 200 and again.json()["state"] == "committed"
    assert again.json()["run_id"] == run.id and again.json()["batch_id"] == batch.id


def _expected(places: list[tuple[str, str]]) -> dict[tuple[str, str, str], float]:
    (code1, _), (code2, _), (code3, _), (code4, _), _, _ = places
    return {
        (CHILDREN, code1, NOVEMBER): 120,
        (IMMUNISED, code1, NOVEMBER): 118,
        (RATE, code1, NOVEMBER): 98.3,
        (CHILDREN, code2, NOVEMBER): 1250,
        (IMMUNISED, code2, NOVEMBER): 1234.5,
        (RATE, code2, NOVEMBER): 99.7,
        (IMMUNISED, code3, NOVEMBER): 5,
        (IMMUNISED, code4, NOVEMBER): 7,
        (RATE, code4, NOVEMBER): 50,
    }


def test_committing_twice_answers_409_and_stores_nothing_more(
    client: TestClient, officer: dict[str, str], feed: int, places: list[tuple[str, str]], database: Database
) -> None:
    preview = preview_ok(client, FEED, officer_workbook(places), headers=officer)
    path = f"/api/v1/feeds/{FEED}/uploads/{preview['id']}"
    assert client.post(f"{path}/commit", headers=officer).status_code == 200
    problem = assert_problem(client.post(f"{path}/commit", headers=officer), 409, "spreadsheet_upload_closed")
    assert "đã gửi" in problem["message_vi"] and "committed" in problem["message_en"]
    assert_problem(client.delete(path, headers=officer), 409, "spreadsheet_upload_closed")
    assert count_rows(database, "ingest_batches") == 1
    assert count_rows(database, "feed_runs") == 1


def test_a_discarded_preview_stores_nothing_and_cannot_be_committed(
    client: TestClient, officer: dict[str, str], feed: int, places: list[tuple[str, str]], database: Database
) -> None:
    preview = preview_ok(client, FEED, officer_workbook(places), headers=officer)
    path = f"/api/v1/feeds/{FEED}/uploads/{preview['id']}"
    answer = client.delete(path, headers=officer)
    assert answer.status_code == 200 and answer.json()["state"] == "discarded"
    assert_problem(client.post(f"{path}/commit", headers=officer), 409, "spreadsheet_upload_closed")
    assert stored(database) == {}
    assert count_rows(database, "ingest_batches") == 0
    with database.reading() as session:
        actions = sorted(session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("spreadsheet.%"))))
    assert actions == ["spreadsheet.discard", "spreadsheet.upload"]


def test_an_unknown_upload_is_404(client: TestClient, officer: dict[str, str], feed: int) -> None:
    assert_problem(
        client.get(f"/api/v1/feeds/{FEED}/uploads/999999", headers=officer), 404, "spreadsheet_upload_not_found"
    )
    assert_problem(
        client.post(f"/api/v1/feeds/{FEED}/uploads/999999/commit", headers=officer), 404, "spreadsheet_upload_not_found"
    )
    assert client.get(f"/api/v1/feeds/{FEED}/uploads/0", headers=officer).status_code == 422
    assert client.get(f"/api/v1/feeds/{FEED}/uploads/{2**70}", headers=officer).status_code == 422


def test_an_identical_file_sent_again_is_flagged_and_changes_nothing(
    client: TestClient, officer: dict[str, str], feed: int, places: list[tuple[str, str]], database: Database
) -> None:
    content = officer_workbook(places)
    first = preview_ok(client, FEED, content, headers=officer)
    assert first["already_committed"] is None
    client.post(f"/api/v1/feeds/{FEED}/uploads/{first['id']}/commit", headers=officer)
    second = preview_ok(client, FEED, content, headers=officer)
    assert second["already_committed"]["id"] == first["id"]
    done = client.post(f"/api/v1/feeds/{FEED}/uploads/{second['id']}/commit", headers=officer).json()
    assert done["result"]["unchanged"] == 9 and done["result"]["created"] == 0
    assert stored(database) == _expected(places)
    listed = client.get(f"/api/v1/feeds/{FEED}/uploads", headers=officer).json()["uploads"]
    assert [item["id"] for item in listed] == [second["id"], first["id"]]


def test_the_catalog_check_happens_again_at_commit(
    client: TestClient, feed: int, places: list[tuple[str, str]], database: Database, clock: FrozenClock
) -> None:
    """A December value is refused while December has not started; the same preview committed once it has is
    accepted: the commit checks the items against the catalog and the clock of the commit, not of the preview."""
    officer = agency_key(database, clock)  # a key: a browser session would have expired over these days
    (code1, name1) = places[0]
    content = xlsx(officer_sheet([[1, code1, name1, "Tháng 12/2026", 1, 1, 100]]))
    preview = preview_ok(client, FEED, content, headers=officer)
    assert {error["code"] for error in preview["errors"]} == {"period_in_future"}
    assert preview["good_items"] == 0
    clock.advance(timedelta(days=5))  # 2 December 2026
    done = client.post(f"/api/v1/feeds/{FEED}/uploads/{preview['id']}/commit", headers=officer).json()
    assert done["result"]["accepted"] == 3 and done["error_count"] == 0
    assert stored(database)[(RATE, code1, "2026-12")] == 100


def test_two_commits_at_once_store_the_file_once(
    feed: int, places: list[tuple[str, str]], database: Database, clock: FrozenClock, client: TestClient
) -> None:
    """Two clicks on "Gửi dữ liệu" arriving together: one commit wins, the other answers 409; one batch, one run."""
    key = agency_key(database, clock)
    preview = preview_ok(client, FEED, officer_workbook(places), headers=key)
    principal = Principal(role="admin", label="admin", agency_ids=frozenset())
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def commit() -> None:
        start.wait()
        try:
            service.commit(database, principal, Actor("admin"), FEED, preview["id"], clock())
            outcomes.append("committed")
        except service.UploadRefused as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=commit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["committed", "spreadsheet_upload_closed"]
    assert count_rows(database, "ingest_batches") == 1 and count_rows(database, "feed_runs") == 1
    assert stored(database) == _expected(places)


def test_a_commit_marks_the_expected_period_received(
    client: TestClient, feed: int, places: list[tuple[str, str]], database: Database, clock: FrozenClock
) -> None:
    november = parse_period(NOVEMBER)
    with database.writing() as session:
        session.execute(
            insert(FeedExpectation).values(
                feed_id=feed,
                period_type="month",
                period_key=november.key,
                period_start=november.start,
                period_end=november.end,
                due_at=november.end + timedelta(days=5),
                late_at=november.end + timedelta(days=5),
                state=EXPECTED,
            )
        )
    key = agency_key(database, clock)
    preview = preview_ok(client, FEED, officer_workbook(places), headers=key)
    with database.reading() as session:
        assert session.scalar(select(FeedExpectation.state)) == EXPECTED  # a preview is not a delivery
    client.post(f"/api/v1/feeds/{FEED}/uploads/{preview['id']}/commit", headers=key)
    with database.reading() as session:
        expectation = session.scalars(select(FeedExpectation)).one()
        assert (expectation.state, expectation.on_time) == (RECEIVED, True)
