"""The map (`/map`) in headless Chromium: the province's boundary drawn as an SVG path with no tile service, the
communes and clustered layers as markers reachable with the keyboard, a layer switched off in the layer control,
and a marker's popup saying its status in words — with every file from the app itself (the watch of
tests/web/test_browser.py fails on a console error, a failed request or any other host)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
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

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import SYSTEM
from cityops.alerts import service as alerts_service
from cityops.geo.models import Place, Subject
from cityops.incidents import service as incidents_service
from conftest import START

pytestmark = pytest.mark.browser


def _seed(server: LiveServer) -> None:
    """A tourist site, an incident with its own point and a critical alert firing on another commune."""
    with server.backend.database.writing() as session:
        communes = list(
            session.scalars(
                select(Subject).where(Subject.kind == "commune", Subject.latitude.is_not(None)).order_by(Subject.code)
            )
        )
        site, other = communes[0], communes[-1]
        session.add(
            Place(
                code="map_site",
                kind="tourist_site",
                name_vi="Khu di tích Kim Liên",
                name_en="Kim Lien relic site",
                latitude=site.latitude,
                longitude=site.longitude,
                commune_id=site.id,
                created_at=START,
                updated_at=START,
            )
        )
        incidents_service.create_incident(
            session,
            Principal(role="operator", label="operator"),
            SYSTEM,
            START,
            title="Cây đổ chắn đường",
            severity="high",
            agency_code="so_y_te",
            latitude=(other.latitude or 0) + 0.01,
            longitude=(other.longitude or 0) + 0.01,
        )
        agency = session.scalar(select(Agency.id).where(Agency.code == "so_y_te"))
        alerts_service.fire(
            session,
            "map:browser",
            START,
            kind="threshold",
            title_vi="Ca sốt xuất huyết vượt ngưỡng",
            title_en="Dengue cases over the threshold",
            severity="critical",
            agency_id=agency,
            subject_id=site.id,
        )


def test_the_map_draws_the_boundary_layers_and_popups_without_tiles(
    open_page: Callable[..., Page],  # noqa: F811
    leader_state: Any,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
) -> None:
    _seed(live_server)
    page = open_page(state=leader_state)
    page.goto("/map")
    expect(page.locator("h1")).to_have_text("Bản đồ")
    boundary = page.locator(".leaflet-overlay-pane svg path")
    expect(boundary).to_have_count(1)
    assert len(boundary.get_attribute("d") or "") > 100  # the province's outline, not a dot
    assert page.locator(".leaflet-tile").count() == 0  # no tile service by default
    expect(page.locator(".map-marker.map-communes").first).to_be_visible()
    assert page.locator(".map-marker.map-communes").count() > 100

    control = page.locator(".leaflet-control-layers")
    expect(control).to_contain_text("Điểm du lịch")
    expect(page.locator(".map-marker.map-tourist_sites")).to_have_count(1)
    control.get_by_label("Điểm du lịch").uncheck()  # a checkbox: reachable with Tab and Space
    expect(page.locator(".map-marker.map-tourist_sites")).to_have_count(0)
    control.get_by_label("Xã, phường").uncheck()
    expect(page.locator(".map-marker.map-communes")).to_have_count(0)

    incident = page.locator(".map-marker.map-incidents")
    expect(incident).to_have_count(1)
    assert incident.get_attribute("tabindex") == "0"  # markers are in the keyboard order
    incident.focus()
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_contain_text("Cây đổ chắn đường")
    expect(popup).to_contain_text("Trạng thái")
    expect(popup).to_contain_text("Mới")
    expect(popup).to_contain_text("Cao")
    expect(popup.locator("a")).to_have_attribute("href", re.compile(r"^/incidents/\d+$"))

    page.keyboard.press("Escape")  # closes the popup
    expect(popup).to_have_count(0)
    page.locator(".map-marker.map-alerts").click()
    expect(popup).to_contain_text("Đang kích hoạt")
    expect(popup).to_contain_text("Nghiêm trọng")

    page.locator("#map-indicator").select_option("antt.camera")
    expect(page.locator("#map-legend")).to_contain_text("Chưa có số liệu")
    wait_for_fonts(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "map-desktop.png", full_page=True)

    phone = open_page(phone=True, state=leader_state)
    phone.goto("/map?lang=en")
    toggle = phone.get_by_role("button", name="Map layers")  # folded on a phone
    toggle.focus()
    phone.keyboard.press("Enter")
    expect(phone.get_by_label("Tourist sites")).to_be_visible()
    expect(phone.locator(".leaflet-overlay-pane svg path")).to_have_count(1)
    no_sideways_scroll(phone)
    readable_contrast(phone)
    phone.screenshot(path=ARTIFACTS / "map-phone.png", full_page=True)
