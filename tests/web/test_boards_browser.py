"""A subsystem board in a real browser: the health board with values, its trend charts drawn (ECharts, canvas), a
drill-down to a commune with the keyboard and back, on a desktop and a phone — no console error, no failed
request, nothing from another host (the watch of tests/web/test_browser.py), no sideways scrolling."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
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

from cityops.clock import FrozenClock
from conftest import START

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "boards"))
from boards_support import communes, health_items, health_key

pytestmark = pytest.mark.browser


def test_the_health_board_draws_its_trends_and_drills_down_with_the_keyboard(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    leader_state: Any,  # noqa: F811
) -> None:
    database = live_server.backend.database
    key = health_key(database, FrozenClock(START)())
    places = communes(database)
    answer = httpx.post(
        f"{live_server.url}/api/v1/observations",
        headers=key.headers,
        json={"observations": health_items([code for code, _, _ in places])},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["rejected_count"] == 0, answer.text
    worst_code, worst_name, _ = places[2]
    ARTIFACTS.mkdir(exist_ok=True)

    pages = {}
    for phone, size in ((True, "390x844"), (False, "1366x768")):
        page = open_page(phone=phone, state=leader_state)
        page.goto("/boards/yte")
        expect(page.locator("#board-title")).to_contain_text("Y tế")
        rate = page.locator('[id="indicator-yte.ty_le_tiem_chung_day_du"]')
        expect(rate).to_contain_text("Cần theo dõi")
        expect(rate).to_contain_text("88,67%")
        # The trend is drawn on a canvas, with the plan line beside the values.
        expect(rate.locator(".board-trend canvas")).to_have_count(1)
        expect(rate.locator(".board-trend")).to_have_attribute("data-state", "drawn")
        visits = page.locator('[id="indicator-yte.luot_kham_ngoai_tru"] .board-trend canvas')
        expect(visits).to_have_count(1)
        wait_for_fonts(page)
        no_sideways_scroll(page)
        readable_contrast(page)
        page.screenshot(path=ARTIFACTS / f"board-yte-{size}.png", full_page=not phone)
        pages[size] = page

    # On the desktop, drill down with the keyboard: tab to the worst commune's link, Enter; then back.
    page = pages["1366x768"]
    link = page.locator(f'[id="indicator-yte.ty_le_tiem_chung_day_du"] a.commune-link[data-subject="{worst_code}"]')
    for _ in range(100):
        page.keyboard.press("Tab")
        if link.evaluate("element => element === document.activeElement"):
            break
    assert link.evaluate("element => element === document.activeElement"), "the commune link is not reachable"
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/boards/yte?range=30d&subject={worst_code}")
    expect(page.locator("nav.crumbs")).to_contain_text(f"Nghệ An › {worst_name}")
    expect(page.locator('[id="indicator-yte.ty_le_tiem_chung_day_du"]')).to_contain_text("Không đạt")
    expect(page.locator('[id="indicator-yte.ty_le_tiem_chung_day_du"] .board-trend canvas')).to_have_count(1)
    page.locator("#board-back").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/boards/yte?range=30d")
    expect(page.locator("nav.crumbs")).not_to_contain_text(worst_name)

    # The commune's board on a phone.
    phone_page = pages["390x844"]
    phone_page.goto(f"/boards/yte?subject={worst_code}")
    expect(phone_page.locator('[id="indicator-yte.ty_le_tiem_chung_day_du"] .board-trend')).to_have_attribute(
        "data-state", "drawn"
    )
    wait_for_fonts(phone_page)
    no_sideways_scroll(phone_page)
    phone_page.screenshot(path=ARTIFACTS / "board-yte-commune-390x844.png")
    for name in ("board-yte-1366x768", "board-yte-390x844", "board-yte-commune-390x844"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name
