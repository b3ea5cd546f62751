"""The feed pages: the list, one feed with its settings and run log, and the form that creates and edits feeds —
in Vietnamese and English, without JavaScript, with CSRF, errors next to their field, and no secret ever shown."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from feeds_support import BEDS, NEW_TOKEN, TOKEN, VISITS, agency_endpoint, pull_settings
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.accounts.models import AuditEntry
from cityops.clock import FrozenClock
from cityops.connectors.runner import run_feed
from cityops.db.engine import Database
from cityops.feeds.models import Feed
from cityops.feeds.service import create_feed, settings_of
from conftest import Backend, count_rows, login


def text_of(page: str) -> str:
    """The visible text of a page, tags removed and spaces collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S))
    return " ".join(html.unescape(without_tags).split())


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def daily_feed(database: Database, clock: FrozenClock, code: str = "yte_bao_cao_ngay", **extra: Any) -> None:
    options: dict[str, Any] = {
        "agency_code": "so_y_te",
        "indicator_codes": [VISITS],
        "name": "Báo cáo ngày của Sở Y tế",
        "cadence": "daily by 17:00",
        "grace_minutes": 30,
        **extra,
    }
    with database.writing() as session:
        create_feed(session, accounts.SYSTEM, clock(), code=code, **options)


def pull_feed(backend: Backend, clock: FrozenClock, url: str, code: str = "yte_his") -> None:
    daily_feed(
        backend.database,
        clock,
        code,
        name="Hệ thống thông tin bệnh viện",
        kind="http_pull",
        settings=pull_settings(url),
        secret_key=backend.settings.resolved_secret_key,
        poll_seconds=600,
    )


def stored(database: Database, code: str) -> Feed | None:
    with database.reading() as session:
        feed = session.scalar(select(Feed).where(Feed.code == code))
        if feed is not None:
            session.expunge(feed)
        return feed


FORM = {
    "code": "yte_moi",
    "name": "Số liệu khám chữa bệnh",
    "agency": "so_y_te",
    "kind": "push",
    "indicators": [VISITS, BEDS],
    "coverage": "communes",
    "cadence_kind": "daily",
    "cadence_time": "17:00",
    "grace_minutes": "30",
    "settings": "{}",
}


def post_new(client: TestClient, kind: str = "push", **changes: Any) -> Any:
    page = client.get("/feeds/new", params={"kind": kind})
    assert page.status_code == 200, page.text
    data = {**FORM, "kind": kind, "csrf_token": form_token(page.text), **changes}
    return client.post("/feeds/new", data=data, follow_redirects=False)


# --- the list -------------------------------------------------------------------------------------------


def test_the_list_shows_agency_kind_cadence_in_words_and_the_last_run(
    client, database, clock: FrozenClock, personas
) -> None:
    daily_feed(database, clock)
    daily_feed(
        database, clock, "thong_ke_thang", agency_code="thong_ke_tinh", kind="spreadsheet", cadence="monthly by day 5"
    )
    login(client, "admin")
    page = client.get("/feeds", params={"lang": "vi"})
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Nguồn dữ liệu" in text and "+ Thêm nguồn dữ liệu" in text
    row = text_of(page.text.split('data-feed="yte_bao_cao_ngay"')[1].split("</tr>")[0])
    assert "Sở Y tế" in row and "Gửi qua API (push)" in row
    assert "hằng ngày trước 17:00" in row and "ân hạn 30 phút" in row and "Chưa chạy lần nào" in row
    assert 'href="/data-health/feeds/yte_bao_cao_ngay"' in page.text
    assert 'href="/feeds/thong_ke_thang/upload"' in page.text  # spreadsheets are uploaded
    assert 'href="/feeds/yte_bao_cao_ngay/upload"' not in page.text
    assert "hằng tháng trước ngày 5" in text

    english = text_of(client.get("/feeds", params={"lang": "en"}).text)
    assert "daily by 17:00" in english and "Department of Health" in english and "Never run" in english
    assert "grace 30 min" in english


