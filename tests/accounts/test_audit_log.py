"""The audit log: every change to users, keys, agencies and feeds — who, when, what, from where."""

from __future__ import annotations

import pytest
from account_helpers import add_user, audit_entries, form_token
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.accounts.models import ApiKey, User
from cityops.feeds.models import Feed
from cityops.feeds.service import create_feed
from conftest import login

ADMIN_IP = "10.1.2.3"


@pytest.fixture
def admin(clock, database) -> accounts.Actor:
    """The administrator making the changes, as the web layer would name them (with the client's address)."""
    add_user(database, clock(), "admin", "admin")
    with database.reading() as session:
        user_id = session.scalar(select(User.id).where(User.username == "admin"))
    return accounts.Actor("admin", user_id=user_id, ip=ADMIN_IP)


def only(database, action: str, entity_id: object | None = None):
    entries = [e for e in audit_entries(database, action) if entity_id is None or e.entity_id == str(entity_id)]
    assert len(entries) == 1, entries
    return entries[0]


def test_user_creation_is_audited(clock, database, admin) -> None:
    with database.writing() as session:
        user = accounts.create_user(
            session,
            admin,
            clock(),
            username="nv_a",
            password="mật-khẩu-dài-đủ-10",
            role="officer",
            agency_code="so_y_te",
        )
        user_id = user.id
    entry = only(database, "user.create", user_id)
    assert (entry.actor, entry.actor_user_id, entry.ip, entry.at) == ("admin", admin.user_id, ADMIN_IP, clock())
    assert (entry.entity_type, entry.entity_id) == ("user", str(user_id))
    assert entry.details == {"username": "nv_a", "role": "officer", "agency": "so_y_te"}


def test_user_creation_audit_never_holds_the_password(clock, database) -> None:
    with database.writing() as session:
        accounts.create_user(
            session, accounts.SYSTEM, clock(), username="nv_a", password="mật-khẩu-dài-đủ-10", role="operator"
        )
    assert "mật-khẩu-dài-đủ-10" not in repr(only(database, "user.create").details)


def test_agency_creation_is_audited(clock, database, admin) -> None:
    with database.writing() as session:
        agency = accounts.create_agency(
            session, admin, clock(), code="ubnd_xa_thu", name_vi="UBND xã Thử", kind="commune"
        )
        agency_id = agency.id
    entry = only(database, "agency.create")
    assert (entry.actor, entry.ip, entry.at) == ("admin", ADMIN_IP, clock())
    assert (entry.entity_type, entry.entity_id) == ("agency", str(agency_id))
    assert entry.details["code"] == "ubnd_xa_thu"


def test_feed_creation_is_audited(clock, database, admin) -> None:
    with database.writing() as session:
        create_feed(
            session,
            admin,
            clock(),
            code="hcc_igate",
            agency_code="trung_tam_phuc_vu_hcc",
            indicator_codes=["hcc.ho_so_tiep_nhan"],
        )
    with database.reading() as session:
        feed_id = session.scalar(select(Feed.id).where(Feed.code == "hcc_igate"))
    entry = only(database, "feed.create")
    assert (entry.actor, entry.ip, entry.at) == ("admin", ADMIN_IP, clock())
    assert (entry.entity_type, entry.entity_id) == ("feed", str(feed_id))
    assert entry.details == {
        "code": "hcc_igate",
        "agency": "trung_tam_phuc_vu_hcc",
        "indicators": ["hcc.ho_so_tiep_nhan"],
        "kind": "push",
        "cadence": "",
        "settings": {},
        "secrets_set": [],
    }


def test_key_creation_is_audited(clock, database, admin) -> None:
    with database.writing() as session:
        key, _secret = accounts.create_api_key(session, admin, clock(), agency_code="so_y_te", feed_codes=[])
        key_id, prefix = key.id, key.prefix
    entry = only(database, "api_key.create")
    assert (entry.actor, entry.ip, entry.at) == ("admin", ADMIN_IP, clock())
    assert (entry.entity_type, entry.entity_id) == ("api_key", str(key_id))
    assert entry.details["prefix"] == prefix
    assert entry.details["agency"] == "so_y_te"


def test_key_revocation_is_audited(clock, database, admin) -> None:
    with database.writing() as session:
        key, _secret = accounts.create_api_key(session, accounts.SYSTEM, clock(), agency_code="so_y_te", feed_codes=[])
        prefix = key.prefix
    with database.writing() as session:
        accounts.revoke_api_key(session, admin, clock(), prefix)
    with database.reading() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix))
    entry = only(database, "api_key.revoke")
    assert (entry.actor, entry.ip, entry.at) == ("admin", ADMIN_IP, clock())
    assert (entry.entity_type, entry.entity_id, entry.details) == ("api_key", str(key_id), {"prefix": prefix})


def test_web_login_is_audited_with_the_client_ip(client, clock, database) -> None:
    add_user(database, clock(), "operator", "operator")
    login(client, "operator")
    entry = only(database, "user.login")
    with database.reading() as session:
        user_id = session.scalar(select(User.id).where(User.username == "operator"))
    assert (entry.actor, entry.actor_user_id, entry.at) == ("operator", user_id, clock())
    assert entry.ip == "testclient"


def test_web_logout_is_audited_with_the_client_ip(client, clock, database) -> None:
    add_user(database, clock(), "operator", "operator")
    login(client, "operator")
    client.post("/logout", data={"csrf_token": form_token(client, "/")}, follow_redirects=False)
    entry = only(database, "user.logout")
    assert (entry.entity_type, entry.at, entry.ip) == ("user", clock(), "testclient")


def test_admin_reads_the_audit_log_newest_first(client, clock, database, personas) -> None:
    login(client, "admin")
    answer = client.get("/api/v1/audit")
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert [item["action"] for item in items[:1]] == ["user.login"]
    assert items[0]["ip"] == "testclient"
    assert items[0]["actor"] == "admin"
    assert items[0]["at"] == clock().isoformat()
    created = {item["details"]["username"] for item in items if item["action"] == "user.create"}
    assert created == set(personas)


def test_audit_log_api_filters_by_entity_type(client, clock, database) -> None:
    add_user(database, clock(), "admin", "admin")
    with database.writing() as session:
        accounts.create_api_key(session, accounts.SYSTEM, clock(), agency_code="so_y_te", feed_codes=[])
    login(client, "admin")
    items = client.get("/api/v1/audit", params={"entity_type": "api_key"}).json()["items"]
    assert [item["action"] for item in items] == ["api_key.create"]
