"""The feeds API: who may read and change feeds, secrets that never come back, clear refusals, the run log,
running a pull now, and pausing. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from feeds_support import BEDS, NEW_TOKEN, TOKEN, VISITS, agency_endpoint, pull_settings, signed_in
from sqlalchemy import select

from cityops.accounts.models import AuditEntry
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.feeds import lateness
from cityops.feeds.models import LATE, Feed, FeedExpectation
from cityops.feeds.service import SECRET_MASK, settings_of
from cityops.observations.models import Observation
from conftest import count_rows, login, make_key

DAILY = {
    "code": "yte_bao_cao_ngay",
    "agency": "so_y_te",
    "name": "Báo cáo ngày của Sở Y tế",
    "kind": "push",
    "indicators": [VISITS],
    "cadence": "hằng ngày trước 17:00",
    "grace_minutes": 30,
    "coverage": "communes",
}


def create(client: TestClient, headers: dict[str, str], **changes: Any) -> Any:
    return client.post("/api/v1/feeds", json={**DAILY, **changes}, headers=headers)


def audit_entries(database: Database, action: str) -> list[AuditEntry]:
    with database.reading() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def stored(database: Database, code: str) -> Feed:
    with database.reading() as session:
        feed = session.scalar(select(Feed).where(Feed.code == code))
        assert feed is not None
        session.expunge(feed)
        return feed


# --- create, read, change ---------------------------------------------------------------------------------


def test_admin_creates_reads_and_changes_a_feed(client, app, database, personas) -> None:
    headers = signed_in(client, app, "admin")
    answer = create(client, headers)
    assert answer.status_code == 201, answer.text
    feed = answer.json()
    assert feed["code"] == "yte_bao_cao_ngay"
    assert feed["agency"] == "so_y_te" and feed["agency_name"] == "Sở Y tế"
    assert feed["cadence"] == "daily by 17:00"  # stored canonical, whatever language it was typed in
    assert feed["cadence_text"] == "hằng ngày trước 17:00"
    assert (feed["grace_minutes"], feed["coverage"], feed["indicators"]) == (30, "communes", [VISITS])
    assert feed["paused"] is False and feed["last_run"] is None and feed["scheduled"] is False

    listed = client.get("/api/v1/feeds", params={"lang": "en"})
    assert listed.status_code == 200
    [item] = [item for item in listed.json()["items"] if item["code"] == "yte_bao_cao_ngay"]
    assert item["cadence_text"] == "daily by 17:00" and item["agency_name"] == "Department of Health"
    assert client.get("/api/v1/feeds/yte_bao_cao_ngay", params={"lang": "vi"}).json() == feed

    changed = client.patch(
        "/api/v1/feeds/yte_bao_cao_ngay",
        json={"cadence": "monthly by day 5", "indicators": [VISITS, BEDS], "name": "Báo cáo tháng"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["cadence_text"] == "hằng tháng trước ngày 5"
    assert changed.json()["indicators"] == sorted([VISITS, BEDS])
    assert changed.json()["name"] == "Báo cáo tháng"
    assert changed.json()["grace_minutes"] == 30  # what was not sent did not change
    row = stored(database, "yte_bao_cao_ngay")
    assert (row.cadence, row.name) == ("monthly by day 5", "Báo cáo tháng")

    [created] = audit_entries(database, "feed.create")
    [updated] = audit_entries(database, "feed.update")
    assert created.actor == updated.actor == "admin"
    assert updated.details["changes"]["cadence"] == "monthly by day 5"
    assert updated.details["before"]["cadence"] == "daily by 17:00"


def test_operator_may_create_change_pause_and_resume(client, app, database, personas) -> None:
    headers = signed_in(client, app, "operator")
    assert create(client, headers).status_code == 201
    assert (
        client.patch("/api/v1/feeds/yte_bao_cao_ngay", json={"grace_minutes": 60}, headers=headers).json()[
            "grace_minutes"
        ]
        == 60
    )
    paused = client.post("/api/v1/feeds/yte_bao_cao_ngay/pause", headers=headers)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert stored(database, "yte_bao_cao_ngay").paused is True
    resumed = client.post("/api/v1/feeds/yte_bao_cao_ngay/resume", headers=headers)
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert [entry.actor for entry in audit_entries(database, "feed.update")] == ["operator"] * 3


@pytest.mark.parametrize("username", ["leader", "officer_a"])
def test_leader_and_officer_may_read_but_not_change(client, app, database, personas, username) -> None:
    admin = signed_in(client, app, "admin")
    assert create(client, admin).status_code == 201
    client.cookies.clear()
    headers = signed_in(client, app, username)
    assert client.get("/api/v1/feeds/yte_bao_cao_ngay").status_code == 200  # Sở Y tế's own feed, or province-wide
    attempts = [
        client.post("/api/v1/feeds", json={**DAILY, "code": "khac"}, headers=headers),
        client.patch("/api/v1/feeds/yte_bao_cao_ngay", json={"grace_minutes": 1}, headers=headers),
        client.post("/api/v1/feeds/yte_bao_cao_ngay/pause", headers=headers),
        client.post("/api/v1/feeds/yte_bao_cao_ngay/resume", headers=headers),
        client.post("/api/v1/feeds/yte_bao_cao_ngay/run", headers=headers),
    ]
    assert [answer.status_code for answer in attempts] == [403] * 5
    assert {answer.json()["code"] for answer in attempts} == {"forbidden"}
    assert count_rows(database, "feeds") == 1
    row = stored(database, "yte_bao_cao_ngay")
    assert (row.grace_minutes, row.paused) == (30, False)


def test_without_a_log_in_or_a_reading_role_nothing_is_shown(client, app, database, personas) -> None:
    assert client.get("/api/v1/feeds").status_code == 401
    login(client, "citizen")
    assert client.get("/api/v1/feeds").status_code == 403


def test_an_officer_sees_only_the_feeds_of_their_agency_subtree(client, app, database, personas) -> None:
    admin = signed_in(client, app, "admin")
    assert create(client, admin).status_code == 201
    # The disease-control centre sits under Sở Y tế: its feed is in officer A's subtree.
    assert create(client, admin, code="cdc_tiem_chung", agency="trung_tam_kiem_soat_benh_tat").status_code == 201
    assert create(client, admin, code="gd_si_so", agency="so_gd_dt", indicators=[]).status_code == 201
    client.cookies.clear()

    login(client, "officer_a")
    assert [item["code"] for item in client.get("/api/v1/feeds").json()["items"]] == [
        "cdc_tiem_chung",
        "yte_bao_cao_ngay",
    ]
    hidden = client.get("/api/v1/feeds/gd_si_so")
    unknown = client.get("/api/v1/feeds/khong_co")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["code"] == unknown.json()["code"] == "feed_not_found"
    assert hidden.json()["message_vi"] == "Không có nguồn dữ liệu “gd_si_so” mà bạn được xem."
    assert client.get("/api/v1/feeds/gd_si_so/runs").status_code == 404
    client.cookies.clear()

    login(client, "officer_b")
    assert [item["code"] for item in client.get("/api/v1/feeds").json()["items"]] == ["gd_si_so"]
    assert client.get("/api/v1/feeds/yte_bao_cao_ngay").status_code == 404
    client.cookies.clear()

    login(client, "leader")
    assert len(client.get("/api/v1/feeds").json()["items"]) == 3


# --- secrets ---------------------------------------------------------------------------------------------


def test_a_secret_is_encrypted_at_rest_masked_everywhere_and_kept_unless_replaced(
    client, app, backend, database, personas
) -> None:
    headers = signed_in(client, app, "admin")
    secret_key = backend.settings.resolved_secret_key
    with agency_endpoint(TOKEN, []) as endpoint:
        answer = create(
            client, headers, code="yte_his", kind="http_pull", settings=pull_settings(endpoint.url), poll_seconds=300
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["settings"]["token"] == SECRET_MASK
        assert answer.json()["secrets_set"] == ["token"]
        answers = [
            answer.text,
            client.get("/api/v1/feeds").text,
            client.get("/api/v1/feeds/yte_his").text,
            client.get("/feeds").text,
            client.get("/feeds/yte_his").text,
            client.get("/feeds/yte_his/edit").text,
        ]
        assert all(TOKEN not in text for text in answers)
        assert "đã đặt" in answers[4]

        row = stored(database, "yte_his")
        assert TOKEN not in row.secrets and TOKEN not in json.dumps(row.settings)
        assert row.secrets and "token" not in row.settings
        assert settings_of(row, secret_key).token.get_secret_value() == TOKEN  # type: ignore[attr-defined]
        assert all(TOKEN not in json.dumps(entry.details) for entry in audit_entries(database, "feed.create"))

        # Sent back empty, or as the mask it was shown as: the stored token stays.
        for kept in ("", SECRET_MASK):
            changed = client.patch(
                "/api/v1/feeds/yte_his", json={"settings": pull_settings(endpoint.url, kept)}, headers=headers
            )
            assert changed.status_code == 200, changed.text
            assert changed.json()["settings"]["token"] == SECRET_MASK
            assert settings_of(stored(database, "yte_his"), secret_key).token.get_secret_value() == TOKEN  # type: ignore[attr-defined]
        # Left out altogether: kept too. The run uses the stored token, decrypted.
        client.patch("/api/v1/feeds/yte_his", json={"settings": pull_settings(endpoint.url, None)}, headers=headers)
        assert client.post("/api/v1/feeds/yte_his/run", headers=headers).json()["status"] == "ok"
        assert endpoint.seen_tokens == [TOKEN]

        replaced = client.patch(
            "/api/v1/feeds/yte_his", json={"settings": pull_settings(endpoint.url, NEW_TOKEN)}, headers=headers
        )
        assert replaced.status_code == 200 and NEW_TOKEN not in replaced.text
        row = stored(database, "yte_his")
        assert settings_of(row, secret_key).token.get_secret_value() == NEW_TOKEN  # type: ignore[attr-defined]
        assert NEW_TOKEN not in row.secrets
    for entry in audit_entries(database, "feed.update"):
        assert TOKEN not in json.dumps(entry.details) and NEW_TOKEN not in json.dumps(entry.details)


def test_the_mask_is_never_stored_as_a_secret(client, app, backend, database, personas) -> None:
    headers = signed_in(client, app, "admin")
    # Sent with nothing stored, the mask is no token: a bearer pull without one is refused, field named.
    needs = create(
        client, headers, code="yte_his", kind="http_pull", settings=pull_settings("http://127.0.0.1:9/x", SECRET_MASK)
    )
    assert needs.status_code == 422 and needs.json()["reason"] == "invalid_settings"
    assert "“token”" in needs.json()["message_vi"] and count_rows(database, "feeds") == 0
    settings = {**pull_settings("http://127.0.0.1:9/x", SECRET_MASK), "auth": "none"}
    answer = create(client, headers, code="yte_his", kind="http_pull", settings=settings)
    assert answer.status_code == 201, answer.text
    assert answer.json()["secrets_set"] == [] and answer.json()["settings"]["token"] is None
    row = stored(database, "yte_his")
    assert row.secrets == "" and settings_of(row, backend.settings.resolved_secret_key).token is None  # type: ignore[attr-defined]


# --- refusals --------------------------------------------------------------------------------------------

REFUSED = [
    ({"cadence": "hai lần một tuần"}, "invalid_cadence", "Không hiểu tần suất “hai lần một tuần”", "not understood"),
    ({"kind": "fax"}, "unknown_kind", "Không có loại kết nối “fax”", "no connector kind “fax”"),
    (
        {"kind": "http_pull", "settings": {"auth": "bearer"}},
        "settings_missing",
        "thiếu trường bắt buộc “url”",
        "lack the required field “url”",
    ),
    ({"settings": {"url": "http://x"}}, "settings_unknown_field", "trường “url”", "field “url”"),
    ({"grace_minutes": -5}, "invalid_grace", "ân hạn -5 phút", "grace period of -5 minutes"),
    ({"coverage": "list"}, "no_subjects", "cần ít nhất một đơn vị", "at least one unit"),
    ({"subjects": ["99999"], "coverage": "list"}, "unknown_subjects", "Không có đơn vị: 99999", "No such units: 99999"),
    ({"indicators": ["yte.khong_co"]}, "unknown_indicators", "Không có chỉ tiêu: yte.khong_co", "yte.khong_co"),
    ({"code": "Báo cáo"}, "invalid_code", "Mã nguồn dữ liệu “Báo cáo” không hợp lệ", "not valid"),
    ({"code": "new"}, "invalid_code", "không hợp lệ", "not valid"),
    ({"poll_seconds": 10**9}, "invalid_poll", "Chu kỳ lấy dữ liệu", "polling interval"),
]


@pytest.mark.parametrize(("changes", "reason", "vietnamese", "english"), REFUSED)
def test_a_bad_feed_is_refused_in_both_languages_and_nothing_is_stored(
    client, app, database, personas, changes, reason, vietnamese, english
) -> None:
    headers = signed_in(client, app, "admin")
    answer = create(client, headers, **changes)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert (problem["code"], problem["reason"]) == ("feed_invalid", reason)
    assert problem["message_vi"].startswith("Nguồn dữ liệu chưa được lưu. ") and vietnamese in problem["message_vi"]
    assert problem["message_en"].startswith("The data feed was not saved. ") and english in problem["message_en"]
    assert problem["detail"] == problem["message_vi"]
    assert (
        client.post("/api/v1/feeds", json={**DAILY, **changes}, params={"lang": "en"}, headers=headers).json()["detail"]
        == problem["message_en"]
    )
    assert count_rows(database, "feeds") == 0 and count_rows(database, "feed_indicators") == 0
    assert not audit_entries(database, "feed.create")


def test_unknown_agency_taken_code_and_nul_are_clear_refusals(client, app, database, personas) -> None:
    headers = signed_in(client, app, "admin")
    nowhere = create(client, headers, agency="khong_co")
    assert nowhere.status_code == 422 and nowhere.json()["code"] == "feed_unknown_agency"
    assert nowhere.json()["message_vi"] == "Không có cơ quan mã “khong_co”. Không có gì được lưu."
    assert create(client, headers).status_code == 201
    again = create(client, headers, name="Bản thứ hai")
    assert again.status_code == 409 and again.json()["code"] == "feed_exists"
    assert "Đã có nguồn dữ liệu mã “yte_bao_cao_ngay”" in again.json()["message_vi"]
    nul = create(client, headers, code="yte_nul", name="a\x00b")
    assert nul.status_code == 422 and nul.json()["code"] == "validation_failed"
    nested = create(
        client, headers, code="yte_nul", kind="http_pull", settings=pull_settings("http://127.0.0.1:9/\x00")
    )
    assert nested.status_code == 422
    assert count_rows(database, "feeds") == 1
    assert stored(database, "yte_bao_cao_ngay").name == DAILY["name"]


def test_a_bad_change_is_refused_and_the_feed_kept_as_it_was(client, app, database, personas) -> None:
    headers = signed_in(client, app, "admin")
    assert create(client, headers).status_code == 201
    bad = [
        ({"cadence": "every 7 minutes", "name": "Đổi tên"}, "invalid_cadence"),
        ({"coverage": "list", "subjects": []}, "no_subjects"),
        ({"kind": "mqtt"}, "not_updatable"),
        ({"agency": "so_gd_dt"}, "not_updatable"),
    ]
    for body, reason in bad:
        answer = client.patch("/api/v1/feeds/yte_bao_cao_ngay", json=body, headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["reason"] == reason
    row = stored(database, "yte_bao_cao_ngay")
    assert (row.cadence, row.name, row.coverage, row.kind) == ("daily by 17:00", DAILY["name"], "communes", "push")
    assert not audit_entries(database, "feed.update")
    missing = client.patch("/api/v1/feeds/khong_co", json={"name": "x"}, headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "feed_not_found"


# --- the run log and running now ----------------------------------------------------------------------------


def test_run_now_pulls_stores_and_logs_the_run(client, app, database, clock: FrozenClock, personas) -> None:
    headers = signed_in(client, app, "operator")
    records = [
        {"don_vi": "40", "ngay": "26/11/2026", "so_luot": 1234},
        {"don_vi": "16681", "ngay": "26/11/2026", "so_luot": "không rõ"},
    ]
    with agency_endpoint(TOKEN, records) as endpoint:
        settings = pull_settings(endpoint.url)
        assert create(client, headers, code="yte_his", kind="http_pull", settings=settings).status_code == 201
        run = client.post("/api/v1/feeds/yte_his/run", headers=headers)
        assert run.status_code == 200, run.text
        result = run.json()
        assert (result["trigger"], result["status"], result["attempts"]) == ("manual", "partial", 1)
        assert (result["received"], result["accepted"], result["rejected"]) == (2, 1, 1)
        assert result["error"]["retryable"] is False
        assert result["error"]["message_vi"] and result["error"]["message_en"]

        clock.advance(timedelta(minutes=5))
        endpoint.token = "another-token"  # the agency changed its token: the stored one is refused
        failed = client.post("/api/v1/feeds/yte_his/run", headers=headers).json()
        assert failed["status"] == "failed" and failed["error"]["code"] == "http_unauthorized"
        assert failed["error"]["retryable"] is False

    with database.reading() as session:
        values = session.execute(select(Observation.value)).scalars().all()
    assert values == [1234.0]
    runs = client.get("/api/v1/feeds/yte_his/runs").json()
    assert runs["feed"] == "yte_his"
    assert [item["id"] for item in runs["items"]] == [failed["id"], result["id"]]  # newest first
    assert runs["items"][0]["started_at"] == clock().isoformat()
    assert client.get("/api/v1/feeds/yte_his").json()["last_run"]["status"] == "failed"
    assert client.get("/api/v1/feeds/yte_his/runs", params={"limit": 1}).json()["items"][0]["id"] == failed["id"]
    assert [entry.details["status"] for entry in audit_entries(database, "feed.run")] == ["partial", "failed"]


def test_pushed_batches_appear_in_the_run_log(client, app, database, clock, personas) -> None:
    key = make_key(database, clock(), agency="so_y_te", feed="yte_push", indicators=[VISITS])
    sent = client.post(
        "/api/v1/observations",
        headers=key.headers,
        json={
            "observations": [
                {"indicator": VISITS, "subject": "40", "period": "2026-11-26", "value": 10},
                {"indicator": VISITS, "subject": "40", "period": "2026-11-27", "value": -1},
            ]
        },
    )
    assert sent.status_code == 200, sent.text
    login(client, "officer_a")
    [run] = client.get("/api/v1/feeds/yte_push/runs").json()["items"]
    assert (run["trigger"], run["status"], run["received"], run["accepted"], run["rejected"]) == (
        "push",
        "partial",
        2,
        1,
        1,
    )
    assert run["error"]["message_vi"] and run["error"]["message_en"] and run["error"]["retryable"] is False


def test_run_now_is_only_for_scheduled_kinds(client, app, database, personas) -> None:
    headers = signed_in(client, app, "admin")
    assert create(client, headers).status_code == 201
    answer = client.post("/api/v1/feeds/yte_bao_cao_ngay/run", headers=headers)
    assert answer.status_code == 422 and answer.json()["code"] == "feed_not_pullable"
    assert "không tự lấy dữ liệu theo lịch" in answer.json()["message_vi"]
    assert count_rows(database, "feed_runs") == 0
    assert client.post("/api/v1/feeds/khong_co/run", headers=headers).status_code == 404


# --- pausing ------------------------------------------------------------------------------------------------


def test_a_paused_feed_is_never_claimed_late(client, app, database, clock: FrozenClock, personas) -> None:
    headers = signed_in(client, app, "admin")
    assert create(client, headers, grace_minutes=0).status_code == 201
    assert create(client, headers, code="yte_tam_dung", grace_minutes=0).status_code == 201
    assert client.post("/api/v1/feeds/yte_tam_dung/pause", headers=headers).json()["paused"] is True

    clock.advance(timedelta(hours=7, minutes=1))  # 17:01 in Hà Nội: both feeds' deadline has passed
    with database.writing() as session:
        result = lateness.tick(session, clock())
    assert result.late == [("yte_bao_cao_ngay", "2026-11-27")]
    with database.reading() as session:
        paused_id = session.scalar(select(Feed.id).where(Feed.code == "yte_tam_dung"))
        late_rows = session.scalars(
            select(FeedExpectation).where(FeedExpectation.feed_id == paused_id, FeedExpectation.state == LATE)
        ).all()
    assert late_rows == []
