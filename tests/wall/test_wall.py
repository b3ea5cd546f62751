"""The video wall over the real HTTP stack, on SQLite and PostgreSQL: the default layout (made once), each tile's
content and how fresh it is, the operators' layout form (checks, 422 with what was typed, CSRF, audit), and the
critical-alert highlight on the tiles that show what the alert is about — and on no other."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts.models import AuditEntry
from cityops.alerts import service as alerts
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.wall.models import WallLayout
from conftest import AgencyKey, count_rows, login


def text_of(page: str) -> str:
    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S))
    return " ".join(html.unescape(without_tags).split())


def tile_body(page: str, position: int) -> str:
    """The HTML of one tile of the wall page."""
    found = re.search(rf'<section class="tile" id="tile-{position}".*?</section>', page, flags=re.S)
    assert found is not None, f"no tile {position}"
    return found[0]


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def layout_form(token: str, **changes: str) -> dict[str, str]:
    """The setup form as a browser sends it: overview everywhere, 30 s, with the given fields changed."""
    data = {"csrf_token": token}
    for n in range(1, 10):
        data[f"t{n}_v1"] = "overview"
        data[f"t{n}_rotate"] = "30"
    data.update(changes)
    return data


def test_the_default_wall_is_made_once_and_its_tiles_show_fresh_then_stale_figures(
    client: TestClient, database: Database, personas: dict[str, str], clock: FrozenClock, hcc_key: AgencyKey
) -> None:
    assert client.get("/wall", follow_redirects=False).status_code == 303  # log-in first
    login(client, "leader")
    answer = client.post(
        "/api/v1/observations",
        headers=hcc_key.headers,
        json={
            "observations": [{"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": 12345}]
        },
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    wall = client.get("/wall")
    assert wall.status_code == 200
    assert count_rows(database, "wall_layouts") == 1
    for position in range(1, 10):
        assert f'id="tile-{position}"' in wall.text
    assert "Y tế" in text_of(tile_body(wall.text, 4)) and "Hành chính công" in text_of(tile_body(wall.text, 5))
    ninth = tile_body(wall.text, 9)
    assert 'data-views="5"' in ninth and 'data-rotate="30"' in ninth and "1/5" in text_of(ninth)
    # The public-service tile shows the value the way Vietnamese write it, fresh.
    hcc = text_of(tile_body(wall.text, 5))
    assert "12.345" in hcc and "Hồ sơ tiếp nhận" in hcc and "cập nhật vừa xong" in hcc and "Dữ liệu cũ" not in hcc
    # The rotation's next views, by index, wrapping round.
    assert "Giáo dục" in text_of(client.get("/wall/tile/9/content?view=1").text)
    assert "Kinh tế" in text_of(client.get("/wall/tile/9/content?view=5").text)
    # Every request after the first finds the layout: still one.
    assert client.get("/wall/tile/5").status_code == 200
    assert count_rows(database, "wall_layouts") == 1
    assert client.get("/wall/tile/10").status_code == 404
    beat = client.get("/wall/heartbeat").json()
    assert beat["version"] and beat["started"]

    clock.advance(timedelta(minutes=42))
    assert "cập nhật 42 phút trước" in text_of(client.get("/wall/tile/5/content").text)
    clock.advance(timedelta(days=70))
    login(client, "leader")  # the session of 70 days ago has expired
    stale = client.get("/wall/tile/5/content?lang=en").text
    assert "is-stale" in stale and "Stale data" in text_of(stale) and "updated 70 days ago" in text_of(stale)
    # A leader watches the wall but does not arrange it; a citizen does neither.
    assert client.get("/wall/setup").status_code == 403
    login(client, "citizen")
    assert client.get("/wall").status_code == 403


def test_operators_arrange_the_wall_with_a_checked_and_audited_form(
    client: TestClient, database: Database, personas: dict[str, str]
) -> None:
    login(client, "operator")
    page = client.get("/wall/setup")
    assert page.status_code == 200
    token = form_token(page.text)
    assert 'value="board:yte" selected' in page.text  # the default layout, created on first sight

    wrong = client.post(
        "/wall/setup",
        data=layout_form(
            token,
            t4_v1="board:khong_co",
            t9_v1="indicator",
            t9_v1_code="yte.khong_co",
            t6_rotate="2",
            t7_rotate="mười",
        ),
    )
    assert wrong.status_code == 422
    shown = text_of(wrong.text)
    assert "Không có phân hệ «khong_co»" in shown
    assert "Không có chỉ tiêu mã «yte.khong_co»" in shown
    assert shown.count("Số giây phải là số nguyên từ 5 đến 3600") == 4  # in the summary and by each field
    assert 'value="yte.khong_co"' in wrong.text and 'value="mười"' in wrong.text  # what was typed stays
    assert 'id="t4_v1" name="t4_v1" aria-invalid="true"' in wrong.text
    with database.reading() as session:
        layout = session.scalars(select(WallLayout)).one()
        assert layout.tiles[3]["views"] == [{"kind": "board", "domain": "yte"}]
        assert not session.scalars(select(AuditEntry).where(AuditEntry.action == "wall.update")).all()

    assert client.post("/wall/setup", data=layout_form("forged")).status_code == 403

    good = client.post(
        "/wall/setup",
        data=layout_form(
            token,
            t9_v1="indicator",
            t9_v1_code="yte.ty_le_tiem_chung_day_du",
            t9_v2="board:giaoduc",
            t9_v3="map",
            t9_rotate="12",
        ),
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/wall/setup?saved=1"
    assert "Đã lưu bố trí" in client.get("/wall/setup?saved=1").text
    with database.reading() as session:
        layout = session.scalars(select(WallLayout)).one()
        assert layout.tiles[8] == {
            "position": 9,
            "views": [
                {"kind": "indicator", "code": "yte.ty_le_tiem_chung_day_du"},
                {"kind": "board", "domain": "giaoduc"},
                {"kind": "map"},
            ],
            "rotate_seconds": 12,
        }
        assert layout.updated_by == "operator"
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "wall.update")).all()
        assert entry.actor == "operator" and entry.entity_id == "default" and 9 in entry.details["changed"]
    ninth = tile_body(client.get("/wall").text, 9)
    assert 'data-views="3"' in ninth and 'data-rotate="12"' in ninth
    assert "tiêm chủng" in text_of(ninth)
    assert "<svg" in client.get("/wall/tile/9/content?view=2").text  # the map, drawn on the server


def _fire(database: Database, now: Any, key: str, severity: str, indicator: str) -> None:
    with database.writing() as session:
        alerts.fire(
            session,
            key,
            now,
            kind="threshold",
            severity=severity,
            title_vi=f"Chỉ tiêu {indicator} vượt ngưỡng",
            title_en=f"{indicator} over its threshold",
            details={"indicator": indicator},
        )


def test_a_critical_alert_highlights_the_tiles_that_show_its_subsystem_and_no_other(
    client: TestClient, database: Database, personas: dict[str, str], clock: FrozenClock
) -> None:
    login(client, "operator")
    _fire(database, clock(), "test:hcc-warning", "warning", "hcc.ty_le_dung_han")
    calm = client.get("/wall").text
    assert "is-critical" not in calm and "CẢNH BÁO NGHIÊM TRỌNG" not in calm  # a warning is not highlighted

    _fire(database, clock(), "test:yte-critical", "critical", "yte.ty_le_tiem_chung_day_du")
    wall = client.get("/wall").text
    highlighted = [n for n in range(1, 10) if "is-critical" in tile_body(wall, n)]
    assert highlighted == [2, 4]  # the alerts tile and the health board; not public services, not the others
    assert "⚠ CẢNH BÁO NGHIÊM TRỌNG" in text_of(tile_body(wall, 4))
    assert "Chỉ tiêu yte.ty_le_tiem_chung_day_du vượt ngưỡng" in text_of(tile_body(wall, 2))
    # The partial wall.js swaps in after an alerts event carries it too; once resolved, it is gone.
    assert "is-critical" in client.get("/wall/tile/4/content").text
    assert "is-critical" not in client.get("/wall/tile/5/content").text
    with database.writing() as session:
        alerts.resolve(session, "test:yte-critical", clock())
    assert "is-critical" not in client.get("/wall/tile/4/content").text
