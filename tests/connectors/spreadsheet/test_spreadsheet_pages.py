"""The upload page without JavaScript (plain forms, a redirect after each POST) and with htmx (the preview panel
replaced in place): an officer sees the template links, the preview with each row's error, then the outcome.
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import count_rows, login
from connectors.spreadsheet.sheets import FEED, XLSX, communes, make_feed, officer_sheet, stored, xlsx

PAGE = f"/feeds/{FEED}/upload"


@pytest.fixture
def workbook(database: Database, clock: FrozenClock) -> bytes:
    """The feed and a workbook with one good row (row 4) and one text in a number cell (row 5, column E)."""
    (code1, name1), (code2, name2) = communes(database, 2)
    make_feed(database, clock, subjects=[code1, code2])
    return xlsx(officer_sheet([[1, code1, name1, "11/2026", 10, 9, 90], [2, code2, name2, "11/2026", "x", 5, 50]]))


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found[1]


def send_form(client: TestClient, path: str, token: str, content: bytes | None = None, **headers: str) -> Any:
    files = {"file": ("bao_cao.xlsx", content, XLSX)} if content is not None else None
    return client.post(path, data={"csrf_token": token}, files=files, headers=headers, follow_redirects=False)


def test_without_javascript_an_officer_previews_then_sends(
    client: TestClient, personas: dict[str, str], workbook: bytes, database: Database
) -> None:
    login(client, "officer_a")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Tải biểu mẫu Excel (.xlsx)" in page.text and f"/api/v1/feeds/{FEED}/template.xlsx" in page.text
    assert "Tháng 11/2026" in page.text  # the period the template is for
    answer = send_form(client, PAGE, token_of(page.text), workbook)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert re.fullmatch(rf"{PAGE}\?upload=\d+#preview", location)

    preview = client.get(location)
    assert preview.status_code == 200
    assert 'data-state="preview"' in preview.text
    assert "Dòng 5, cột E (Trẻ em tròn 1 tuổi trong kỳ): “x” không phải là số." in preview.text
    assert re.search(r'id="good-rows">1<', preview.text) and re.search(r'id="good-items">5<', preview.text)
    assert stored(database) == {}

    commit_path = re.search(r'action="(/feeds/[^"]+/commit)"', preview.text)
    assert commit_path is not None
    done = send_form(client, commit_path[1], token_of(preview.text))
    assert done.status_code == 303
    outcome = client.get(done.headers["location"])
    assert 'data-state="committed"' in outcome.text
    assert "Đã lưu 5 giá trị" in outcome.text and "1 lỗi được ghi lại" in outcome.text
    assert len(stored(database)) == 5
    # The same page in English.
    english = client.get(done.headers["location"].split("#")[0] + "&lang=en")
    assert "Stored 5 values" in english.text and "Row 5, column E" in english.text


def test_with_htmx_the_preview_and_the_outcome_replace_the_panel(
    client: TestClient, personas: dict[str, str], workbook: bytes, database: Database
) -> None:
    login(client, "officer_a")
    token = token_of(client.get(PAGE).text)
    answer = send_form(client, PAGE, token, workbook, **{"HX-Request": "true"})
    assert answer.status_code == 200
    assert "<html" not in answer.text and 'data-state="preview"' in answer.text
    upload_id = re.search(r'id="upload-(\d+)"', answer.text)
    assert upload_id is not None
    assert answer.headers["HX-Push-Url"] == f"{PAGE}?upload={upload_id[1]}"
    discarded = send_form(client, f"/feeds/{FEED}/uploads/{upload_id[1]}/discard", token, **{"HX-Request": "true"})
    assert discarded.status_code == 200 and 'data-state="discarded"' in discarded.text
    assert "không có số liệu nào được lưu" in discarded.text
    again = send_form(client, f"/feeds/{FEED}/uploads/{upload_id[1]}/commit", token, **{"HX-Request": "true"})
    assert "chỉ gửi hoặc hủy được tệp đang xem trước" in again.text
    assert stored(database) == {}


def test_a_bad_file_is_said_on_the_page(client: TestClient, personas: dict[str, str], workbook: bytes) -> None:
    login(client, "officer_a")
    token = token_of(client.get(PAGE).text)
    answer = send_form(client, PAGE, token, b"%PDF-1.4 not a sheet")
    assert answer.status_code == 415
    assert "Tệp không phải bảng tính CSV hoặc Excel (.xlsx): đây là tệp PDF." in answer.text
    empty_choice = client.post(
        PAGE, data={"csrf_token": token}, files={"file": ("", b"", "application/octet-stream")}, follow_redirects=False
    )
    assert empty_choice.status_code == 422 and "Hãy chọn một tệp .xlsx hoặc .csv." in empty_choice.text
    htmx = send_form(client, PAGE, token, b"", **{"HX-Request": "true"})
    assert htmx.status_code == 200 and 'role="alert"' in htmx.text


def test_a_form_without_its_csrf_token_stores_nothing(
    client: TestClient, personas: dict[str, str], workbook: bytes, database: Database
) -> None:
    login(client, "officer_a")
    client.get(PAGE)
    answer = send_form(client, PAGE, "forged", workbook)
    assert answer.status_code == 403 and "Phiên biểu mẫu đã hết hạn" in answer.text
    assert count_rows(database, "spreadsheet_uploads") == 0


def test_another_agency_sees_no_such_feed(client: TestClient, personas: dict[str, str], workbook: bytes) -> None:
    login(client, "officer_b")
    page = client.get(PAGE)
    assert page.status_code == 404 and "Không tìm thấy nguồn dữ liệu" in page.text
    assert "Tải biểu mẫu" not in page.text
    token = token_of(page.text)
    assert send_form(client, PAGE, token, workbook).status_code == 404


def test_the_page_needs_a_log_in_and_a_role_that_supplies_data(client: TestClient, personas: dict[str, str]) -> None:
    answer = client.get(PAGE, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    login(client, "leader")
    assert client.get(PAGE).status_code == 403