def test_an_officer_lists_only_their_agency_feeds_and_cannot_add(client, database, clock, personas) -> None:
    daily_feed(database, clock)
    daily_feed(database, clock, "gd_si_so", agency_code="so_gd_dt", indicator_codes=[])
    login(client, "officer_b")
    page = client.get("/feeds")
    assert 'data-feed="gd_si_so"' in page.text and 'data-feed="yte_bao_cao_ngay"' not in page.text
    assert "/feeds/new" not in page.text
    assert client.get("/feeds/yte_bao_cao_ngay").status_code == 404


# --- one feed ------------------------------------------------------------------------------------------


def test_the_feed_page_shows_settings_without_secrets_and_the_run_log(
    client, backend, database, clock: FrozenClock, personas
) -> None:
    records = [
        {"don_vi": "40", "ngay": "26/11/2026", "so_luot": 1234},
        {"don_vi": "40", "ngay": "25/11/2026", "so_luot": "?"},
    ]
    with agency_endpoint(TOKEN, records) as endpoint:
        pull_feed(backend, clock, endpoint.url)
        with database.reading() as session:
            feed_id = session.scalar(select(Feed.id).where(Feed.code == "yte_his"))
        assert feed_id is not None
        run_feed(database, feed_id, clock, backend.settings.resolved_secret_key, trigger="schedule")
    login(client, "admin")
    page = client.get("/feeds/yte_his", params={"lang": "vi"})
    assert page.status_code == 200
    assert TOKEN not in page.text
    text = text_of(page.text)
    assert "Hệ thống thông tin bệnh viện" in text and "Lấy định kỳ qua HTTP" in text
    assert "token đã đặt" in text  # the secret: only whether it is set
    assert endpoint.url in text  # the plain settings are shown
    assert "Lượt khám bệnh ngoại trú" in text and "hằng ngày trước 17:00" in text and "30 phút" in text
    assert "600 giây một lần" in text
    run = text_of(page.text.split('<tr data-run="')[1].split("</tr>")[0])
    assert "Theo lịch" in run and "Thành công một phần" in run and "thử lại không giúp được" in run
    assert "1.234" not in run and " 2 " in f" {run} "  # counts: received 2, stored 1, rejected 1
    assert "Tạm dừng" in text and "Chạy ngay" in text and "Sửa nguồn dữ liệu" in text

    english = client.get("/feeds/yte_his", params={"lang": "en"}).text
    assert TOKEN not in english
    english_text = text_of(english)
    assert "token set" in english_text and "Partly succeeded" in english_text and "Run now" in english_text
    assert "retrying will not help" in english_text and "daily by 17:00" in english_text
    client.cookies.clear()

    login(client, "officer_a")  # Sở Y tế's own officer: reads it, cannot act on it
    officer = text_of(client.get("/feeds/yte_his", params={"lang": "vi"}).text)
    assert "Thành công một phần" in officer and "Chạy ngay" not in officer and "Sửa nguồn dữ liệu" not in officer
    client.cookies.clear()
    login(client, "officer_b")
    assert client.get("/feeds/yte_his").status_code == 404


def test_a_push_feed_page_has_no_run_button(client, database, clock, personas) -> None:
    daily_feed(database, clock)
    login(client, "operator")
    text = text_of(client.get("/feeds/yte_bao_cao_ngay", params={"lang": "vi"}).text)
    assert "Tạm dừng" in text and "Chạy ngay" not in text and "Chưa có lần chạy nào." in text


