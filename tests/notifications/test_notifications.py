"""In-app notifications, preferences and e-mail: once per key, each user sees only theirs, the badge counts the
unread, preferences decide what is sent, and e-mails reach a real SMTP server in the user's language."""

from __future__ import annotations

import re
import string
from datetime import timedelta
from email.header import decode_header, make_header
from typing import Any

from fastapi.testclient import TestClient
from notifications_support import smtp_server, with_smtp
from sqlalchemy import select, update

from cityops.accounts.models import AuditEntry, User
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.i18n import both, catalog
from cityops.notifications import delivery
from cityops.notifications.models import DEAD, PENDING, SENT, Delivery, Notification
from cityops.notifications.service import TEST_KIND, notify
from conftest import Backend, count_rows, csrf_header, login


def user_id(database: Database, username: str) -> int:
    with database.reading() as session:
        found = session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found


def params_for(kind: str) -> dict[str, str]:
    """Every parameter the kind's templates name (another helper's kinds name their own), "Nguyễn Văn An" each."""
    names = {
        name
        for language in ("vi", "en")
        for part in ("title", "body")
        for _, name, _, _ in string.Formatter().parse(catalog(language).get(f"notify.{kind}.{part}", ""))
        if name
    }
    return dict.fromkeys(names, "Nguyễn Văn An")


