"""The spreadsheet upload page in a real browser: an officer downloads the template, fills it in with one bad cell,
uploads it, reads the row's error in Vietnamese in the preview, sends the good values and sees what was stored.

Debian's Chromium through Playwright against the app under uvicorn, with the live server, the browser and the watch
of tests/web/test_browser.py: every test fails on a console error, a failed request, an unexpected error answer, or
any request to a host other than 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from sqlalchemy import select
from test_browser import (  # noqa: F401 — fixtures shared with the shell's browser tests
    ARTIFACTS,
    LiveServer,
    Watch,
    browser,
    live_server,
    log_in,
    no_sideways_scroll,
    open_page,
    wait_for_fonts,
    watch,
)

from cityops.accounts import service as accounts
from cityops.catalog.models import Indicator
from cityops.clock import FrozenClock
from cityops.feeds.service import create_feed
from cityops.geo.models import Subject
from cityops.observations.models import Observation
from conftest import START

pytestmark = pytest.mark.browser

FEED = "yte_tiem_chung_trinh_duyet"
INDICATORS = ["yte.tre_tron_1_tuoi", "yte.tre_tiem_chung_day_du", "yte.ty_le_tiem_chung_day_du"]


@pytest.fixture(scope="module")
def places(live_server: LiveServer) -> list[tuple[str, str]]:  # noqa: F811
    """A spreadsheet feed of Sở Y tế covering three communes; the communes."""
    database = live_server.backend.database
    with database.writing() as session:
        rows = session.execute(
            select(Subject.code, Subject.name_vi).where(Subject.kind == "commune").order_by(Subject.code).limit(3)
        ).all()
        create_feed(
            session,
            accounts.SYSTEM,
            FrozenClock(START)(),
            code=FEED,
            name="Tiêm chủng mở rộng (biểu tháng)",
            agency_code="so_y_te",
            indicator_codes=INDICATORS,
            kind="spreadsheet",
            cadence="monthly by day 5",
            coverage="list",
            subject_codes=[code for code, _ in rows],
        )
    return [(code, name) for code, name in rows]


def stored(live_server: LiveServer) -> dict[tuple[str, str], float | None]:  # noqa: F811
    with live_server.backend.database.reading() as session:
        rows = session.execute(
            select(Indicator.code, Subject.code, Observation.value)
            .join(Indicator, Indicator.id == Observation.indicator_id)
            .join(Subject, Subject.id == Observation.subject_id)
            .where(Indicator.code.in_(INDICATORS))
        )
        return {(indicator, subject): value for indicator, subject, value in rows}


def test_an_officer_fills_the_template_previews_and_sends(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    places: list[tuple[str, str]],
    tmp_path: Path,
) -> None:
    page = open_page()
    log_in(page, "officer_a")
    page.goto(f"/feeds/{FEED}/upload")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tải số liệu lên: Tiêm chủng mở rộng (biểu tháng)")
    expect(page.locator("#template")).to_contain_text("Tháng 11/2026")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Tải biểu mẫu Excel (.xlsx)").click()
    download = download_info.value
    assert download.suggested_filename == f"mau-{FEED}-2026-11.xlsx"
    template = tmp_path / download.suggested_filename
    download.save_as(template)

    # The officer fills the three communes in (rows 5–7 of the sheet) and mistypes one figure in row 6.
    workbook = load_workbook(template)
    sheet = workbook["Số liệu"]
    assert [sheet.cell(row=row, column=1).value for row in (5, 6, 7)] == [code for code, _ in places]
    for row, values in zip((5, 6, 7), ([120, 118, 98.3], ["một trăm", 95, 97.9], [80, "78", "97,5"]), strict=True):
        for column, value in enumerate(values, start=4):
            sheet.cell(row=row, column=column, value=value)
    filled = tmp_path / "tiem-chung-thang-11.xlsx"
    workbook.save(filled)

    page.get_by_label("Tệp số liệu (.xlsx hoặc .csv)").set_input_files(filled)
    page.get_by_role("button", name="Xem trước", exact=True).click()
    preview = page.locator("#preview section")
    expect(preview).to_have_attribute("data-state", "preview")
    expect(page.get_by_role("heading", level=2, name="Xem trước: tiem-chung-thang-11.xlsx")).to_be_visible()
    error = page.locator('#upload-errors tr[data-row="6"][data-column="D"]')
    expect(error).to_contain_text("Dòng 6, cột D (Trẻ em tròn 1 tuổi trong kỳ): “một trăm” không phải là số.")
    expect(page.locator("#good-rows")).to_have_text("2")
    expect(page.locator("#error-rows")).to_have_text("1")
    expect(page.locator("#good-items")).to_have_text("8")
    expect(page).to_have_url(f"{live_server.url}/feeds/{FEED}/upload?upload={preview.get_attribute('id')[7:]}")
    assert stored(live_server) == {}
    no_sideways_scroll(page)
    wait_for_fonts(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "spreadsheet-preview-1366x768.png", full_page=True)

    page.get_by_role("button", name="Gửi dữ liệu", exact=True).click()
    expect(preview).to_have_attribute("data-state", "committed")
    expect(page.locator("#commit-result")).to_have_text(
        "Đã lưu 8 giá trị (mới 8, cập nhật 0, không đổi 0); 1 lỗi được ghi lại để sửa."
    )
    expect(page.get_by_role("heading", level=2)).to_contain_text(["Đã gửi dữ liệu: tiem-chung-thang-11.xlsx"])
    values = stored(live_server)
    (code1, _), (code2, _), (code3, _) = places
    assert values == {
        (INDICATORS[0], code1): 120,
        (INDICATORS[1], code1): 118,
        (INDICATORS[2], code1): 98.3,
        (INDICATORS[1], code2): 95,
        (INDICATORS[2], code2): 97.9,
        (INDICATORS[0], code3): 80,
        (INDICATORS[1], code3): 78,
        (INDICATORS[2], code3): 97.5,
    }
    page.screenshot(path=ARTIFACTS / "spreadsheet-committed-1366x768.png", full_page=True)

    # Reloaded (as htmx pushed the address), the page shows the same outcome, and the upload in the list.
    page.reload()
    expect(page.locator("#commit-result")).to_contain_text("Đã lưu 8 giá trị")
    expect(page.locator("#recent")).to_contain_text("tiem-chung-thang-11.xlsx")
    expect(page.locator("#recent")).to_contain_text("đã gửi")
    for name in ("spreadsheet-preview-1366x768", "spreadsheet-committed-1366x768"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name


def test_the_upload_page_fits_a_phone(
    open_page: Callable[..., Page],  # noqa: F811
    places: list[tuple[str, str]],
    watch: Watch,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
) -> None:
    page = open_page(phone=True)
    log_in(page, "officer_a")
    page.goto(f"/feeds/{FEED}/upload")
    expect(page.get_by_role("button", name="Xem trước", exact=True)).to_be_visible()
    no_sideways_scroll(page)
    wait_for_fonts(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "spreadsheet-upload-390x844.png", full_page=True)
    # Another agency's officer finds no such feed.
    other = open_page()
    log_in(other, "officer_b")
    watch.expect_status(404, f"/feeds/{FEED}/upload")
    answer = other.goto(f"/feeds/{FEED}/upload")
    assert answer is not None and answer.status == 404
    expect(other.get_by_role("heading", level=1)).to_have_text("Không tìm thấy nguồn dữ liệu")
