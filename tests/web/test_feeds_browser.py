"""Feeds in a real browser: an operator creates a daily feed through the form (no script needed), finds it in the
list with its cadence in Vietnamese words, and opens it; a leader reads the list on a phone.

Debian's Chromium through Playwright against the app under uvicorn, with the live server, the browser and the
watch of tests/web/test_browser.py: every test fails on a console error, a failed request, an unexpected error
answer, or any request to a host other than 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
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
from cityops.feeds.models import Feed
from cityops.feeds.service import create_feed
from conftest import START
from feeds.feeds_support import TOKEN, agency_endpoint, pull_settings

pytestmark = pytest.mark.browser

VISITS = "yte.luot_kham_ngoai_tru"


def test_an_operator_creates_a_daily_feed_through_the_form(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    watch: Watch,  # noqa: F811
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page()
    log_in(page, "operator")
    expect(page).to_have_url(f"{live_server.url}/")
    page.get_by_role("link", name="Nguồn dữ liệu", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nguồn dữ liệu")
    page.get_by_role("link", name="+ Thêm nguồn dữ liệu").click()
    expect(page).to_have_url(f"{live_server.url}/feeds/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thêm nguồn dữ liệu")

    # First a mistake: the deadline time left empty is said next to the cadence, the entries are kept.
    watch.expect_status(422, "/feeds/new")
    page.get_by_label("Mã nguồn dữ liệu").fill("yte_kham_ngay")
    page.get_by_label("Tên", exact=True).fill("Lượt khám trong ngày")
    page.get_by_label("Cơ quan cung cấp").select_option("so_y_te")
    page.get_by_label("Chỉ tiêu", exact=True).select_option([VISITS, "yte.giuong_benh"])
    page.get_by_label("Hằng ngày trước", exact=True).check()
    page.get_by_label("Thời gian ân hạn (phút)").fill("30")
    page.get_by_role("button", name="Tạo nguồn dữ liệu").click()
    expect(page.locator("#form-errors")).to_contain_text("Chưa lưu được: có 1 chỗ cần sửa.")
    expect(page.locator("#f-cadence-error")).to_have_text("Hãy điền ô bên cạnh lựa chọn “Hằng ngày trước”.")
    expect(page.get_by_label("Tên", exact=True)).to_have_value("Lượt khám trong ngày")
    expect(page.get_by_label("Hằng ngày trước", exact=True)).to_be_checked()

    page.get_by_label("Giờ hạn hằng ngày").fill("17:00")
    wait_for_fonts(page)
    page.screenshot(path=ARTIFACTS / "feed-form-1366x768.png", full_page=True)
    page.get_by_role("button", name="Tạo nguồn dữ liệu").click()
    expect(page).to_have_url(f"{live_server.url}/feeds/yte_kham_ngay?created=1")
    expect(page.get_by_role("status")).to_have_text("Đã tạo nguồn dữ liệu.")
    expect(page.locator("#feed-cadence")).to_have_text("hằng ngày trước 17:00")

    page.get_by_role("link", name="Nguồn dữ liệu", exact=True).first.click()
    row = page.locator('tr[data-feed="yte_kham_ngay"]')
    expect(row).to_contain_text("Lượt khám trong ngày")
    expect(row).to_contain_text("Sở Y tế")
    expect(row.locator("td.cadence")).to_contain_text("hằng ngày trước 17:00")
    expect(row.locator("td.cadence")).to_contain_text("ân hạn 30 phút")
    expect(row).to_contain_text("Chưa chạy lần nào")
    wait_for_fonts(page)
    page.screenshot(path=ARTIFACTS / "feeds-1366x768.png", full_page=True)

    row.get_by_role("link", name="Lượt khám trong ngày").click()
    expect(page).to_have_url(f"{live_server.url}/feeds/yte_kham_ngay")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lượt khám trong ngày")
    expect(page.locator("#feed-indicators")).to_contain_text("Lượt khám bệnh ngoại trú")
    expect(page.get_by_role("button", name="Tạm dừng")).to_be_visible()
    expect(page.get_by_role("button", name="Chạy ngay")).to_have_count(0)  # a push feed is not pulled
    wait_for_fonts(page)
    page.screenshot(path=ARTIFACTS / "feed-1366x768.png", full_page=True)

    page.get_by_role("button", name="Tạm dừng").click()
    expect(page.get_by_role("status")).to_contain_text("Đã tạm dừng nguồn dữ liệu")
    expect(page.locator("#feed-paused")).to_have_text("Tạm dừng")

    with live_server.backend.database.reading() as session:
        feed = session.scalar(select(Feed).where(Feed.code == "yte_kham_ngay"))
        assert feed is not None
        assert (feed.cadence, feed.grace_minutes, feed.paused) == ("daily by 17:00", 30, True)


def test_a_leader_reads_the_feeds_on_a_phone_in_english(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
) -> None:
    page = open_page(phone=True)
    log_in(page, "leader")
    expect(page).to_have_url(f"{live_server.url}/")
    page.goto("/feeds?lang=en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Data feeds")
    row = page.locator('tr[data-feed="hcc_igate"]')
    expect(row).to_contain_text("Never run")
    expect(page.get_by_role("link", name=re.compile(r"Add a data feed"))).to_have_count(0)
    no_sideways_scroll(page)
    wait_for_fonts(page)
    page.screenshot(path=ARTIFACTS / "feeds-390x844.png", full_page=True)


def test_an_operator_runs_a_pull_now_and_reads_the_run_log(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
) -> None:
    backend = live_server.backend
    records = [
        {"don_vi": "40", "ngay": "26/11/2026", "so_luot": 1234},
        {"don_vi": "40", "ngay": "25/11/2026", "so_luot": "không rõ"},
    ]
    with agency_endpoint(TOKEN, records) as endpoint:
        with backend.database.writing() as session:
            create_feed(
                session,
                accounts.SYSTEM,
                START,
                code="yte_his",
                agency_code="so_y_te",
                indicator_codes=[VISITS],
                name="Hệ thống thông tin bệnh viện",
                kind="http_pull",
                settings=pull_settings(endpoint.url),
                secret_key=backend.settings.resolved_secret_key,
                cadence="every 1 hour",
                poll_seconds=3600,
            )
        page = open_page()
        log_in(page, "operator")
        expect(page).to_have_url(f"{live_server.url}/")
        page.goto("/feeds/yte_his")
        expect(page.locator("#feed-secrets")).to_contain_text("đã đặt")
        page.get_by_role("button", name="Chạy ngay").click()
        expect(page).to_have_url(re.compile(r"/feeds/yte_his\?ran=\d+#runs$"))
    expect(page.get_by_role("status")).to_have_text("Đã chạy: Thành công một phần; nhận 2, lưu 1, từ chối 1.")
    run = page.locator("#run-log tbody tr").first
    expect(run).to_contain_text("Chạy ngay (thủ công)")
    expect(run).to_contain_text("thử lại không giúp được, cần sửa")
    assert TOKEN not in page.content()
    wait_for_fonts(page)
    page.screenshot(path=ARTIFACTS / "feed-run-log-1366x768.png", full_page=True)
