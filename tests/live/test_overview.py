"""The overview at /: a card per subsystem with headline figures judged against target and thresholds, in words;
the province's counts; the full table still below; the cards' partial for live refreshes."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from cityops.alerts import service as alerts
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import AgencyKey, login


def figure(html: str, code: str) -> str:
    found = re.search(rf'data-figure="{re.escape(code)}">(.*?)</li>', html, flags=re.S)
    assert found, code
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found[1])).strip()


def test_the_overview_shows_figures_against_target_with_words_and_the_counts(
    client: TestClient, database: Database, clock: FrozenClock, personas: dict[str, str], hcc_key: AgencyKey
) -> None:
    sent = client.post(
        "/api/v1/observations",
        headers=hcc_key.headers,
        json={
            "observations": [{"indicator": "hcc.ty_le_dung_han", "subject": "40", "period": "2026-10", "value": 92.5}]
        },
    )
    assert sent.status_code == 200, sent.text
    with database.writing() as session:
        alerts.fire(
            session,
            "test:critical",
            clock(),
            kind="feed_late",
            title_vi="Mất tín hiệu",
            title_en="Signal lost",
            severity="critical",
        )
    login(client, "leader")
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Tổng quan tỉnh</h1>" in html
    assert len(re.findall(r'<article class="ov-card', html)) == 9
    assert 'href="/boards/hcc"' in html and 'href="/boards/yte"' in html
    rate = figure(html, "hcc.ty_le_dung_han")  # warning below 95, critical below 90: 92,5 is to watch
    assert "92,5" in rate and "%" in rate and "Cần theo dõi" in rate and "Mục tiêu 99" in rate, rate
    assert "cập nhật 0 phút trước" in rate, rate
    assert "Chưa có số liệu" in html  # the figures nobody sent yet say so in words
    stat = re.search(r'data-stat="alerts">(.*?)</li>', html, flags=re.S)
    assert stat and "1" in stat[1] and "1 nghiêm trọng" in stat[1], stat
    # The full table is still there, below.
    assert 'data-indicator="hcc.ty_le_dung_han"' in html and "Các chỉ tiêu và giá trị mới nhất" in html

    clock.advance(timedelta(days=120))  # a monthly figure received four months ago looks stale
    login(client, "leader")  # the session of four months ago has ended
    partial = client.get("/partials/overview", params={"lang": "en"})
    assert partial.status_code == 200 and "<html" not in partial.text
    rate = figure(partial.text, "hcc.ty_le_dung_han")
    assert "Watch" in rate and "Target 99" in rate and "updated 120 days ago" in rate and "stale" in rate, rate
    assert 'class="ov-figure status-watch stale"' in partial.text
