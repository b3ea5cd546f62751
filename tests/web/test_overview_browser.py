"""The overview in a real browser, on a desktop and a phone: nine subsystem cards readable without sideways
scrolling, statuses in words; a value sent while the page is open appears without a reload (server-sent events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from test_browser import (  # noqa: F401 — fixtures shared with the shell's browser tests
    ARTIFACTS,
    LiveServer,
    Watch,
    browser,
    leader_state,
    live_server,
    no_sideways_scroll,
    open_page,
    readable_contrast,
    wait_for_fonts,
    watch,
)

pytestmark = pytest.mark.browser


def test_the_overview_on_desktop_and_phone_updates_live(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    leader_state: Any,  # noqa: F811
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    phone = open_page(phone=True, state=leader_state)
    phone.goto("/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Tổng quan tỉnh")
    expect(phone.locator("article.ov-card")).to_have_count(9)
    expect(phone.locator("[data-live-status]")).to_have_text("● Trực tiếp")
    wait_for_fonts(phone)
    no_sideways_scroll(phone)
    readable_contrast(phone)
    phone.screenshot(path=ARTIFACTS / "overview-390x844.png")

    page = open_page(state=leader_state)
    page.goto("/")
    rate = page.locator('[data-figure="hcc.ty_le_dung_han"]')
    expect(rate).to_contain_text("Chưa có số liệu")
    expect(page.locator("[data-live-status]")).to_have_text("● Trực tiếp")  # the stream is open
    page.evaluate("window.__notReloaded = true")
    answer = httpx.post(
        f"{live_server.url}/api/v1/observations",
        headers=live_server.key.headers,
        json={"observations": [{"indicator": "hcc.ty_le_dung_han", "subject": "40", "period": "2026-10", "value": 97}]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    # Well before the 60 s poll: the values event makes the page re-read its cards.
    expect(rate).to_contain_text("97", timeout=5_000)
    expect(rate).to_contain_text("Cần theo dõi")  # above the warning line, below the target of 99
    expect(phone.locator('[data-figure="hcc.ty_le_dung_han"]')).to_contain_text("97", timeout=5_000)
    assert page.evaluate("window.__notReloaded === true")
    wait_for_fonts(page)
    no_sideways_scroll(page)
    readable_contrast(page)
    page.screenshot(path=ARTIFACTS / "overview-1366x768.png", full_page=False)
