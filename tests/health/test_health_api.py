"""The data-health API and pages as each persona sees them: the ranking for everyone who reads data, the rows behind
a feed's scores only for province-wide roles and the feed's own agency, restricted values hidden from the others."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from health_support import VISITS, communes, item, local, make_feed, send, tick

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import AgencyKey, login

HEALTH_FEED = "yte_kham_ngay"  # Sở Y tế (officer_a's agency): daily, goes late
SCHOOL_FEED = "giaoduc_tot_nghiep"  # Sở GD&ĐT (officer_b's): no schedule, clean data
POLICE_FEED = "antt_camera"  # Công an tỉnh: nothing received yet
CAMERAS = "antt.camera"  # restricted to its owner, Công an tỉnh
GRADUATION = "giaoduc.ty_le_tot_nghiep"


@pytest.fixture
def scene(database: Database, clock: FrozenClock, personas: dict[str, str]) -> dict[str, Any]:
    """Three agencies' feeds; at 28/11 17:01 the health feed's 28/11 is late."""
    [(commune, name)] = communes(database, 1)
    make_feed(
        database,
        clock(),
        HEALTH_FEED,
        [VISITS, CAMERAS],
        cadence="daily by 17:00",
        coverage="list",
        subjects=[commune],
    )
    make_feed(database, clock(), SCHOOL_FEED, [GRADUATION], agency="so_gd_dt")
    make_feed(database, clock(), POLICE_FEED, [CAMERAS], agency="cong_an_tinh")
    clock.current = local(2026, 11, 27, 12)
    send(
        database,
        HEALTH_FEED,
        clock(),
        item(VISITS, commune, "2026-11-27", 42),
        item(CAMERAS, commune, "2026-11-27T04:00:00Z", -1),  # refused: below zero (a restricted indicator)
    )
    send(database, SCHOOL_FEED, clock(), item(GRADUATION, "40", "2025-2026", 97.5))
    clock.current = local(2026, 11, 28, 17, 1)
    tick(database, clock())
    return {"commune": commune, "commune_name": name}


def _get(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_everyone_who_reads_data_sees_the_ranking_worst_first(client: TestClient, scene: dict[str, Any]) -> None:
    for persona in ("admin", "leader", "officer_a", "officer_b"):
        client.cookies.clear()
        login(client, persona)
        ranking = _get(client, "/api/v1/data-health")
        assert [agency["code"] for agency in ranking["agencies"]] == ["so_y_te", "so_gd_dt", "cong_an_tinh"]
        health, school, police = ranking["agencies"]
        # Health: đúng 1 of 2, đủ 1 of 2 cells, sạch 1 of 1, sống 1 of 2 periods → overall 62.5.
        assert health["scores"] == {
            "correct": 50.0,
            "complete": 50.0,
            "clean": 100.0,
            "alive": 50.0,
            "overall": 62.5,
        }
        assert health["state"] == "late"
        [feed] = health["feeds"]
        assert (feed["code"], feed["state"], feed["late_now"], feed["scheduled"]) == (HEALTH_FEED, "late", 1, True)
        assert feed["cadence_vi"] == "hằng ngày trước 17:00"
        # School: no schedule (no đủ, no sống); what was sent is correct and clean.
        assert school["scores"] == {
            "correct": 100.0,
            "complete": None,
            "clean": 100.0,
            "alive": None,
            "overall": 100.0,
        }
        assert school["state"] == "unscheduled"
        assert police["scores"]["overall"] is None  # nothing to judge: last
        details = {feed["code"]: feed["details"] for agency in ranking["agencies"] for feed in agency["feeds"]}
        expected = {
            "admin": {HEALTH_FEED: True, SCHOOL_FEED: True, POLICE_FEED: True},
            "leader": {HEALTH_FEED: True, SCHOOL_FEED: True, POLICE_FEED: True},
            "officer_a": {HEALTH_FEED: True, SCHOOL_FEED: False, POLICE_FEED: False},
            "officer_b": {HEALTH_FEED: False, SCHOOL_FEED: True, POLICE_FEED: False},
        }[persona]
        assert details == expected, persona


def test_no_ranking_without_reading_rights(client: TestClient, scene: dict[str, Any]) -> None:
    anonymous = client.get("/api/v1/data-health")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
    login(client, "citizen")
    for path in ("/api/v1/data-health", f"/api/v1/feeds/{HEALTH_FEED}/trust", f"/api/v1/indicators/{VISITS}/trust"):
        answer = client.get(path)
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden", path


def test_a_feeds_rows_are_for_its_own_agency_and_province_wide_roles(
    client: TestClient, scene: dict[str, Any], hcc_key: AgencyKey
) -> None:
    path = f"/api/v1/feeds/{HEALTH_FEED}/trust"
    login(client, "officer_a")
    own = _get(client, path)
    assert own["feed"]["agency"] == {"code": "so_y_te", "name_vi": "Sở Y tế", "name_en": "Department of Health"}
    assert [(row["indicator"], row["subject"], row["period"]) for row in own["complete"]["missing_rows"]] == [
        (VISITS, scene["commune"], "2026-11-28")
    ]
    assert own["complete"]["missing_rows"][0]["subject_name_vi"] == scene["commune_name"]
    assert [row["state"] for row in own["alive"]["late_rows"]] == ["missing"]
    [rejected] = own["correct"]["rejected_rows"]
    # The camera count is restricted to the police: the kind of fault shows, not the value nor a message quoting it.
    assert (rejected["indicator"], rejected["code"], rejected["hidden"]) == (CAMERAS, "value_out_of_range", True)
    assert rejected["item"] is None and rejected["message_vi"] is None and rejected["message_en"] is None

    for persona in ("admin", "leader"):
        client.cookies.clear()
        login(client, persona)
        full = _get(client, path)
        [seen] = full["correct"]["rejected_rows"]
        assert seen["hidden"] is False and '"value":-1' in seen["item"], persona
        assert "-1" in seen["message_vi"] and "-1" in seen["message_en"], persona
        assert full["complete"]["missing"] == 1

    client.cookies.clear()
    login(client, "officer_b")
    other = client.get(path)
    assert other.status_code == 404
    problem = other.json()
    assert problem["code"] == "feed_not_found" and HEALTH_FEED in problem["message_vi"] and problem["message_en"]
    assert _get(client, f"/api/v1/feeds/{SCHOOL_FEED}/trust")["correct"]["accepted"] == 1
    unknown = client.get("/api/v1/feeds/khong_co/trust")
    assert unknown.status_code == 404 and unknown.json()["code"] == "feed_not_found"

    client.cookies.clear()
    key_view = client.get(path, headers=hcc_key.headers)  # another agency's system
    assert key_view.status_code == 404
    assert client.get("/api/v1/data-health", headers=hcc_key.headers).status_code == 200


def test_an_indicator_pools_its_feeds_and_lists_only_the_readers_rows(
    client: TestClient, scene: dict[str, Any]
) -> None:
    login(client, "officer_a")
    visits = _get(client, f"/api/v1/indicators/{VISITS}/trust")
    assert visits["indicator"]["code"] == VISITS
    assert (visits["complete"]["expected"], visits["complete"]["received"]) == (2, 1)
    assert visits["scores"]["complete"] == 50.0 and visits["scores"]["correct"] == 100.0
    assert [row["period"] for row in visits["complete"]["missing_rows"]] == ["2026-11-28"]
    assert [feed["code"] for feed in visits["feeds"]] == [HEALTH_FEED]

    client.cookies.clear()
    login(client, "officer_b")
    seen_by_b = _get(client, f"/api/v1/indicators/{VISITS}/trust")
    assert seen_by_b["scores"] == visits["scores"]  # the same figures …
    assert seen_by_b["complete"]["missing_rows"] == []  # … without another agency's rows
    hidden = client.get(f"/api/v1/indicators/{CAMERAS}/trust")  # restricted: not the officer's to see
    assert hidden.status_code == 404 and hidden.json()["code"] == "unknown_indicator"

    client.cookies.clear()
    login(client, "admin")
    cameras = _get(client, f"/api/v1/indicators/{CAMERAS}/trust")
    assert [feed["code"] for feed in cameras["feeds"]] == [POLICE_FEED, HEALTH_FEED]
    assert (cameras["correct"]["accepted"], cameras["correct"]["rejected"], cameras["scores"]["correct"]) == (0, 1, 0)
    assert cameras["complete"]["applicable"] is False  # instant cameras are not expected of a daily feed


def test_the_window_is_chosen_with_from_and_to_and_a_bad_one_is_explained(
    client: TestClient, scene: dict[str, Any]
) -> None:
    login(client, "admin")
    path = f"/api/v1/feeds/{HEALTH_FEED}/trust"
    only_28 = _get(client, path, **{"from": "2026-11-28"})
    assert (only_28["complete"]["expected"], only_28["complete"]["received"]) == (1, 0)
    assert only_28["correct"]["score"] is None  # nothing was received from 28/11 on
    only_27 = _get(client, path, **{"from": "2026-11-27", "to": "2026-11-27"})
    assert only_27["window"]["to"] == "2026-11-27T16:59:59.999999+00:00"  # the whole of 27/11, Hà Nội time
    assert (only_27["complete"]["expected"], only_27["complete"]["received"]) == (1, 1)
    assert only_27["alive"]["score"] == 100.0
    for params in ({"from": "hôm qua"}, {"from": "2026-11-28", "to": "2026-11-01"}, {"from": "2024-01-01"}):
        answer = client.get(path, params=params)
        assert answer.status_code == 422, params
        problem = answer.json()
        assert problem["code"] == "health_invalid_window"
        assert "Khoảng thời gian" in problem["message_vi"] and "window" in problem["message_en"]
    assert client.get("/api/v1/data-health", params={"to": "x"}).json()["code"] == "health_invalid_window"


def test_the_pages_rank_agencies_and_show_an_officer_exactly_what_is_missing(
    client: TestClient, scene: dict[str, Any]
) -> None:
    anonymous = client.get("/data-health", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    login(client, "officer_a")
    page = client.get("/data-health")
    assert page.status_code == 200
    html = page.text
    assert "Sức khỏe dữ liệu" in html and "Trễ hạn" in html and "Không đặt lịch" in html
    assert "62,5%" in html and "Kém" in html  # the health agency's overall score, with its word
    assert f'href="/data-health/feeds/{HEALTH_FEED}?days=30"' in html
    assert f'href="/data-health/feeds/{SCHOOL_FEED}' not in html  # another agency's rows: no link
    assert html.index('data-agency="so_y_te"') < html.index('data-agency="so_gd_dt"')
    assert client.get("/data-health?days=7").status_code == 200
    assert 'aria-current="true">7 ngày' in client.get("/data-health?days=7").text

    detail = client.get(f"/data-health/feeds/{HEALTH_FEED}")
    assert detail.status_code == 200
    text = detail.text
    assert scene["commune_name"] in text and "28/11/2026" in text and "28/11/2026 17:00" in text
    assert "Còn thiếu 1 trên 2 ô số liệu phải nộp" in text
    assert "Bị ẩn (chỉ tiêu hạn chế)" in text  # the restricted camera count's value

    english = client.get(f"/data-health/feeds/{HEALTH_FEED}?lang=en")
    assert "Missing" in english.text and "1 of 2 expected cells are missing" in english.text
    assert "Late" in client.get("/data-health").text  # the language stays chosen

    client.cookies.clear()
    login(client, "officer_b")
    refused = client.get(f"/data-health/feeds/{HEALTH_FEED}?lang=vi")
    assert refused.status_code == 404
    assert f"Không có nguồn dữ liệu “{HEALTH_FEED}” mà bạn được xem chi tiết." in refused.text


def test_the_feed_page_lists_rejections_and_flagged_values_the_vietnamese_way(
    client: TestClient, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    [(commune, name)] = communes(database, 1)
    make_feed(database, clock(), "yte_kham", [VISITS])
    week = [1200, 1240, 1180, 1210, 1190, 1230]
    send(
        database,
        "yte_kham",
        clock() - timedelta(days=10),
        *(item(VISITS, commune, f"2026-11-{day}", value) for day, value in zip(range(11, 17), week, strict=True)),
    )
    send(
        database,
        "yte_kham",
        clock() - timedelta(hours=5),
        item(VISITS, commune, "2026-11-25", 12500.5),  # a slipped decimal point
        item(VISITS, commune, "2026-11-24", 1205),
        item(VISITS, commune, "2026-11-23", -3),
    )
    send(database, "yte_kham", clock() - timedelta(hours=2), item(VISITS, commune, "2026-11-24", 1250))
    login(client, "admin")
    page = client.get("/data-health/feeds/yte_kham?days=7")
    assert page.status_code == 200
    text = page.text
    assert "1 mục bị từ chối, kèm lý do" in text and "-3" in text  # the reason quotes the value
    assert "Gửi lại khác số sau khi kỳ đã kết thúc (1)" in text
    assert "1.205" in text and "1.250" in text  # old and new, grouped the Vietnamese way
    assert "Giá trị bất thường (1)" in text and "12.500,5" in text and name in text
    assert "25/11/2026" in text
    assert "Không áp dụng: nguồn dữ liệu này không đặt lịch gửi." in text  # no cadence: no đủ, no sống
