"""The catalog pages in a real browser: the history chart drawn by ECharts, the commune table, editing a target.

Debian's Chromium through Playwright against the app under uvicorn, with the live server, the browser and the
watch of tests/web/test_browser.py: every test fails on a console error, a failed request, an unexpected error
answer, or any request to a host other than 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
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

from cityops.catalog.models import Indicator
from cityops.geo.models import Subject
from conftest import catalog_restored

pytestmark = pytest.mark.browser

RATE = "hcc.ty_le_dung_han"
MONTHS = [f"2026-{month:02d}" for month in range(1, 11)]


@pytest.fixture
def catalog_kept(live_server: LiveServer) -> Iterator[None]:  # noqa: F811
    """Put the indicators' targets, thresholds and versions back after a test that edits them."""
    database = live_server.backend.database
    with catalog_restored(database):
        yield


@pytest.fixture(scope="module")
def values(live_server: LiveServer) -> dict[str, Any]:  # noqa: F811
    """Ten months of the on-time rate for the province and the latest month for three communes, sent by iGate."""
    with live_server.backend.database.reading() as session:
        communes = list(
            session.execute(
                select(Subject.code, Subject.name_vi).where(Subject.kind == "commune").order_by(Subject.code).limit(3)
            )
        )
    province = [
        {"indicator": RATE, "subject": "40", "period": month, "value": 95.5 + index * 0.35}
        for index, month in enumerate(MONTHS)
    ]
    by_commune = [
        {"indicator": RATE, "subject": code, "period": "2026-10", "value": value}
        for (code, _), value in zip(communes, (97.25, 88.5, 100.0), strict=True)
    ]
    answer = httpx.post(
        f"{live_server.url}/api/v1/observations",
        headers=live_server.key.headers,
        json={"observations": province + by_commune},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == len(province) + len(by_commune), answer.text
    return {"communes": [(code, name) for code, name in communes], "province": province}


def chart_drawn(page: Page, points: int) -> None:
    """The chart is an SVG drawn by ECharts with one marker per value (and the lines of target and thresholds)."""
    chart = page.locator("#history-chart")
    expect(chart).to_have_attribute("data-state", "drawn")
    expect(chart).to_have_attribute("data-points", str(points))
    expect(chart.locator("svg")).to_be_visible()
    box = chart.locator("svg").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200, box
    # ECharts draws each data point's symbol as a path; the series line, axes and mark lines add more.
    assert chart.locator("svg path").count() >= points
    labels = chart.evaluate("box => [...box.querySelectorAll('svg text')].map(text => text.textContent)")
    assert "2026-01" in labels and len([label for label in labels if label.startswith("2026-")]) >= 3, labels


def test_the_indicator_page_draws_its_history_lists_communes_and_an_operator_edits_a_target(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    watch: Watch,  # noqa: F811
    values: dict[str, Any],
    catalog_kept: None,
) -> None:
    watch.expect_status(422, f"/catalog/{RATE}")  # the refused threshold below: the test reads its message
    with live_server.backend.database.reading() as session:
        first = session.scalar(select(Indicator.version).where(Indicator.code == RATE))
    assert first is not None
    page = open_page()
    log_in(page, "operator")
    expect(page).to_have_url(f"{live_server.url}/")
    page.get_by_role("link", name="Danh mục chỉ tiêu", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Danh mục chỉ tiêu")
    expect(page.locator("section.catalog-domain h2").first).to_contain_text("Kinh tế")  # the first subsystem
    wait_for_fonts(page)
    no_sideways_scroll(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "catalog-1366x768.png")
    page.get_by_label("Tìm chỉ tiêu").fill("dung han")  # no diacritics, as typed on a phone in a hurry
    page.get_by_role("button", name="Lọc").click()
    expect(page.locator(f'tr[data-indicator="{RATE}"] td.value')).to_contain_text("98,65")  # latest province value
    page.get_by_role("link", name="Tỷ lệ hồ sơ giải quyết đúng hạn", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/catalog/{RATE}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tỷ lệ hồ sơ giải quyết đúng hạn")

    chart_drawn(page, len(MONTHS))
    chart = page.locator("#history-chart")
    expect(chart).to_have_attribute("aria-label", re.compile(r"10 giá trị, từ kỳ 2026-01 đến kỳ 2026-10"))
    page.get_by_text("Xem số liệu dạng bảng").click()
    expect(page.locator("#history-table tbody tr")).to_have_count(len(MONTHS))
    expect(page.locator("#history-table tbody tr").last).to_have_text("2026-1098,65%")

    rows = page.locator("table.communes tbody tr")
    expect(rows).to_have_count(3)
    names = dict(values["communes"])
    code_a = values["communes"][0][0]
    expect(page.locator(f'tr[data-subject="{code_a}"]')).to_contain_text(names[code_a])
    expect(page.locator(f'tr[data-subject="{code_a}"] td.value')).to_have_text("97,25")
    page.get_by_role("link", name="Giá trị").click()  # sort by value, lowest first
    expect(rows.first.locator("td.value")).to_have_text("88,5")
    expect(page.locator("table.communes th.num")).to_have_attribute("aria-sort", "ascending")
    page.get_by_role("link", name="Giá trị").click()  # again: highest first
    expect(rows.first.locator("td.value")).to_have_text("100")

    # The operator raises the 2026 target and adds one for 2027, typed the Vietnamese way.
    expect(page.locator("#indicator-version")).to_contain_text(f"Phiên bản {first} ")
    page.get_by_label("Dòng 2 – Giá trị kế hoạch").fill("99,5")
    page.get_by_label("Dòng 3 – Năm").fill("2027")
    page.get_by_label("Dòng 3 – Giá trị kế hoạch").fill("99,8")
    page.get_by_role("button", name="Lưu thành phiên bản mới").click()
    expect(page).to_have_url(re.compile(rf"/catalog/{re.escape(RATE)}\?saved={first + 1}#main$"))
    expect(page.get_by_role("status")).to_have_text(f"Đã lưu. Chỉ tiêu nay ở phiên bản {first + 1}.")
    version = page.locator("#indicator-version")
    expect(version).to_contain_text(f"Phiên bản {first + 1} · cập nhật bởi operator lúc 27/11/2026 10:00")
    expect(page.locator("#targets")).to_contain_text("99,5%")
    expect(page.locator("#targets")).to_contain_text("2027")
    expect(page.locator("#versions tbody tr").nth(1)).to_contain_text(
        f"Được thay bằng phiên bản {first + 1} bởi operator"
    )
    expect(chart).to_have_attribute("data-target", "99.5")
    chart_drawn(page, len(MONTHS))

    # A warning threshold on the wrong side of the critical one is refused, in words, next to the field.
    page.get_by_label("Ngưỡng cảnh báo (%)").fill("89")
    page.get_by_role("button", name="Lưu thành phiên bản mới").click()
    alert = page.locator("#edit-errors")
    expect(alert).to_contain_text("ngưỡng cảnh báo (89%) không được nhỏ hơn ngưỡng nghiêm trọng (90%)")
    expect(page.locator("#threshold-warning")).to_have_attribute("aria-invalid", "true")
    alert.get_by_role("link").click()
    expect(page.locator("#threshold-warning")).to_be_focused()
    expect(page.locator("#indicator-version")).to_contain_text(f"Phiên bản {first + 1} ")

    page.goto(f"/catalog/{RATE}")
    chart_drawn(page, len(MONTHS))
    wait_for_fonts(page)
    no_sideways_scroll(page)
    page.screenshot(path=ARTIFACTS / "catalog-indicator-1366x768.png", full_page=True)
    assert (ARTIFACTS / "catalog-indicator-1366x768.png").stat().st_size > 50_000


def test_a_leader_on_a_phone_browses_the_catalog_without_a_form(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    values: dict[str, Any],
) -> None:
    page = open_page(phone=True)
    log_in(page, "leader")
    expect(page).to_have_url(f"{live_server.url}/")
    page.goto("/catalog?domain=hcc")
    expect(page.locator("section.catalog-domain h2")).to_have_count(1)
    row = page.locator(f'tr[data-indicator="{RATE}"]')
    expect(row).to_contain_text("Trung tâm Phục vụ hành chính công")  # the owner, under the name on a phone
    expect(row.locator("td").nth(3)).to_be_hidden()
    wait_for_fonts(page)
    no_sideways_scroll(page)
    page.screenshot(path=ARTIFACTS / "catalog-390x844.png", full_page=True)

    page.goto(f"/catalog/{RATE}")
    chart_drawn(page, len(MONTHS))
    expect(page.locator("#edit")).to_have_count(0)
    expect(page.locator("table.communes tbody tr")).to_have_count(3)
    wait_for_fonts(page)
    no_sideways_scroll(page)
    page.screenshot(path=ARTIFACTS / "catalog-indicator-390x844.png", full_page=True)

    page.locator("#lang-switch").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dossiers resolved on time (%)")
    chart_drawn(page, len(MONTHS))
    summary = re.compile(r"latest 98\.65% \(period 2026-10\)")
    expect(page.locator("#history-chart")).to_have_attribute("aria-label", summary)
    page.locator("#lang-switch").click()  # back to Vietnamese for the next test's cookie-free context