def test_pause_resume_and_run_from_the_page(client, backend, database, clock, personas) -> None:
    daily_feed(database, clock)
    login(client, "admin")
    page = client.get("/feeds/yte_bao_cao_ngay", params={"lang": "vi"})
    paused = client.post(
        "/feeds/yte_bao_cao_ngay/pause", data={"csrf_token": form_token(page.text)}, follow_redirects=False
    )
    assert paused.status_code == 303 and paused.headers["location"] == "/feeds/yte_bao_cao_ngay?paused=1"
    shown = client.get(paused.headers["location"])
    assert "Đã tạm dừng nguồn dữ liệu" in text_of(shown.text) and "Tiếp tục" in text_of(shown.text)
    assert stored(database, "yte_bao_cao_ngay").paused is True  # type: ignore[union-attr]
    resumed = client.post("/feeds/yte_bao_cao_ngay/resume", data={"csrf_token": form_token(shown.text)})
    assert resumed.status_code == 200 and "Nguồn dữ liệu đã hoạt động trở lại." in text_of(resumed.text)
    assert stored(database, "yte_bao_cao_ngay").paused is False  # type: ignore[union-attr]

    refused = client.post("/feeds/yte_bao_cao_ngay/run", data={"csrf_token": form_token(resumed.text)})
    assert refused.status_code == 422 and "không tự lấy dữ liệu theo lịch" in text_of(refused.text)

    with agency_endpoint(TOKEN, [{"don_vi": "40", "ngay": "26/11/2026", "so_luot": 7}]) as endpoint:
        pull_feed(backend, clock, endpoint.url)
        page = client.get("/feeds/yte_his")
        ran = client.post("/feeds/yte_his/run", data={"csrf_token": form_token(page.text)}, follow_redirects=False)
        assert ran.status_code == 303 and re.fullmatch(r"/feeds/yte_his\?ran=\d+#runs", ran.headers["location"])
        after = text_of(client.get(ran.headers["location"]).text)
    assert "Đã chạy: Thành công; nhận 1, lưu 1, từ chối 0." in after
    assert "Chạy ngay (thủ công)" in after
    assert not client.post("/feeds/yte_his/pause", data={"csrf_token": "forged"}).is_success
    assert stored(database, "yte_his").paused is False  # type: ignore[union-attr]


@pytest.mark.parametrize("username", ["leader", "officer_a"])
def test_only_admins_and_operators_act_on_feeds_from_pages(client, database, clock, personas, username) -> None:
    daily_feed(database, clock)
    login(client, username)
    page = client.get("/feeds/yte_bao_cao_ngay")
    assert page.status_code == 200
    token = form_token(page.text)
    for path in ("/feeds/new", "/feeds/yte_bao_cao_ngay/edit"):
        assert client.get(path).status_code == 403
    for path in ("/feeds/yte_bao_cao_ngay/pause", "/feeds/yte_bao_cao_ngay/edit", "/feeds/new"):
        assert client.post(path, data={**FORM, "csrf_token": token}).status_code == 403
    assert count_rows(database, "feeds") == 1 and stored(database, "yte_bao_cao_ngay").paused is False  # type: ignore[union-attr]


def test_anonymous_visitors_are_sent_to_log_in(client) -> None:
    for path in ("/feeds", "/feeds/new", "/feeds/x"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"


# --- the form --------------------------------------------------------------------------------------------


def test_the_form_creates_a_daily_feed(client, database, personas) -> None:
    login(client, "operator")
    form = client.get("/feeds/new", params={"lang": "vi"})
    assert form.status_code == 200
    text = text_of(form.text)
    assert "Thêm nguồn dữ liệu" in text and "Hằng ngày trước" in text and "Mỗi năm học trước ngày" in text
    assert 'name="indicators" multiple' in form.text and "Lượt khám bệnh ngoại trú" in text
    created = post_new(client)
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/feeds/yte_moi?created=1"
    page = text_of(client.get(created.headers["location"]).text)
    assert "Đã tạo nguồn dữ liệu." in page and "hằng ngày trước 17:00" in page
    feed = stored(database, "yte_moi")
    assert feed is not None
    assert (feed.cadence, feed.grace_minutes, feed.coverage, feed.kind) == ("daily by 17:00", 30, "communes", "push")
    with database.reading() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "feed.create"))
    assert entry is not None and entry.actor == "operator"
    assert sorted(entry.details["indicators"]) == sorted([VISITS, BEDS])


