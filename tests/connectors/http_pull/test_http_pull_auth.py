"""Authentication: a bearer token, an API-key header or a basic password reaches the server; a wrong one fails the
run at once with a hint about the token; the secret is stored encrypted and never shown back, nor sent to
another host."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import select, text

from cityops.accounts import service as accounts
from cityops.clock import FrozenClock
from cityops.connectors import runner
from cityops.db.engine import Database
from cityops.feeds.models import Feed
from cityops.feeds.service import SECRET_MASK, feed_out, update_feed
from connectors.http_pull.source import (
    SECRET_KEY,
    Reply,
    Seen,
    SourceServer,
    answer,
    make_feed,
    record,
    run,
    settings,
    stored,
)

TOKEN = "eyJhbGciOiJIUzI1NiJ9.lgsp-nghe-an-2026"


def guarded(expected: dict[str, str]) -> Any:
    """An endpoint that answers only when every expected header is there, and 401 otherwise."""

    def reply(seen: Seen) -> Reply:
        if all(seen.headers.get(name) == value for name, value in expected.items()):
            return Reply(body=answer(record()))
        return Reply(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    return reply


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        pytest.param({"auth": "bearer", "token": TOKEN}, {"authorization": f"Bearer {TOKEN}"}, id="bearer"),
        pytest.param(
            {"auth": "header", "auth_header": "X-API-Key", "token": TOKEN}, {"x-api-key": TOKEN}, id="api_key_header"
        ),
        pytest.param(
            {"auth": "basic", "username": "hcc_nghean", "token": "mật-khẩu-2026"},
            {"authorization": "Basic " + base64.b64encode("hcc_nghean:mật-khẩu-2026".encode()).decode()},
            id="basic",
        ),
    ],
)
def test_the_credentials_reach_the_server(
    database: Database, clock: FrozenClock, source: SourceServer, auth: dict[str, str], expected: dict[str, str]
) -> None:
    source.answer = guarded(expected)
    feed_id = make_feed(database, clock, settings(source, **auth))

    result = run(database, feed_id, clock)

    assert (result["status"], result["accepted"]) == ("ok", 2)


@pytest.mark.parametrize("status", [401, 403])
def test_a_wrong_token_fails_the_run_at_once_with_a_hint(
    database: Database, clock: FrozenClock, source: SourceServer, status: int
) -> None:
    source.script(Reply(status, {"error": "invalid_token"}))
    feed_id = make_feed(database, clock, settings(source, auth="bearer", token="ma-cu-da-het-han"))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])
    assert result["error"]["code"] == "http_unauthorized" and result["error"]["retryable"] is False
    assert result["error"]["message_vi"].startswith(f"Hệ thống nguồn từ chối truy cập (HTTP {status} ")
    assert "mã truy cập (token) hoặc mật khẩu sai, đã hết hạn" in result["error"]["message_vi"]
    assert result["error"]["message_en"].startswith(f"The source system refused access (HTTP {status} ")
    assert "the token or password is wrong, has expired" in result["error"]["message_en"]
    assert len(source.seen) == 1
    assert stored(database) == {}


def test_the_token_is_stored_encrypted_and_shown_masked(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    feed_id = make_feed(database, clock, settings(source, auth="header", auth_header="X-API-Key", token=TOKEN))

    with database.reading() as session:
        secrets, plain = session.execute(
            text("SELECT secrets, settings FROM feeds WHERE id = :id"), {"id": feed_id}
        ).one()
        audit = " ".join(str(row) for row in session.execute(text("SELECT details FROM audit_log")))
        feed = session.get_one(Feed, feed_id)
        shown = feed_out(session, feed, "vi")
    assert secrets and TOKEN not in secrets and "lgsp" not in secrets
    assert TOKEN not in str(plain)
    assert TOKEN not in audit
    assert shown["settings"]["token"] == SECRET_MASK
    assert shown["settings"]["auth_header"] == "X-API-Key"
    assert TOKEN not in str(shown)


def test_changing_the_settings_without_the_token_keeps_it(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.answer = guarded({"x-api-key": TOKEN})
    feed_id = make_feed(database, clock, settings(source, auth="header", auth_header="X-API-Key", token=TOKEN))
    with database.writing() as session:
        code = session.get_one(Feed, feed_id).code
        changed = settings(source, auth="header", auth_header="X-API-Key", token=SECRET_MASK, timeout_seconds=10)
        update_feed(session, accounts.SYSTEM, clock(), code, {"settings": changed}, secret_key=SECRET_KEY)

    result = run(database, feed_id, clock)

    assert result["status"] == "ok"
    with database.reading() as session:
        assert session.scalar(select(Feed.settings).where(Feed.id == feed_id))["timeout_seconds"] == 10


def test_a_feed_whose_token_cannot_be_decrypted_fails_with_invalid_settings(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.answer = guarded({"authorization": f"Bearer {TOKEN}"})
    feed_id = make_feed(database, clock, settings(source, auth="bearer", token=TOKEN))
    delays: list[float] = []

    result = runner.run_feed(database, feed_id, clock, "another-installation-key", sleep=delays.append)

    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])
    assert result["error"]["code"] == "invalid_settings" and result["error"]["retryable"] is False
    assert "needs a token" in result["error"]["message_en"]
    assert "cần mã truy cập" in result["error"]["message_vi"]
    assert source.seen == []


def test_a_same_host_redirect_is_followed_with_the_credentials(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    def reply(seen: Seen) -> Reply:
        if seen.path == "/igate/api/ho-so":
            return Reply(301, b"", {"Location": "/igate/api/v2/ho-so"})
        return guarded({"authorization": f"Bearer {TOKEN}"})(seen)

    source.answer = reply
    feed_id = make_feed(database, clock, settings(source, auth="bearer", token=TOKEN))

    result = run(database, feed_id, clock)

    assert (result["status"], result["accepted"]) == ("ok", 2)
    assert [seen.path for seen in source.seen] == ["/igate/api/ho-so", "/igate/api/v2/ho-so"]


def test_a_redirect_to_another_host_is_refused_and_the_token_stays_home(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    with SourceServerOn("localhost") as elsewhere:
        elsewhere.script(Reply(body=answer(record())))
        source.script(Reply(302, b"", {"Location": elsewhere.url()}))
        feed_id = make_feed(database, clock, settings(source, auth="header", auth_header="X-API-Key", token=TOKEN))

        result = run(database, feed_id, clock)

        assert (result["status"], result["error"]["code"], result["error"]["retryable"]) == (
            "failed",
            "redirect_other_host",
            False,
        )
        assert elsewhere.seen == []
    assert "chuyển hướng sang địa chỉ khác" in result["error"]["message_vi"]
    assert "redirects to another address" in result["error"]["message_en"]


class SourceServerOn(SourceServer):
    """The same server, addressed by another host name (localhost rather than 127.0.0.1)."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    @property
    def base(self) -> str:
        return super().base.replace("127.0.0.1", self.host)
