"""Who may use a feed's template and uploads: its own agency's officers and keys, administrators and operators.
Agency B cannot see agency A's feed at all (404, as if it did not exist); roles that do not supply data are
refused; a browser session needs its CSRF token to change anything. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import count_rows, csrf_header, login
from connectors.spreadsheet.sheets import (
    FEED,
    OTHER_AGENCY,
    agency_key,
    communes,
    make_feed,
    officer_sheet,
    preview_ok,
    stored,
    upload,
    xlsx,
)
from observations.observations_support import assert_problem


@pytest.fixture
def workbook(database: Database, clock: FrozenClock) -> bytes:
    """Agency A's feed and a good one-row workbook for it."""
    code, name = communes(database, 1)[0]
    make_feed(database, clock, subjects=[code])
    return xlsx(officer_sheet([[1, code, name, "11/2026", 10, 9, 90]]))


def paths(upload_id: int) -> list[tuple[str, str]]:
    base = f"/api/v1/feeds/{FEED}"
    return [
        ("GET", f"{base}/template.xlsx"),
        ("GET", f"{base}/template.csv"),
        ("GET", f"{base}/uploads"),
        ("GET", f"{base}/uploads/{upload_id}"),
        ("POST", f"{base}/uploads/{upload_id}/commit"),
        ("DELETE", f"{base}/uploads/{upload_id}"),
    ]


@pytest.fixture
def made(client: TestClient, database: Database, clock: FrozenClock, workbook: bytes) -> int:
    """An upload in preview, made with agency A's key."""
    return int(preview_ok(client, FEED, workbook, headers=agency_key(database, clock))["id"])


def test_agency_b_cannot_see_or_upload_to_agency_a_feed(
    client: TestClient, app: Any, personas: dict[str, str], workbook: bytes, made: int, database: Database
) -> None:
    login(client, "officer_b")
    headers = csrf_header(client, app)
    assert_problem(upload(client, FEED, workbook, headers=headers), 404, "spreadsheet_feed_not_found")
    for method, path in paths(made):
        problem = assert_problem(client.request(method, path, headers=headers), 404, "spreadsheet_feed_not_found")
        assert FEED in problem["message_vi"]
    assert count_rows(database, "spreadsheet_uploads") == 1 and stored(database) == {}


def test_agency_b_key_cannot_either(
    client: TestClient, database: Database, clock: FrozenClock, workbook: bytes, made: int
) -> None:
    headers = agency_key(database, clock, OTHER_AGENCY)
    assert_problem(upload(client, FEED, workbook, headers=headers), 404, "spreadsheet_feed_not_found")
    for method, path in paths(made):
        assert_problem(client.request(method, path, headers=headers), 404, "spreadsheet_feed_not_found")
    assert stored(database) == {}


@pytest.mark.parametrize("username", ["officer_a", "admin", "operator"])
def test_own_officer_administrators_and_operators_may_upload_and_commit(
    client: TestClient, app: Any, personas: dict[str, str], workbook: bytes, database: Database, username: str
) -> None:
    login(client, username)
    headers = csrf_header(client, app)
    assert client.get(f"/api/v1/feeds/{FEED}/template.xlsx").status_code == 200
    preview = preview_ok(client, FEED, workbook, headers=headers)
    assert preview["uploaded_by"] == username
    answer = client.post(f"/api/v1/feeds/{FEED}/uploads/{preview['id']}/commit", headers=headers)
    assert answer.status_code == 200, answer.text
    assert len(stored(database)) == 3


def test_agency_a_key_needs_no_csrf_token(
    client: TestClient, database: Database, clock: FrozenClock, workbook: bytes
) -> None:
    headers = agency_key(database, clock)
    preview = preview_ok(client, FEED, workbook, headers=headers)
    assert preview["uploaded_by"].startswith("key:")
    assert client.post(f"/api/v1/feeds/{FEED}/uploads/{preview['id']}/commit", headers=headers).status_code == 200
    assert len(stored(database)) == 3


@pytest.mark.parametrize("username", ["leader", "citizen"])
def test_roles_that_do_not_supply_data_are_refused(
    client: TestClient, app: Any, personas: dict[str, str], workbook: bytes, made: int, username: str
) -> None:
    login(client, username)
    headers = csrf_header(client, app)
    assert_problem(upload(client, FEED, workbook, headers=headers), 403, "forbidden")
    for method, path in paths(made):
        assert_problem(client.request(method, path, headers=headers), 403, "forbidden")


def test_anonymous_is_401(client: TestClient, workbook: bytes, made: int) -> None:
    assert_problem(upload(client, FEED, workbook), 401, "unauthenticated")
    for method, path in paths(made):
        assert_problem(client.request(method, path), 401, "unauthenticated")


def test_a_session_without_its_csrf_token_changes_nothing(
    client: TestClient, personas: dict[str, str], workbook: bytes, made: int, database: Database
) -> None:
    login(client, "officer_a")
    assert_problem(upload(client, FEED, workbook), 403, "csrf_failed")
    assert_problem(client.post(f"/api/v1/feeds/{FEED}/uploads/{made}/commit"), 403, "csrf_failed")
    assert_problem(client.delete(f"/api/v1/feeds/{FEED}/uploads/{made}"), 403, "csrf_failed")
    assert client.get(f"/api/v1/feeds/{FEED}/uploads/{made}").json()["state"] == "preview"
    assert count_rows(database, "spreadsheet_uploads") == 1 and stored(database) == {}


def test_an_upload_belongs_to_its_feed(
    client: TestClient, database: Database, clock: FrozenClock, workbook: bytes, made: int
) -> None:
    """An upload of one feed is not reachable through another feed of the same agency."""
    make_feed(database, clock, code="yte_khac", subjects=[communes(database, 1)[0][0]])
    headers = agency_key(database, clock)
    other = f"/api/v1/feeds/yte_khac/uploads/{made}"
    assert_problem(client.get(other, headers=headers), 404, "spreadsheet_upload_not_found")
    assert_problem(client.post(f"{other}/commit", headers=headers), 404, "spreadsheet_upload_not_found")
    assert stored(database) == {}


def test_a_feed_of_another_kind_takes_no_files(
    client: TestClient, database: Database, clock: FrozenClock, workbook: bytes
) -> None:
    make_feed(database, clock, code="yte_push", kind="push", cadence="", coverage="province")
    headers = agency_key(database, clock)
    problem = assert_problem(upload(client, "yte_push", workbook, headers=headers), 409, "spreadsheet_wrong_kind")
    assert "push" in problem["message_en"]
    assert_problem(client.get("/api/v1/feeds/yte_push/template.xlsx", headers=headers), 409, "spreadsheet_wrong_kind")
    assert_problem(
        client.get("/api/v1/feeds/khong_co/template.xlsx", headers=headers), 404, "spreadsheet_feed_not_found"
    )