@pytest.mark.parametrize(
    ("cadence", "canonical"),
    [
        ({"cadence_kind": "interval", "cadence_every": "5", "cadence_unit": "minutes"}, "every 5 minutes"),
        ({"cadence_kind": "monthly", "cadence_month_day": "5"}, "monthly by day 5"),
        ({"cadence_kind": "quarterly", "cadence_quarter_day": "10"}, "quarterly by day 10"),
        ({"cadence_kind": "yearly", "cadence_year_date": "31/1"}, "yearly by 31/01"),
        ({"cadence_kind": "school_year", "cadence_school_date": "30/09"}, "each school year by 30 September"),
        ({"cadence_kind": "text", "cadence_text": "Hằng tháng trước ngày 20"}, "monthly by day 20"),
        ({"cadence_kind": "none"}, ""),
    ],
)
def test_each_kind_of_cadence_composes_its_text(client, database, personas, cadence, canonical) -> None:
    login(client, "admin")
    assert post_new(client, **cadence).status_code == 303
    assert stored(database, "yte_moi").cadence == canonical  # type: ignore[union-attr]


def test_errors_are_shown_next_to_their_field_in_the_users_language(client, database, personas) -> None:
    login(client, "admin")
    answer = post_new(client, cadence_time="25:00", grace_minutes="ba mươi", settings="{bad")
    assert answer.status_code == 422
    text = text_of(answer.text)
    assert "Chưa lưu được: có 3 chỗ cần sửa." in text
    assert "Giờ hạn “25:00” không hợp lệ: nhập theo dạng giờ:phút, ví dụ 17:00." in text
    assert "“ba mươi” không phải một số nguyên không âm." in text
    assert "Cấu hình không phải JSON hợp lệ (dòng 1, cột 2)." in text
    assert 'id="f-grace_minutes" name="grace_minutes" value="ba mươi"' in answer.text  # entries kept
    assert 'aria-describedby="f-grace_minutes-error"' in answer.text
    assert f'value="{FORM["name"]}"' in answer.text

    client.get("/feeds", params={"lang": "en"})
    english = text_of(post_new(client, cadence_kind="text", cadence_text="twice a fortnight").text)
    assert "The cadence “twice a fortnight” is not understood." in english
    assert count_rows(database, "feeds") == 0


def test_refusals_of_the_service_come_back_next_to_the_field(client, database, clock, personas) -> None:
    daily_feed(database, clock, "yte_moi")
    login(client, "admin")
    taken = post_new(client)
    assert taken.status_code == 409
    assert "Đã có nguồn dữ liệu mã “yte_moi”." in text_of(taken.text)
    assert 'id="f-code-error"' in taken.text
    nowhere = post_new(client, code="yte_khac", agency="khong_co", indicators=["yte.khong_co"])
    assert nowhere.status_code == 422 and "Không có cơ quan mã “khong_co”." in text_of(nowhere.text)
    listing = post_new(client, code="yte_khac", coverage="list")
    assert listing.status_code == 422 and "Phạm vi “danh sách” cần ít nhất một đơn vị." in text_of(listing.text)
    assert count_rows(database, "feeds") == 1