def tell(database: Database, clock: FrozenClock, usernames: list[str], key: str, kind: str = TEST_KIND) -> list[int]:
    ids = [user_id(database, name) for name in usernames]
    with database.writing() as session:
        return notify(session, clock(), user_ids=ids, kind=kind, key=key, params=params_for(kind), link="/incidents/7")


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def test_each_user_reads_only_their_own_notifications_and_the_badge_counts_the_unread(
    client: TestClient, app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    for number in range(3):
        tell(database, clock, ["officer_a"], f"note:{number}")
        clock.advance(timedelta(minutes=1))
    tell(database, clock, ["officer_b"], "note:b")
    with database.reading() as session:
        theirs = session.scalar(select(Notification.id).where(Notification.key == "note:b"))

    # Logged out, the nav badge sends the whole page to the log-in (htmx), the API answers 401.
    answer = client.get("/notifications/badge", headers={"HX-Request": "true"})
    assert answer.status_code == 401 and answer.headers["HX-Redirect"] == "/login"
    assert client.get("/api/v1/notifications").status_code == 401

    login(client, "officer_a")
    listing = client.get("/api/v1/notifications", params={"limit": 2}).json()
    assert listing["total"] == 3 and listing["unread"] == 3 and len(listing["items"]) == 2
    title_vi, _ = both(f"notify.{TEST_KIND}.title")
    assert listing["items"][0]["title"] == title_vi and "Nguyễn Văn An" in listing["items"][0]["body"]
    newest, middle = listing["items"]
    assert newest["created_at"] > middle["created_at"] and newest["link"] == "/incidents/7"
    oldest = client.get("/api/v1/notifications", params={"limit": 2, "offset": 2}).json()["items"]
    assert len(oldest) == 1 and oldest[0]["created_at"] < middle["created_at"]

    badge = client.get("/notifications/badge")
    assert (
        badge.status_code == 200
        and "Thông báo (3)" in badge.text
        and 'aria-label="Thông báo: 3 chưa đọc"' in badge.text
    )
    assert "Notifications (3)" in client.get("/notifications/badge", params={"lang": "en"}).text
    client.cookies.delete("cityops_lang")

    # Another user's notification does not exist for me; a change without the CSRF header is refused.
    page = client.get("/notifications")
    assert page.status_code == 200 and page.text.count("Chưa đọc") == 3 and 'href="/incidents/7"' in page.text
    headers = csrf_header(client, app)
    refused = client.post(f"/api/v1/notifications/{theirs}/read", headers=headers)
    assert refused.status_code == 404 and refused.json()["code"] == "notification_not_found"
    assert client.post(f"/api/v1/notifications/{newest['id']}/read").status_code == 403
    read = client.post(f"/api/v1/notifications/{newest['id']}/read", headers=headers).json()
    assert read["unread"] is False and read["read_at"] is not None
    assert client.get("/api/v1/notifications/unread-count").json() == {"unread": 2}
    unread_only = client.get("/api/v1/notifications", params={"unread": "true"}).json()
    assert unread_only["total"] == 2 and newest["id"] not in [item["id"] for item in unread_only["items"]]

    # The page's "mark all read" needs its token; with it, nothing is left unread and the badge shows no count.
    without = client.post("/notifications/read-all", data={}, follow_redirects=False)
    assert without.status_code == 403
    assert client.get("/api/v1/notifications/unread-count").json() == {"unread": 2}
    done = client.post("/notifications/read-all", data={"csrf_token": form_token(page.text)}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/api/v1/notifications/unread-count").json() == {"unread": 0}
    badge = client.get("/notifications/badge").text
    assert "Thông báo" in badge and "(" not in badge
    assert client.get("/notifications").text.count("Chưa đọc") == 0

    # officer_b's own is untouched.
    with database.reading() as session:
        assert session.get(Notification, theirs).read_at is None  # type: ignore[union-attr]


def test_preferences_decide_what_is_sent_and_forms_need_their_token(
    client: TestClient, app: Any, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    login(client, "officer_a")
    client.get("/notifications/preferences")
    headers = csrf_header(client, app)
    start = client.get("/api/v1/notifications/preferences").json()
    assert start["email"] == ""
    kinds = {item["kind"]: item for item in start["kinds"]}
    assert list(kinds) == [
        "alert.fired",
        "incident.assigned",
        "incident.deadline_soon",
        "incident.overdue",
        "incident.escalated",
        "incident.status",
        "incident.comment",
    ]
    assert kinds["alert.fired"]["name"] == "Cảnh báo mới" and kinds["alert.fired"]["email"] is True
    assert kinds["incident.comment"]["email"] is False and kinds["incident.comment"]["in_app"] is True

    # A wrong address stores nothing, not even the kinds sent with it.
    bad = client.put(
        "/api/v1/notifications/preferences",
        json={"email": "can bo@soyte", "kinds": [{"kind": "alert.fired", "email": False}]},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "notification_invalid"
    assert "can bo@soyte" in bad.json()["message_vi"] and bad.json()["reason"] == "invalid_email"
    assert client.get("/api/v1/notifications/preferences").json() == start
    unknown = client.put(
        "/api/v1/notifications/preferences", json={"kinds": [{"kind": "x.y", "in_app": False}]}, headers=headers
    )
    assert unknown.status_code == 422 and unknown.json()["reason"] == "unknown_kind"

    saved = client.put(
        "/api/v1/notifications/preferences",
        json={
            "email": " can.bo@soyte.nghean.gov.vn ",
            "kinds": [{"kind": "alert.fired", "email": False}, {"kind": "incident.status", "in_app": False}],
        },
        headers=headers,
    ).json()
    assert saved["email"] == "can.bo@soyte.nghean.gov.vn"
    chosen = {item["kind"]: item for item in saved["kinds"]}
    assert chosen["alert.fired"] == {**kinds["alert.fired"], "email": False}
    assert chosen["incident.status"]["in_app"] is False
    with database.reading() as session:
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "notification_preferences.update")).all()
    assert len(logged) == 1 and logged[0].actor == "officer_a"

    # What is sent follows the choices: no e-mail of an alert, no in-app status change, the test by e-mail.
    assert tell(database, clock, ["officer_a"], "alert:1", kind="alert.fired") == [user_id(database, "officer_a")]
    assert tell(database, clock, ["officer_a"], "status:1", kind="incident.status") == []
    assert tell(database, clock, ["officer_a"], "test:1") == [user_id(database, "officer_a")]
    with database.reading() as session:
        assert session.scalars(select(Notification.key).order_by(Notification.key)).all() == ["alert:1", "test:1"]
        assert session.scalars(select(Delivery.key)).all() == [f"email:{user_id(database, 'officer_a')}:test:1"]

    # The page: without its token nothing changes (403); a wrong address comes back as typed (422); then saved.
    page = client.get("/notifications/preferences")
    assert page.status_code == 200 and "Sự vụ đổi trạng thái" in page.text and "can.bo@soyte.nghean.gov.vn" in page.text
    ticked = ["incident.assigned:in_app", "incident.assigned:email", "alert.fired:in_app"]
    form = {"email": "moi@soyte.nghean.gov.vn", "chosen": ticked}
    refused = client.post("/notifications/preferences", data=form, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/api/v1/notifications/preferences").json()["email"] == "can.bo@soyte.nghean.gov.vn"
    wrong = client.post(
        "/notifications/preferences",
        data={**form, "email": "không-phải-thư", "csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert wrong.status_code == 422 and 'value="không-phải-thư"' in wrong.text and 'aria-invalid="true"' in wrong.text
    ok = client.post(
        "/notifications/preferences", data={**form, "csrf_token": form_token(page.text)}, follow_redirects=False
    )
    assert ok.status_code == 303
    after = client.get("/api/v1/notifications/preferences").json()
    assert after["email"] == "moi@soyte.nghean.gov.vn"
    on = {(item["kind"], channel) for item in after["kinds"] for channel in ("in_app", "email") if item[channel]}
    assert on == {("incident.assigned", "in_app"), ("incident.assigned", "email"), ("alert.fired", "in_app")}
    assert "Đã lưu tùy chọn." in client.get("/notifications/preferences?saved=1").text


def test_each_key_is_one_e_mail_in_the_users_language_through_a_real_smtp_server(
    backend: Backend, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    with database.writing() as session:
        session.execute(update(User).where(User.username == "officer_a").values(email="can.bo@soyte.nghean.gov.vn"))
        session.execute(
            update(User).where(User.username == "leader").values(email="leader@nghean.gov.vn", language="en")
        )
    told = tell(database, clock, ["officer_a", "leader", "officer_b"], "test:mail")
    assert len(told) == 3
    assert tell(database, clock, ["officer_a", "leader", "officer_b"], "test:mail") == []  # once per key
    assert count_rows(database, "notifications") == 3
    assert count_rows(database, "notification_deliveries") == 2  # officer_b has no address

    # No SMTP host: the e-mails wait, untried, saying why.
    assert delivery.deliver_due(database, clock, with_smtp(backend.settings, None), owner="w1") == 0
    with database.reading() as session:
        waiting = session.scalars(select(Delivery)).all()
    assert {(row.status, row.attempts, row.last_error) for row in waiting} == {(PENDING, 0, "smtp_not_configured")}

    with smtp_server() as mailbox:
        settings = with_smtp(backend.settings, mailbox)
        assert delivery.deliver_due(database, clock, settings, owner="w1") == 2
        assert delivery.deliver_due(database, clock, settings, owner="w1") == 0
        clock.advance(timedelta(hours=1))
        assert delivery.deliver_due(database, clock, settings, owner="w1") == 0
    assert len(mailbox.messages) == 2
    (vietnamese,) = mailbox.to("can.bo@soyte.nghean.gov.vn")
    (english,) = mailbox.to("leader@nghean.gov.vn")
    title_vi, title_en = both(f"notify.{TEST_KIND}.title")
    assert (
        str(make_header(decode_header(vietnamese["Subject"])))
        == title_vi
        == ("Thông báo thử từ Trung tâm Giám sát, Điều hành Thông minh")
    )
    assert vietnamese["Subject"] == title_vi and english["Subject"] == title_en
    assert vietnamese["From"] == "ioc@nghean.gov.vn" and vietnamese.get_content_charset() == "utf-8"
    body = vietnamese.get_content()
    assert "Xin chào Nguyễn Văn An" in body and "Xem chi tiết: https://ioc.nghean.gov.vn/incidents/7" in body
    assert "https://ioc.nghean.gov.vn/notifications/preferences" in body
    assert "Details: https://ioc.nghean.gov.vn/incidents/7" in english.get_content()
    with database.reading() as session:
        rows = session.scalars(select(Delivery)).all()
    assert {(row.status, row.attempts, row.last_error) for row in rows} == {(SENT, 1, "")}

    # A server that is down: tried again with back-off, then dead after the last attempt.
    tell(database, clock, ["officer_a"], "test:down")
    down = with_smtp(backend.settings, None).model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": 9})
    for minutes in (0, 1, 2, 4, 8, 16):
        clock.advance(timedelta(minutes=minutes))
        assert delivery.deliver_due(database, clock, down, owner="w1") == 0
    with database.reading() as session:
        failed = session.scalar(select(Delivery).where(Delivery.key.endswith("test:down")))
    assert failed is not None and failed.status == DEAD and failed.attempts == delivery.MAX_ATTEMPTS
    assert failed.last_error.startswith("connection:")
