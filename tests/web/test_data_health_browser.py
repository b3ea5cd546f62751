"""The Data health pages in a real browser: an agency officer finds its late feed and reads what is missing.

Debian's Chromium through Playwright against the app under uvicorn, with the live server, the browser and the watch
of tests/web/test_browser.py: a console error, a failed request, an unexpected error answer or a request to another
host than 127.0.0.1 fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

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
from cityops.feeds import lateness
from cityops.feeds.service import create_feed, feed_principal
from cityops.geo.models import Subject
from cityops.observations.service import ingest_items
from conftest import START

pytestmark = pytest.mark.browser

FEED = "yte_kham_benh_ngay"
VISITS = "yte.luot_kham_ngoai_tru"


@pytest.fixture(scope="module")
def late_feed(live_server: LiveServer) -> dict[str, Any]:  # noqa: F811
    """A Sở Y tế feed due daily by 17:00 for two communes since 24/11: on time, then late, then nothing."""
    database = live_server.backend.database
    with database.reading() as session:
        query = select(Subject.code, Subject.name_vi).where(Subject.kind == "commune").order_by(Subject.code).limit(2)
        (first, first_name), (second, second_name) = session.execute(query).all()
    created = START - timedelta(days=3)  # 24/11 10:00 in Hà Nội; the live server's clock stands at 27/11 10:00
    with database.writing() as session:
        feed = create_feed(
            session,
            accounts.SYSTEM,
            created,
            code=FEED,
            agency_code="so_y_te",
            indicator_codes=[VISITS],
            cadence="hằng ngày trước 17:00",
            coverage="list",
            subject_codes=[first, second],
        )
        principal, feed_id = feed_principal(feed), feed.id

    def send(moment: datetime, *items: tuple[str, str, float]) -> None:
        rows = [
            {"indicator": VISITS, "subject": code, "period": period, "value": value} for code, period, value in items
        ]
        assert ingest_items(database, principal, rows, moment, source="push", feed_id=feed_id).accepted == len(rows)

    send(created + timedelta(hours=5), (first, "2026-11-24", 310), (second, "2026-11-24", 305))
    send(created + timedelta(days=1, hours=8), (first, "2026-11-25", 295))
    with database.writing() as session:
        lateness.tick(session, START)  # 24/11 on time, 25/11 came late and short of one commune, 26/11 nothing
    return {"first": (first, first_name), "second": (second, second_name)}


def test_an_officer_sees_its_late_feed_and_exactly_which_commune_is_missing(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    late_feed: dict[str, Any],
) -> None:
    page = open_page()
    fonts: list[str] = []
    page.on("response", lambda r: fonts.append(f"{r.status} {urlsplit(r.url).path}") if ".woff2" in r.url else None)
    log_in(page, "officer_a")
    expect(page).to_have_url(f"{live_server.url}/")
    page.get_by_role("link", name="Sức khỏe dữ liệu", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sức khỏe dữ liệu")
    row = page.locator(f'tr[data-feed="{FEED}"]')
    # Marked late in words, not by colour alone; 1 of 3 periods on time, 3 of 6 cells received.
    expect(row.locator(".badge")).to_have_text("Trễ hạn")
    expect(row).to_contain_text("1 kỳ đang trễ")
    expect(row.locator('td[data-score="complete"]')).to_contain_text("50%")
    expect(row.locator('td[data-score="alive"]')).to_contain_text("33,3%")
    expect(row.locator('td[data-score="alive"]')).to_contain_text("Kém")
    colour = row.locator(".badge").evaluate("badge => getComputedStyle(badge).color")
    assert colour == "rgb(138, 90, 0)", colour  # the "watch" amber, beside the word
    expect(page.locator('section[data-agency="so_y_te"] h2')).to_contain_text("Sở Y tế")
    wait_for_fonts(page)
    no_sideways_scroll(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "data-health-1366x768.png", full_page=True)

    page.get_by_role("link", name=FEED).click()
    expect(page).to_have_url(f"{live_server.url}/data-health/feeds/{FEED}?days=30")
    expect(page.get_by_role("heading", level=1)).to_have_text(FEED)
    expect(page.locator("#feed-state .badge")).to_have_text("Trễ hạn")
    missing = page.locator("table.missing tbody tr")
    expect(missing).to_have_count(3)
    second, second_name = late_feed["second"]
    first, first_name = late_feed["first"]
    expect(page.locator(f'table.missing tr[data-subject="{second}"][data-period="2026-11-25"]')).to_contain_text(
        second_name
    )
    expect(missing.first).to_contain_text("26/11/2026")
    expect(missing.first).to_contain_text("26/11/2026 17:00")  # the due date, the Vietnamese way
    expect(page.locator(f'table.missing tr[data-subject="{first}"][data-period="2026-11-26"]')).to_contain_text(
        first_name
    )
    expect(page.locator("#missing")).to_contain_text("Còn thiếu 3 trên 6 ô số liệu phải nộp")
    late_rows = page.locator("table.late tbody tr")
    expect(late_rows).to_have_count(2)
    expect(page.locator('table.late tr[data-period="2026-11-25"]')).to_contain_text("Nhận trễ")
    expect(page.locator('table.late tr[data-period="2026-11-26"]')).to_contain_text("Chưa nhận")

    # The diacritics are drawn with the app's own Vietnamese font, not a fallback.
    wait_for_fonts(page)
    assert page.evaluate("document.fonts.check('16px \"Noto Sans\"', 'Còn thiếu số liệu phải nộp')")
    assert page.evaluate(f"document.fonts.check('bold 16px \"Noto Sans\"', {second_name!r})")
    assert "200 /static/vendor/noto-sans-vietnamese-400.woff2" in fonts, fonts
    assert "200 /static/vendor/noto-sans-vietnamese-700.woff2" in fonts, fonts
    no_sideways_scroll(page)
    page.screenshot(path=ARTIFACTS / "data-health-feed-1366x768.png", full_page=True)
    assert (ARTIFACTS / "data-health-feed-1366x768.png").stat().st_size > 30_000


def test_a_leader_on_a_phone_switches_the_window_and_the_language(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    late_feed: dict[str, Any],
    watch: Watch,  # noqa: F811
) -> None:
    page = open_page(phone=True)
    log_in(page, "leader")
    expect(page).to_have_url(f"{live_server.url}/")
    page.goto("/data-health")
    page.get_by_role("link", name="7 ngày").click()
    expect(page.locator(".health-window [aria-current]")).to_have_text("7 ngày")
    expect(page.locator(f'tr[data-feed="{FEED}"] .badge')).to_have_text("Trễ hạn")
    wait_for_fonts(page)
    no_sideways_scroll(page)
    page.screenshot(path=ARTIFACTS / "data-health-390x844.png", full_page=True)
    page.locator("#lang-switch").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Data health")
    expect(page.locator(f'tr[data-feed="{FEED}"] .badge')).to_have_text("Late")
    page.goto(f"/data-health/feeds/{FEED}")
    expect(page.locator("#missing")).to_contain_text("3 of 6 expected cells are missing")
    no_sideways_scroll(page)
    page.locator("#lang-switch").click()  # back to Vietnamese
    expect(page.get_by_role("heading", level=2, name="Còn thiếu")).to_be_visible()
