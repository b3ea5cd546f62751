"""A board showing an anomaly in a real browser: the list "Bất thường" with its reason, and a red pin on the trend
point (ECharts markPoint) — on a desktop and a phone, readable (WCAG AA contrast) and without sideways scrolling;
no console error, no failed request, nothing from another host (the watch of tests/web/test_browser.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from insights_support import LINEAR, SPIKE, anomaly_items, communes, key, progress_items
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
from conftest import START, _clean

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def emptied_afterwards(live_server: LiveServer) -> Iterator[None]:  # noqa: F811
    """The live server's database is shared with later tests: leave it as found."""
    yield
    _clean(live_server.backend)


def test_a_board_marks_an_anomaly_and_lists_it(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    leader_state: Any,  # noqa: F811
) -> None:
    database = live_server.backend.database
    places = communes(database)
    agency_key = key(database, FrozenClock(START)())
    answer = httpx.post(
        f"{live_server.url}/api/v1/observations",
        headers=agency_key.headers,
        json={"observations": anomaly_items(places)},
        timeout=60,
    )
    assert answer.status_code == 200 and answer.json()["rejected_count"] == 0, answer.text
    ARTIFACTS.mkdir(exist_ok=True)
    for phone, size in ((False, "1366x768"), (True, "390x844")):
        page = open_page(phone=phone, state=leader_state)
        page.goto(f"/boards/hcc?subject={places[0]}")
        listed = page.locator("#board-anomalies")
        expect(listed).to_contain_text("Bất thường")
        expect(listed.locator(".anomaly")).to_have_count(1)
        expect(listed).to_contain_text("Tăng đột biến")
        expect(listed).to_contain_text("Tháng 10/2026")
        expect(listed).to_contain_text("600 hồ sơ")
        chart = page.locator(f'[id="indicator-{SPIKE}"] .board-trend')
        expect(chart).to_have_attribute("data-state", "drawn")
        pins = chart.evaluate(
            "box => { const option = window.echarts.getInstanceByDom(box).getOption();"
            " return option.series[0].markPoint.data.map((d) => d.coord[0]); }"
        )
        assert pins == ["Tháng 10/2026"], pins
        marked = page.locator(f'[id="indicator-{SPIKE}"] tr.point-anomaly')
        expect(marked).to_have_count(1)
        wait_for_fonts(page)
        no_sideways_scroll(page)
        readable_contrast(page)
        page.screenshot(path=ARTIFACTS / f"board-anomaly-{size}.png", full_page=not phone)
        assert (ARTIFACTS / f"board-anomaly-{size}.png").stat().st_size > 10_000


def test_the_plan_page_is_readable_on_a_phone(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    leader_state: Any,  # noqa: F811
) -> None:
    database = live_server.backend.database
    agency_key = key(database, FrozenClock(START)(), feed="insights_plan")
    answer = httpx.post(
        f"{live_server.url}/api/v1/observations",
        headers=agency_key.headers,
        json={"observations": progress_items()},
        timeout=60,
    )
    assert answer.status_code == 200 and answer.json()["rejected_count"] == 0, answer.text
    for phone, size in ((False, "1366x768"), (True, "390x844")):
        page = open_page(phone=phone, state=leader_state)
        page.goto("/insights?domain=ktxh")
        row = page.locator(f'[id="progress-{LINEAR}"]')
        expect(row).to_contain_text("Chậm tiến độ")
        expect(row).to_contain_text("Dự báo chỉ đạt 74,4% kế hoạch vào 31/12/2026")
        wait_for_fonts(page)
        no_sideways_scroll(page)
        readable_contrast(page)
        page.screenshot(path=ARTIFACTS / f"insights-{size}.png", full_page=not phone)
