"""Statistics of citizen reports, the live list and map, and the feedback indicators fed from the reports — over
the real HTTP stack, on both databases. Reports are filed with `submit_report` and handled by the operator through
the incidents API, as in real life."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.catalog.models import Indicator
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.feedback import service, stats
from cityops.feedback.models import Report
from cityops.feeds.models import Feed
from cityops.geo.models import Subject
from cityops.observations.models import Observation
from conftest import Backend, csrf_header, login

NAME, PHONE, EMAIL = "Trần Thị Mai", "0912345678", "mai.tran@example.vn"


@dataclass(frozen=True)
class Filed:
    id: int
    code: str
    incident_id: int


def _communes(database: Database) -> list[tuple[str, float, float]]:
    with database.reading() as session:
        rows = session.execute(
            select(Subject.code, Subject.latitude, Subject.longitude)
            .where(Subject.kind == "commune", Subject.latitude.is_not(None))
            .order_by(Subject.code)
            .limit(2)
        ).all()
    return [(code, float(lat), float(lon)) for code, lat, lon in rows]


def _file(
    backend: Backend,
    clock: FrozenClock,
    category: str,
    commune: tuple[str, float, float],
    description: str,
    *,
    contact: bool = False,
) -> Filed:
    code, latitude, longitude = commune
    submission = service.Submission(
        category_code=category,
        description=description,
        latitude=latitude,
        longitude=longitude,
        subject_code=code,
        place_text="Đường Lê Lợi",
        contact=service.ContactIn(name=NAME, phone=PHONE, email=EMAIL) if contact else service.ContactIn(),
        attributes={"muc_do": "high"} if category == "o_ga_hu_hong_duong" else {},
    )
    with backend.database.writing() as session:
        report = service.submit_report(session, backend.settings, clock(), submission)
        assert report.incident_id is not None
        return Filed(report.id, report.tracking_code, report.incident_id)


def _move(client: TestClient, headers: dict[str, str], filed: Filed, *statuses: str) -> None:
    for status in statuses:
        reason = "Đã kiểm tra tại chỗ và xử lý xong." if status in ("resolved", "rejected") else ""
        answer = client.post(
            f"/api/v1/incidents/{filed.incident_id}/status", json={"status": status, "reason": reason}, headers=headers
        )
        assert answer.status_code == 200, answer.text


def _rate(database: Database, clock: FrozenClock, filed: Filed, rating: int) -> None:
    with database.writing() as session:
        service.rate(session, clock(), filed.code, rating)


def _operator(client: TestClient, app: Any) -> dict[str, str]:
    login(client, "operator")
    client.get("/")
    return csrf_header(client, app)


def test_statistics_count_reports_by_status_category_agency_commune_and_result(
    backend: Backend, client: TestClient, app: Any, clock: FrozenClock, personas: dict[str, str]
) -> None:
    first, second = _communes(backend.database)
    pothole = _file(backend, clock, "o_ga_hu_hong_duong", first, "Ổ gà lớn trước số 12 đường Lê Lợi, xe máy dễ ngã.")
    food = _file(backend, clock, "an_toan_thuc_pham", second, "Quán cơm gần chợ mất vệ sinh, có chuột trong bếp.")
    rubbish = _file(backend, clock, "rac_thai_ve_sinh", first, "Rác thải tập kết gần trường không được thu gom.")
    lamp = _file(backend, clock, "den_chieu_sang", second, "Cả dãy đèn đường gần ngã ba không sáng buổi tối.")
    headers = _operator(client, app)
    clock.advance(timedelta(hours=1))
    _move(client, headers, pothole, "in_progress", "resolved")  # answered after 1 hour, on time
    _move(client, headers, rubbish, "rejected")  # rejected after 1 hour
    waiting = _file(backend, clock, "an_toan_thuc_pham", first, "Hàng rong trước cổng trường bán đồ ăn không rõ nguồn.")
    clock.advance(timedelta(hours=1))
    _move(client, headers, lamp, "in_progress", "resolved")  # after 2 hours, on time
    clock.advance(timedelta(days=10))
    headers = _operator(client, app)  # a new session: the first has expired
    _move(client, headers, food, "in_progress", "resolved")  # after 10 days and 2 hours: late
    _rate(backend.database, clock, pothole, 2)
    _rate(backend.database, clock, food, 5)

    body = client.get("/api/v1/feedback/stats").json()
    assert (body["total"], body["open"], body["closed"]) == (5, 1, 4)
    assert body["results"] == {"on_time": 2, "late": 1, "rejected": 1, "open": 1, "other": 0}
    assert body["on_time_rate"] == 66.7 and body["satisfaction_rate"] == 50.0
    assert (body["rated"], body["satisfied"], body["not_satisfied"]) == (2, 1, 1)
    assert body["handling"]["resolved"] == 3 and body["handling"]["rejected"] == 1 and body["handling"]["new"] == 1
    # requested → answered: 1 h (pothole), 1 h (rejected), 2 h (lamp), 242 h (food)
    assert body["median_hours"] == 1.5 and body["average_hours"] == 61.5
    categories = {item["code"]: item for item in body["by_category"]}
    assert categories["an_toan_thuc_pham"]["total"] == 2 and categories["an_toan_thuc_pham"]["open"] == 1
    assert categories["an_toan_thuc_pham"]["results"]["late"] == 1
    agencies = {item["code"]: item["total"] for item in body["by_agency"]}
    assert agencies["so_y_te"] == 2
    communes = {item["code"]: item["total"] for item in body["by_commune"]}
    assert communes == {first[0]: 3, second[0]: 2}
    # A narrower window and a filter
    today = client.get("/api/v1/feedback/stats", params={"from": "2026-12-07", "to": "2026-12-07"}).json()
    assert today["total"] == 0
    assert client.get("/api/v1/feedback/stats", params={"category": "an_toan_thuc_pham"}).json()["total"] == 2
    assert client.get("/api/v1/feedback/stats", params={"commune": first[0], "status": "open"}).json()["total"] == 1

    page = client.get("/feedback/stats")
    assert page.status_code == 200
    summary = dict(
        re.findall(r'<tr data-key="([a-z_]+)"><th scope="row">[^<]*</th><td class="num">([^<]*)<', page.text)
    )
    assert summary["on_time_rate"] == "66,7%" and summary["satisfaction_rate"] == "50%"
    assert summary["average_hours"] == "61,5" and summary["total"] == "5"
    assert "Trả lời trễ hạn" in page.text and "Theo lĩnh vực" in page.text
    assert 'id="stats-by-commune"' in page.text
    english = client.get("/feedback/stats", params={"lang": "en"})
    assert "On-time rate" in english.text and "66.7%" in english.text

    # Bad input: a clear problem, never a 500; the page keeps the form and says why.
    wrong = client.get("/api/v1/feedback/stats", params={"from": "2026-13-01"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "feedback_invalid_window"
    backwards = client.get("/api/v1/feedback/stats", params={"from": "2026-12-01", "to": "2026-11-01"})
    assert backwards.status_code == 422 and backwards.json()["code"] == "feedback_invalid_window"
    unknown = client.get("/api/v1/feedback/stats", params={"category": "khong_co"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "feedback_unknown_filter"
    assert "khong_co" in unknown.json()["message_vi"]
    page = client.get("/feedback/stats", params={"from": "hôm qua"})
    assert page.status_code == 422 and 'id="stats-error"' in page.text and 'value="hôm qua"' in page.text

    # An agency sees its own subtree only.
    client.cookies.clear()
    login(client, "officer_a")
    mine = client.get("/api/v1/feedback/stats").json()
    assert mine["total"] == 2 and {item["code"] for item in mine["by_agency"]} == {"so_y_te"}
    assert client.get("/api/v1/feedback/stats", params={"agency": "so_gd_dt"}).json()["total"] == 0
    listed = client.get("/api/v1/feedback/reports").json()
    assert {item["tracking_code"] for item in listed["items"]} == {food.code, waiting.code}


def test_live_list_and_map_show_reports_newest_first_without_personal_data(
    backend: Backend, client: TestClient, app: Any, clock: FrozenClock, personas: dict[str, str]
) -> None:
    first, second = _communes(backend.database)
    older = _file(backend, clock, "an_toan_thuc_pham", first, "Bếp ăn quán phở gần chợ mất vệ sinh.", contact=True)
    clock.advance(timedelta(minutes=5))
    newer = _file(backend, clock, "ngap_ung", second, "Cống thoát nước gần trường bị tắc, nước tràn vào nhà dân.")
    assert client.get("/api/v1/feedback/reports").status_code == 401
    assert client.get("/feedback", follow_redirects=False).status_code in (303, 307)

    login(client, "leader")
    page = client.get("/feedback")
    assert page.status_code == 200
    codes = re.findall(r'<tr data-report="([^"]+)" data-state="([a-z]+)"', page.text)
    assert codes == [(newer.code, "open"), (older.code, "open")], "newest first"
    assert f'href="/feedback/reports/{older.id}"' in page.text
    assert 'hx-get="/feedback/partials/list"' in page.text and 'hx-trigger="every 10s"' in page.text
    assert "/static/vendor/echarts.min.js" in page.text and 'data-boundary="/api/v1/geo/boundary"' in page.text
    assert "Quá hạn" in page.text and "Đang xử lý" in page.text  # the legend says the states in words
    points = re.search(r'<script type="application/json" id="feedback-points">(.*?)</script>', page.text, re.S)
    assert points is not None and older.code in points[1]
    with backend.database.reading() as session:
        public = session.get(Report, older.id)
        assert public is not None and public.public_latitude is not None
        assert str(public.public_latitude) in points[1]
    for secret in (NAME, PHONE, EMAIL, "0912 345 678"):
        assert secret not in page.text

    partial = client.get("/feedback/partials/list", params={"status": "open"})
    assert partial.status_code == 200 and "<html" not in partial.text and newer.code in partial.text
    clock.advance(timedelta(days=20))  # past every deadline: the list says overdue
    client.cookies.clear()
    login(client, "leader")  # the first session has expired meanwhile
    overdue = client.get("/feedback/partials/list")
    assert re.findall(r'data-state="([a-z]+)"', overdue.text) == ["overdue", "overdue"]
    closed = client.get("/feedback", params={"status": "closed"})
    assert 'id="feedback-empty"' in closed.text
    wrong = client.get("/feedback", params={"commune": "99999"})
    assert wrong.status_code == 422 and 'id="feedback-error"' in wrong.text

    answer = client.get("/api/v1/feedback/reports", params={"category": "an_toan_thuc_pham"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 1 and body["items"][0]["tracking_code"] == older.code
    item = body["items"][0]
    assert item["latitude"] == public.public_latitude and item["agency"] == "so_y_te"
    for secret in (NAME, PHONE, EMAIL, "phone", "email"):
        assert secret not in answer.text
    assert client.get("/api/v1/feedback/reports", params={"from": "x"}).json()["code"] == "feedback_invalid_window"

    client.cookies.clear()
    login(client, "officer_b")  # education: neither report is theirs
    assert client.get("/api/v1/feedback/reports").json()["total"] == 0
    assert 'data-report="' not in client.get("/feedback").text


def _stored(database: Database, indicator: str) -> dict[tuple[str, str], float | None]:
    """The values of the IOC's feedback feed: (subject, period) → value, the newest instant per subject."""
    with database.reading() as session:
        rows = session.execute(
            select(Subject.code, Observation.period_key, Observation.period_start, Observation.value)
            .join(Subject, Subject.id == Observation.subject_id)
            .join(Indicator, Indicator.id == Observation.indicator_id)
            .join(Feed, Feed.id == Observation.feed_id)
            .where(Indicator.code == indicator, Feed.code == stats.FEED_CODE)
            .order_by(Observation.period_start)
        ).all()
    values: dict[tuple[str, str], float | None] = {}
    for subject, period_key, _start, value in rows:
        values[(subject, "now" if "T" in period_key else period_key)] = value
    return values


