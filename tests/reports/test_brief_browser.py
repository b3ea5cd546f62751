"""The day's brief on a phone (390 × 844) in a real browser: one column, no sideways scroll, readable contrast,
no console errors; each line links to what is behind it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from reports_support import seed

from cityops.reports import service
from web.test_browser import (  # noqa: F401 — fixtures shared with the shell's browser tests
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


def test_the_brief_on_a_phone(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    leader_state: Any,  # noqa: F811
) -> None:
    backend = live_server.backend
    clock = live_server_clock()
    seeded = seed(backend.database, clock)
    assert service.make_brief(backend.database, backend.settings, clock, date(2026, 11, 27)) is not None
    ARTIFACTS.mkdir(exist_ok=True)
    phone = open_page(phone=True, state=leader_state)
    phone.goto("/brief")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Bản tin lãnh đạo")
    expect(phone.locator('[data-part="overdue_incidents"] li')).to_have_count(1)
    expect(phone.locator('[data-part="feeds"] li')).to_have_count(1)
    expect(phone.locator('[data-citizen="open"]')).to_have_text("1")
    wait_for_fonts(phone)
    no_sideways_scroll(phone)
    readable_contrast(phone)
    size = phone.evaluate("parseFloat(getComputedStyle(document.querySelector('.bf li')).fontSize)")
    assert size >= 17  # large type on a phone
    phone.screenshot(path=ARTIFACTS / "brief-phone.png", full_page=False)
    phone.locator(f'[data-incident="{seeded.overdue_incident}"] a').click()
    expect(phone).to_have_url(f"{live_server.url}/incidents/{seeded.overdue_incident}")
    desktop = open_page(state=leader_state)
    desktop.goto("/brief?lang=en")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Leader's brief")
    no_sideways_scroll(desktop)
    readable_contrast(desktop)


def live_server_clock() -> Any:
    from conftest import START

    return START
