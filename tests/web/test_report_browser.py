"""A citizen's report in a real browser on a phone: the public form with no log-in, a point tapped on the map
(ECharts, drawn from the app's own files), a photo, the tracking code and the public page — in Vietnamese, without
sideways scrolling, and with nothing fetched from another host (the watch of tests/web/test_browser.py)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import select
from test_browser import (  # noqa: F401 — fixtures shared with the shell's browser tests
    ARTIFACTS,
    LiveServer,
    Watch,
    browser,
    live_server,
    no_sideways_scroll,
    open_page,
    readable_contrast,
    wait_for_fonts,
    watch,
)

from cityops.feedback.models import Report

pytestmark = pytest.mark.browser


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 140, 90)).save(out, "JPEG")
    return out.getvalue()


def test_a_citizen_reports_from_a_phone_with_a_tap_on_the_map_and_a_photo(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
) -> None:
    page = open_page(phone=True)
    page.goto(f"{live_server.url}/report")
    expect(page.locator("h1")).to_contain_text("phản ánh", ignore_case=True)
    expect(page.locator("#privacy-notice")).to_be_visible()
    page.locator("#category").select_option(index=1)
    for question in page.locator(".fb-attributes:not([hidden]) select").all():  # the category's own questions
        question.select_option(index=1)
    page.locator("#description").fill("Ổ gà lớn giữa đường, xe máy đi qua dễ ngã, nhất là khi trời mưa và tối.")
    page.locator("#place_text").fill("Trước chợ Vinh, đường Cao Thắng")
    chart = page.locator("#report-map")
    expect(chart).to_be_visible()
    page.wait_for_function("() => document.querySelector('#report-map canvas') !== null")
    box = chart.bounding_box()
    assert box is not None
    chart.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.55})  # scrolled into view first
    expect(page.locator("#point-chosen")).to_be_visible()
    assert page.locator("#latitude").input_value() and page.locator("#longitude").input_value()
    page.locator("#photos").set_input_files([{"name": "o-ga.jpg", "mimeType": "image/jpeg", "buffer": photo()}])
    no_sideways_scroll(page)
    page.locator("button.fb-submit").click()

    expect(page).to_have_url(re.compile(r"/report/PA-[A-Z0-9-]+\?new=1$"))
    code = page.url.rsplit("/", 1)[1].split("?")[0]
    expect(page.locator("body")).to_contain_text(code)
    expect(page.locator("body")).to_contain_text("Ổ gà lớn giữa đường")
    expect(page.locator("img").first).to_be_visible()
    wait_for_fonts(page)
    no_sideways_scroll(page)
    readable_contrast(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-phone.png", full_page=True)
    with live_server.backend.database.reading() as session:
        report = session.scalar(select(Report).where(Report.tracking_code == code))
        assert report is not None and report.latitude is not None and report.incident_id is not None