def test_a_submitted_and_answered_report_moves_the_feedback_indicators(
    backend: Backend, client: TestClient, app: Any, clock: FrozenClock, personas: dict[str, str]
) -> None:
    database = backend.database
    stats.reset_schedule()
    assert stats.publish_indicators(database, clock) == 0, "nothing received yet: nothing published"
    first, second = _communes(database)
    filed = _file(backend, clock, "an_toan_thuc_pham", first, "Cơ sở giết mổ gia cầm không có giấy kiểm dịch.")
    assert stats.publish_indicators(database, clock) == 0, "at most once a minute"
    clock.advance(timedelta(seconds=61))
    assert stats.publish_indicators(database, clock) > 2 * 131
    day = "2026-11-27"
    received = _stored(database, "pakn.tiep_nhan")
    assert received[("40", day)] == 1 and received[(first[0], day)] == 1 and received[(second[0], day)] == 0
    assert _stored(database, "pakn.dang_xu_ly")[("40", "now")] == 1
    assert _stored(database, "pakn.da_xu_ly")[("40", day)] == 0
    with database.reading() as session:
        feed = session.scalar(select(Feed).where(Feed.code == stats.FEED_CODE))
        assert feed is not None and feed.kind == "push"
    clock.advance(timedelta(seconds=61))
    assert stats.publish_indicators(database, clock) == 0, "nothing changed: nothing stored"

    headers = _operator(client, app)
    clock.advance(timedelta(hours=1))
    _move(client, headers, filed, "in_progress", "resolved")
    _rate(database, clock, filed, 5)
    assert stats.publish_indicators(database, clock) > 0
    for code in ("pakn.da_xu_ly", "pakn.dung_han", "pakn.danh_gia", "pakn.hai_long"):
        values = _stored(database, code)
        assert values[("40", day)] == 1 and values[(first[0], day)] == 1, code
    assert _stored(database, "pakn.dang_xu_ly")[("40", "now")] == 0
    # The ratios are derived from the parts stored.
    ratio = client.get("/api/v1/indicators/pakn.ty_le_dung_han/values", params={"period": day, "subject": "40"})
    assert ratio.status_code == 200 and ratio.json()["items"][0]["value"] == 100

    # A report left past its deadline counts as overdue, as a value "now".
    _file(backend, clock, "rac_thai_ve_sinh", second, "Rác thải sinh hoạt không được thu gom cả tuần nay.")
    clock.advance(timedelta(seconds=61))
    assert stats.publish_indicators(database, clock) > 0
    clock.advance(timedelta(days=20))
    assert stats.publish_indicators(database, clock) > 0
    assert _stored(database, "pakn.qua_han")[("40", "now")] == 1
    assert _stored(database, "pakn.qua_han")[(second[0], "now")] == 1
    assert _stored(database, "pakn.tiep_nhan")[("40", day)] == 2, "the day's count stays with its day"