def test_a_pull_feed_is_created_with_its_token_typed_apart(client, backend, database, personas) -> None:
    login(client, "admin")
    form = client.get("/feeds/new", params={"kind": "http_pull", "lang": "vi"})
    assert 'type="password" id="f-secret_token" name="secret_token" value=""' in form.text
    settings = pull_settings("http://127.0.0.1:9/api", token=None)
    wrong = post_new(
        client, "http_pull", code="yte_his", settings=json.dumps(settings), secret_token=TOKEN, cadence_time="7"
    )
    assert wrong.status_code == 422 and TOKEN not in wrong.text  # a typed secret is never written back
    assert "hãy nhập lại" in text_of(wrong.text)
    created = post_new(
        client, "http_pull", code="yte_his", settings=json.dumps(settings), secret_token=TOKEN, poll_seconds="600"
    )
    assert created.status_code == 303, text_of(created.text)
    feed = stored(database, "yte_his")
    assert feed is not None and feed.poll_seconds == 600 and TOKEN not in feed.secrets
    assert settings_of(feed, backend.settings.resolved_secret_key).token.get_secret_value() == TOKEN  # type: ignore[attr-defined]
    missing = post_new(client, "http_pull", code="yte_his2", settings=json.dumps(settings))
    assert missing.status_code == 422 and 'id="f-secret_token-error"' in missing.text


def test_editing_keeps_an_empty_secret_and_replaces_a_typed_one(
    client, backend, database, clock: FrozenClock, personas
) -> None:
    pull_feed(backend, clock, "http://127.0.0.1:9/api")
    secret_key = backend.settings.resolved_secret_key
    login(client, "operator")
    form = client.get("/feeds/yte_his/edit", params={"lang": "vi"})
    assert form.status_code == 200 and TOKEN not in form.text
    assert "Đã đặt. Để trống để giữ nguyên." in text_of(form.text)
    assert 'name="secret_token" value=""' in form.text
    assert 'id="f-cadence-daily" style="width:auto" checked' in form.text and 'value="17:00"' in form.text
    fields = {
        "csrf_token": form_token(form.text),
        "name": "HIS mới",
        "indicators": [VISITS],
        "coverage": "province",
        "cadence_kind": "daily",
        "cadence_time": "17:00",
        "grace_minutes": "30",
        "poll_seconds": "600",
        "settings": re.search(r'<textarea id="f-settings"[^>]*>(.*?)</textarea>', form.text, re.S)[1],  # type: ignore[index]
        "secret_token": "",
    }
    fields["settings"] = html.unescape(fields["settings"])
    saved = client.post("/feeds/yte_his/edit", data=fields, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/feeds/yte_his?saved=1"
    feed = stored(database, "yte_his")
    assert feed is not None and feed.name == "HIS mới"
    assert settings_of(feed, secret_key).token.get_secret_value() == TOKEN  # type: ignore[attr-defined]

    same = client.post("/feeds/yte_his/edit", data={**fields, "name": "HIS mới"}, follow_redirects=False)
    assert same.headers["location"] == "/feeds/yte_his?unchanged=1"
    replaced = client.post("/feeds/yte_his/edit", data={**fields, "secret_token": NEW_TOKEN}, follow_redirects=False)
    assert replaced.status_code == 303
    assert settings_of(stored(database, "yte_his"), secret_key).token.get_secret_value() == NEW_TOKEN  # type: ignore[arg-type, attr-defined]
    with database.reading() as session:
        updates = list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == "feed.update").order_by(AuditEntry.id))
        )
    assert len(updates) == 2 and updates[0].details["changes"] == {"name": "HIS mới"}
    assert all(TOKEN not in str(e.details) and NEW_TOKEN not in str(e.details) for e in updates)

    bad = client.post("/feeds/yte_his/edit", data={**fields, "cadence_kind": "monthly", "cadence_month_day": "32"})
    assert bad.status_code == 422 and "Ngày hạn “32” không hợp lệ: nhập một ngày từ 1 đến 31." in text_of(bad.text)
    assert stored(database, "yte_his").cadence == "daily by 17:00"  # type: ignore[union-attr]


def test_a_form_without_its_csrf_token_stores_nothing(client, database, personas) -> None:
    login(client, "admin")
    client.get("/feeds/new")
    answer = client.post("/feeds/new", data={**FORM, "csrf_token": "forged"})
    assert answer.status_code == 403
    assert "Phiên biểu mẫu đã hết hạn" in text_of(answer.text)
    assert count_rows(database, "feeds") == 0
