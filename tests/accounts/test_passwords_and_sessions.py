"""Passwords are argon2id hashes; log-in opens a server-side session that log-out and time end."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from account_helpers import add_user, form_token, me_with_session
from argon2 import PasswordHasher
from sqlalchemy import select

from cityops.accounts.models import User, UserSession
from cityops.web.security import SESSION_COOKIE
from conftest import PASSWORD, STRONG_HASHER, login


@pytest.fixture
def operator(database, clock) -> str:
    return add_user(database, clock(), "operator", "operator")


def test_password_is_stored_as_an_argon2id_hash(database, operator) -> None:
    with database.reading() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "operator"))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_the_product_hashes_with_argon2id_at_strong_cost() -> None:
    # The suite swaps in a cheap hasher for speed (conftest); the product's own is argon2id with RFC 9106's
    # second recommended profile: 3 passes over 64 MiB.
    assert STRONG_HASHER.type.name == "ID"
    assert STRONG_HASHER.time_cost >= 3
    assert STRONG_HASHER.memory_cost >= 64 * 1024
    assert STRONG_HASHER.hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3")


def test_login_sets_an_httponly_samesite_lax_session_cookie(client, operator) -> None:
    token = form_token(client)
    answer = client.post(
        "/login",
        data={"username": "operator", "password": PASSWORD, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = next(value for value in answer.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE + "="))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes


def test_login_opens_a_server_side_session_holding_only_the_token_hash(client, database, operator) -> None:
    login(client, "operator")
    token = client.cookies.get(SESSION_COOKIE)
    assert token
    with database.reading() as session:
        rows = list(session.scalars(select(UserSession)))
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(getattr(rows[0], column.key)) for column in UserSession.__table__.columns)
    assert me_with_session(client, token).json()["label"] == "operator"


def test_logout_with_csrf_token_ends_the_session(client, operator) -> None:
    login(client, "operator")
    old_token = client.cookies.get(SESSION_COOKIE)
    answer = client.post("/logout", data={"csrf_token": form_token(client, "/")}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert me_with_session(client, old_token).status_code == 401


def test_logout_deletes_the_session_row(client, database, operator) -> None:
    login(client, "operator")
    client.post("/logout", data={"csrf_token": form_token(client, "/")}, follow_redirects=False)
    with database.reading() as session:
        assert session.scalar(select(UserSession.id)) is None


def test_session_works_until_just_before_session_hours(client, clock, app, operator) -> None:
    login(client, "operator")
    token = client.cookies.get(SESSION_COOKIE)
    clock.advance(timedelta(hours=app.state.parts.settings.session_hours) - timedelta(seconds=1))
    assert me_with_session(client, token).status_code == 200


def test_session_expires_after_session_hours(client, clock, app, operator) -> None:
    login(client, "operator")
    token = client.cookies.get(SESSION_COOKIE)
    clock.advance(timedelta(hours=app.state.parts.settings.session_hours))
    assert me_with_session(client, token).status_code == 401


def test_a_change_of_role_ends_the_users_sessions(client, database, clock, operator) -> None:
    from cityops.accounts.service import SYSTEM, update_user

    login(client, "operator")
    token = client.cookies.get(SESSION_COOKIE)
    assert me_with_session(client, token).status_code == 200
    with database.writing() as session:
        update_user(session, SYSTEM, clock(), "operator", role="leader")
    assert me_with_session(client, token).status_code == 401
    login(client, "operator")
    assert client.get("/api/v1/me").json()["role"] == "leader"
