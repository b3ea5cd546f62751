"""Incidents in a real browser: the operator assigns a new incident from the inbox; the health handler finds it in
"my work", starts it and ticks a checklist step with the keyboard; the incident page on a phone, diacritics and all.

Debian's Chromium through Playwright against the app under uvicorn, with the live server, the browser and the
watch of tests/web/test_browser.py: the test fails on a console error, a failed request, an unexpected error
answer, or any request to a host other than 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from test_browser import (  # noqa: F401 — fixtures shared with the shell's browser tests
    LiveServer,
    Watch,
    browser,
    live_server,
    log_in,
    no_sideways_scroll,
    open_page,
    readable_contrast,
    wait_for_fonts,
    watch,
)

from cityops.accounts.models import User
from cityops.accounts.service import Actor, principal_for_user
from cityops.incidents import service
from conftest import START

pytestmark = pytest.mark.browser


def test_an_incident_goes_from_the_inbox_to_the_handler_who_starts_it(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    database = live_server.backend.database
    with database.writing() as session:
        operator = session.scalar(select(User).where(User.username == "operator"))
        assert operator is not None
        number = service.create_incident(
            session,
            principal_for_user(session, operator),
            Actor("operator", operator.id),
            START,
            title="Ổ dịch sốt xuất huyết ở phường Trường Vinh",
            description="Phát hiện 12 ca mắc trong 7 ngày.",
            category_code="y_te",
            severity="high",
        ).id

    # The operator assigns it to the Department of Health from the inbox.
    page = open_page()
    log_in(page, "operator")
    expect(page).to_have_url(f"{live_server.url}/")
    page.get_by_role("link", name="Cần quyết định", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cần quyết định")
    expect(page.locator("#inbox-alerts")).to_contain_text("Không có gì cần quyết định.")
    row = page.locator(f'#inbox-new li[data-incident="{number}"]')
    expect(row).to_contain_text("Ổ dịch sốt xuất huyết ở phường Trường Vinh")
    expect(row).to_contain_text("còn 8 giờ")
    wait_for_fonts(page)
    page.screenshot(path=tmp_path / "inbox-1366x768.png", full_page=True)
    row.get_by_label("Giao cho").select_option("so_y_te")
    row.get_by_role("button", name="Giao", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(f"Sự vụ #{number}: Đã giao xử lý.")
    expect(page.locator("#inbox-new")).to_contain_text("Không có gì cần quyết định.")
    page.get_by_role("link", name="Sự vụ", exact=True).click()
    card = page.locator(f'#column-assigned article[data-incident="{number}"]')
    expect(card).to_contain_text("Sở Y tế")
    expect(card).to_contain_text("Cao")
    wait_for_fonts(page)
    page.screenshot(path=tmp_path / "board-1366x768.png", full_page=True)

    # The handler finds it in "my work" and starts it.
    handler = open_page()
    log_in(handler, "handler_a")
    expect(handler).to_have_url(f"{live_server.url}/")
    handler.get_by_role("link", name="Việc của tôi", exact=True).click()
    mine = handler.locator(f'#my-incidents tr[data-incident="{number}"]')
    expect(mine).to_contain_text("Đã giao")
    mine.get_by_role("link", name=f"#{number} Ổ dịch sốt xuất huyết ở phường Trường Vinh").click()
    expect(handler).to_have_url(f"{live_server.url}/incidents/{number}")
    handler.get_by_role("button", name="Bắt đầu xử lý").click()
    expect(handler.get_by_role("status")).to_have_text("Đã bắt đầu xử lý.")
    expect(handler.locator("#incident-facts")).to_contain_text("Đang xử lý")

    # A checklist step ticked with the keyboard: Tab from the checklist's heading to the first step, then Space.
    step_id = handler.locator("#checklist li").first.get_attribute("id")
    assert step_id is not None and step_id.startswith("task-")
    first = handler.locator(f"#{step_id}").get_by_role("button")
    expect(first).to_have_attribute("aria-pressed", "false")
    handler.locator("#checklist-title").evaluate("e => { e.tabIndex = -1; e.focus(); }")
    handler.keyboard.press("Tab")
    expect(first).to_be_focused()
    assert handler.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    handler.keyboard.press("Space")
    expect(handler).to_have_url(f"{live_server.url}/incidents/{number}?done=task#{step_id}")
    ticked = handler.locator(f"#{step_id}")
    expect(ticked.get_by_role("button")).to_have_attribute("aria-pressed", "true")
    expect(ticked).to_contain_text("Đã xong — handler_a, 27/11/2026 10:00")
    expect(handler.locator("#trail")).to_contain_text("Hoàn thành đầu việc")

    # The incident's page on a phone: nothing scrolls sideways, the Vietnamese letters render in the app's font.
    phone = open_page(phone=True, state=handler.context.storage_state())
    phone.goto(f"/incidents/{number}")
    expect(phone.get_by_role("heading", level=1)).to_have_text(f"#{number} Ổ dịch sốt xuất huyết ở phường Trường Vinh")
    wait_for_fonts(phone)
    assert phone.evaluate("document.fonts.check('16px \"Noto Sans\"', 'Ổ dịch sốt xuất huyết — Đang xử lý')")
    no_sideways_scroll(phone)
    readable_contrast(phone)
    shot = tmp_path / "incident-390x844.png"
    phone.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000
