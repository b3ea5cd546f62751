"""The video wall in Chromium at 5760×3240 (nine 1920×1080 screens): nine tiles of exactly one third each, dark,
Vietnamese type loaded from the app's own fonts, a rotating tile that changes view by itself, no console error."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from test_browser import (  # noqa: F401 — fixtures shared with the shell's browser tests
    ARTIFACTS,
    LiveServer,
    Watch,
    browser,
    leader_state,
    live_server,
    open_page,
    readable_contrast,
    wait_for_fonts,
    watch,
)

from cityops.wall import service as wall

pytestmark = pytest.mark.browser


def test_the_wall_fills_nine_screens_and_rotates_by_itself(
    open_page: Callable[..., Page],  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    leader_state: Any,  # noqa: F811
) -> None:
    with live_server.backend.database.writing() as session:
        layout = wall.ensure_default(session, datetime.now().astimezone())
        tiles = wall.normalise(layout.tiles)
        tiles[8]["rotate_seconds"] = 5  # a short rotation for the test
        layout.tiles = tiles
    page = open_page(state=leader_state)
    page.set_viewport_size({"width": 5760, "height": 3240})
    page.goto("/wall")
    expect(page.locator(".tile")).to_have_count(9)
    wait_for_fonts(page)
    for index in range(9):
        box = page.locator(f"#tile-{index + 1}").bounding_box()
        assert box is not None
        assert (box["x"], box["y"], box["width"], box["height"]) == (
            1920 * (index % 3),
            1080 * (index // 3),
            1920,
            1080,
        ), f"tile {index + 1}: {box}"
    headline = page.locator("#tile-2 .figure-value").first
    assert float(headline.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 96
    label = page.locator("#tile-4 .tile-updated")
    assert float(label.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 32
    expect(page.locator("#tile-4 h2")).to_have_text("Y tế")
    assert page.evaluate("document.fonts.check('700 60px \"Noto Sans\"', 'Y tế Hành chính công Đạt')")
    ninth = page.locator("#tile-9 .tile-body")
    expect(ninth).to_have_attribute("data-view", "0")
    first_title = page.locator("#tile-9 h2").inner_text()
    expect(ninth).to_have_attribute("data-view", "1", timeout=9_000)
    assert page.locator("#tile-9 h2").inner_text() != first_title
    assert page.locator("#tile-9 .tile-body").count() == 1  # replaced, not appended

    readable_contrast(page)  # the dark theme too
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "wall-5760x3240.png"
    page.screenshot(path=target, scale="css", type="png")
    if target.stat().st_size > 8_000_000:  # keep the artefact small enough to look at
        with Image.open(target) as image:
            image.resize((1920, 1080)).save(target)
    assert target.stat().st_size > 10_000

    single = open_page(state=leader_state)
    single.set_viewport_size({"width": 1920, "height": 1080})
    single.goto("/wall/tile/4")
    box = single.locator("#tile-4").bounding_box()
    assert box is not None and (box["width"], box["height"]) == (1920, 1080)
    expect(single.locator(".wall-clock")).to_be_visible()
