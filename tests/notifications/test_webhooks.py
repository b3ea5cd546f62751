"""Webhooks and the outbox: managed by administrators (secret write-only, audited), posts signed with HMAC,
retried with back-off, dead after the last attempt, replayed — and two workers deliver each message once."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from notifications_support import SECRET, Receiver, receiving, smtp_server, with_smtp
from sqlalchemy import select, update

from cityops.accounts.models import AuditEntry, User
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.notifications import delivery
from cityops.notifications.models import DEAD, PENDING, SENT, Delivery, Webhook
from cityops.notifications.service import TEST_KIND, notify
from conftest import Backend, csrf_header, login


def user_ids(database: Database, usernames: list[str]) -> list[int]:
    with database.reading() as session:
        return list(session.scalars(select(User.id).where(User.username.in_(usernames))))


def tell(database: Database, clock: FrozenClock, usernames: list[str], key: str) -> None:
    with database.writing() as session:
        notify(
            session,
            clock(),
            user_ids=user_ids(database, usernames),
            kind=TEST_KIND,
            key=key,
            params={"name": "Trần Thị Bình"},
            link="/incidents/3",
        )


def deliveries(database: Database) -> dict[str, Delivery]:
    with database.reading() as session:
        rows = session.scalars(select(Delivery)).all()
        for row in rows:
            session.expunge(row)
    return {row.target: row for row in rows}


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def test_webhooks_are_signed_retried_with_back_off_dead_then_replayed(
    client: TestClient, app: Any, backend: Backend, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    settings = with_smtp(backend.settings, None)
    flaky = Receiver(script=[(429, {"Retry-After": "120"}), (503, {})])  # busy, down, then fine
    broken = Receiver(then=500)
    gone = Receiver(then=404)
    with receiving(flaky), receiving(broken), receiving(gone):
        login(client, "officer_a")
        client.get("/notifications")
        assert client.get("/api/v1/webhooks").status_code == 403
        client.post("/logout", data={"csrf_token": form_token(client.get("/notifications").text)})

        login(client, "admin")
        client.get("/notifications")
        headers = csrf_header(client, app)
        made = {}
        for name, receiver in (("Cổng SMS", flaky), ("Zalo OA", broken), ("Cũ", gone)):
            answer = client.post(
                "/api/v1/webhooks",
                json={"name": name, "url": receiver.url, "secret": SECRET, "kinds": [TEST_KIND]},
                headers=headers,
            )
            assert answer.status_code == 201, answer.text
            made[name] = answer.json()
        assert made["Cổng SMS"]["secret_set"] is True and "secret" not in made["Cổng SMS"]
        assert SECRET not in client.get("/api/v1/webhooks").text
        with database.reading() as session:
            stored = session.get(Webhook, made["Cổng SMS"]["id"])
            assert stored is not None and SECRET not in stored.secret
        bad = client.post(
            "/api/v1/webhooks", json={"name": "x", "url": "ftp://sms.local", "secret": SECRET}, headers=headers
        )
        assert (
            bad.status_code == 422
            and bad.json()["code"] == "webhook_invalid"
            and "ftp://sms.local" in bad.json()["detail"]
        )
        short = client.post("/api/v1/webhooks", json={"name": "x", "url": flaky.url, "secret": "ngắn"}, headers=headers)
        assert short.status_code == 422 and short.json()["reason"] == "webhook_bad_secret"
        renamed = client.patch(
            f"/api/v1/webhooks/{made['Cổng SMS']['id']}",
            json={"name": "Cổng SMS Viettel", "secret": ""},
            headers=headers,
        )
        assert renamed.status_code == 200 and renamed.json()["name"] == "Cổng SMS Viettel"

        tell(database, clock, ["officer_a", "handler_a"], "test:hook")
        first = clock()
        assert delivery.deliver_due(database, clock, settings, owner="w1") == 0
        rows = deliveries(database)
        assert rows[flaky.url].status == PENDING and rows[flaky.url].last_error == "http_status:429"
        assert rows[flaky.url].next_attempt_at == first + timedelta(minutes=2)  # Retry-After beats the 1 minute
        assert rows[broken.url].next_attempt_at == first + timedelta(minutes=1)
        assert rows[gone.url].status == DEAD and rows[gone.url].attempts == 1  # a 404 is not tried again
        assert rows[gone.url].last_error == "http_rejected:404"

        # Nothing is due before its time; then back-off: +1, +2, +4, +8, +16 minutes, and the 6th failure is final.
        assert delivery.deliver_due(database, clock, settings, owner="w1") == 0
        sent = 0
        for wait in (1, 2, 4, 8, 16):
            due = deliveries(database)[broken.url].next_attempt_at
            assert due == clock.current + timedelta(minutes=wait)
            clock.current = due
            sent += delivery.deliver_due(database, clock, settings, owner="w1")
        rows = deliveries(database)
        assert sent == 1 and rows[flaky.url].status == SENT and rows[flaky.url].attempts == 3
        assert rows[broken.url].status == DEAD and rows[broken.url].attempts == delivery.MAX_ATTEMPTS
        assert len(broken.posts) == delivery.MAX_ATTEMPTS

        # Every post was signed; the body is the payload, the headers name the event and the delivery.
        assert all(post.signed for post in flaky.posts + broken.posts + gone.posts)
        post = flaky.sent()[0]
        assert post.event == TEST_KIND and post.delivery == str(rows[flaky.url].id)
        assert rows[flaky.url].sent_at is not None and post.timestamp == str(int(rows[flaky.url].sent_at.timestamp()))
        assert post.body["title_vi"] == "Thông báo thử từ Trung tâm Giám sát, Điều hành Thông minh"
        assert sorted(r["username"] for r in post.body["recipients"]) == ["handler_a", "officer_a"]
        assert {p.delivery for p in flaky.posts} == {post.delivery}  # retries are the same delivery

        # The dead letters, in Vietnamese; replay from the page (with its token) → pending with attempts reset.
        dead = client.get("/api/v1/deliveries", params={"status": "dead"}).json()
        assert sorted(item["target"] for item in dead["items"]) == sorted([broken.url, gone.url])
        by_target = {item["target"]: item for item in dead["items"]}
        assert by_target[broken.url]["last_error_vi"] == "Nơi nhận báo lỗi HTTP 500; sẽ thử lại."
        assert by_target[gone.url]["last_error_en"] == "The receiver refused with HTTP 404; not tried again."
        page = client.get("/admin/deliveries")
        assert page.status_code == 200 and "Nơi nhận từ chối với HTTP 404" in page.text and broken.url in page.text
        broken_id = rows[broken.url].id
        refused = client.post(f"/admin/deliveries/{broken_id}/replay", data={}, follow_redirects=False)
        assert refused.status_code == 403 and deliveries(database)[broken.url].status == DEAD
        replayed = client.post(
            f"/admin/deliveries/{broken_id}/replay", data={"csrf_token": form_token(page.text)}, follow_redirects=False
        )
        assert replayed.status_code == 303
        again = deliveries(database)[broken.url]
        assert (again.status, again.attempts) == (PENDING, 0)
        not_dead = client.post(f"/api/v1/deliveries/{rows[flaky.url].id}/replay", headers=headers)
        assert not_dead.status_code == 409 and not_dead.json()["code"] == "delivery_not_dead"
        assert client.post("/api/v1/deliveries/999999/replay", headers=headers).status_code == 404
        broken.then = 200
        assert delivery.deliver_due(database, clock, settings, owner="w1") == 1
        assert deliveries(database)[broken.url].status == SENT and len(broken.sent()) == 1
        api_replay = client.post(f"/api/v1/deliveries/{rows[gone.url].id}/replay", headers=headers)
        assert api_replay.status_code == 200 and api_replay.json()["status"] == PENDING

        everything = client.get("/admin/deliveries", params={"status": "all", "lang": "en"})
        assert everything.status_code == 200 and "Outgoing messages" in everything.text and "Sent" in everything.text
        assert "3 messages" in everything.text

        deleted = client.delete(f"/api/v1/webhooks/{made['Cũ']['id']}", headers=headers)
        assert deleted.status_code == 204 and gone.url not in deliveries(database)
        assert client.get(f"/api/v1/webhooks/{made['Cũ']['id']}").status_code == 404
    with database.reading() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "admin")).all()
    assert sorted(a for a in actions if a.startswith(("webhook.", "delivery."))) == [
        "delivery.replay",
        "delivery.replay",
        "webhook.create",
        "webhook.create",
        "webhook.create",
        "webhook.delete",
        "webhook.update",
    ]


def test_the_webhook_pages_never_show_the_secret_and_refuse_forms_without_their_token(
    client: TestClient, database: Database, personas: dict[str, str]
) -> None:
    login(client, "admin")
    page = client.get("/admin/webhooks")
    assert page.status_code == 200 and "Chưa có webhook nào." in page.text
    form = {
        "name": "Cổng Zalo",
        "url": "https://zalo.nghean.gov.vn/hook",
        "secret": SECRET,
        "enabled": "1",
        "kinds": ["alert.fired", "incident.overdue"],
    }
    assert client.post("/admin/webhooks", data=form, follow_redirects=False).status_code == 403
    wrong = client.post(
        "/admin/webhooks", data={**form, "url": "zalo", "csrf_token": form_token(page.text)}, follow_redirects=False
    )
    assert wrong.status_code == 422 and 'value="Cổng Zalo"' in wrong.text and SECRET not in wrong.text
    assert "“zalo” không phải địa chỉ http:// hoặc https:// hợp lệ." in wrong.text
    with database.reading() as session:
        assert session.scalars(select(Webhook)).all() == []
    made = client.post("/admin/webhooks", data={**form, "csrf_token": form_token(page.text)}, follow_redirects=False)
    assert made.status_code == 303
    listing = client.get("/admin/webhooks")
    assert "Cổng Zalo" in listing.text and "đã đặt" in listing.text and "Sự vụ quá hạn" in listing.text
    assert SECRET not in listing.text
    with database.reading() as session:
        hook = session.scalars(select(Webhook)).one()
    edit = client.get(f"/admin/webhooks/{hook.id}")
    assert edit.status_code == 200 and SECRET not in edit.text and "Để trống để giữ khóa cũ." in edit.text
    saved = client.post(
        f"/admin/webhooks/{hook.id}",
        data={
            "name": "Cổng Zalo OA",
            "url": form["url"],
            "secret": "",
            "kinds": [],
            "csrf_token": form_token(edit.text),
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    with database.reading() as session:
        changed = session.get(Webhook, hook.id)
        assert changed is not None
        assert (changed.name, changed.kinds, changed.enabled, changed.secret) == (
            "Cổng Zalo OA",
            [],
            False,
            hook.secret,
        )
    gone = client.post(
        f"/admin/webhooks/{hook.id}/delete", data={"csrf_token": form_token(edit.text)}, follow_redirects=False
    )
    assert gone.status_code == 303 and client.get(f"/admin/webhooks/{hook.id}").status_code == 404
    client.post("/logout", data={"csrf_token": form_token(client.get("/notifications").text)})
    login(client, "operator")
    assert client.get("/admin/webhooks").status_code == 403 and client.get("/admin/deliveries").status_code == 403


MESSAGES_IN_RACE = 12


def test_two_workers_at_the_same_moment_deliver_every_message_exactly_once(
    backend: Backend, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    """On PostgreSQL the two claims really overlap; on SQLite the write lock puts one after the other."""
    from cityops.accounts.service import SYSTEM
    from cityops.notifications.service import create_webhook

    with database.writing() as session:
        for username in ("officer_a", "officer_b"):
            session.execute(update(User).where(User.username == username).values(email=f"{username}@nghean.gov.vn"))
    counter = Receiver()
    with receiving(counter), smtp_server() as mailbox:
        with database.writing() as session:
            create_webhook(
                session,
                SYSTEM,
                clock(),
                backend.settings.resolved_secret_key,
                name="Đếm",
                url=counter.url,
                secret=SECRET,
            )
        for number in range(MESSAGES_IN_RACE):
            tell(database, clock, ["officer_a", "officer_b"], f"test:race:{number}")
        settings = with_smtp(backend.settings, mailbox)
        second = Database(backend.settings.resolved_database_url)  # another process's engine
        barrier = threading.Barrier(2)

        def work(pair: tuple[Database, str]) -> int:
            barrier.wait(timeout=30)
            return delivery.deliver_due(pair[0], clock, settings, owner=pair[1])

        try:
            with ThreadPoolExecutor(2) as pool:
                counts = list(pool.map(work, [(database, "worker-a"), (second, "worker-b")], timeout=120))
        finally:
            second.dispose()
    expected = MESSAGES_IN_RACE * 3  # two e-mails and one webhook post per message
    assert sum(counts) == expected
    posted = [post.delivery for post in counter.posts]
    assert len(posted) == len(set(posted)) == MESSAGES_IN_RACE and all(post.signed for post in counter.posts)
    message_ids = [message["Message-ID"] for _, message in mailbox.messages]
    assert len(message_ids) == len(set(message_ids)) == MESSAGES_IN_RACE * 2
    with database.reading() as session:
        assert set(session.scalars(select(Delivery.status))) == {SENT}
        assert set(session.scalars(select(Delivery.attempts))) == {1}
