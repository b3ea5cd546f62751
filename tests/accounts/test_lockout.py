"""Lock-out: too many wrong passwords lock the account for a while; the lock is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from account_helpers import LOCKED_WORDS, add_user, audit_entries, page_error, post_login

from conftest import PASSWORD

WRONG = "không-phải-mật-khẩu"
FAILED_MESSAGE = "Tên đăng nhập hoặc mật khẩu không đúng."


@pytest.fixture
def operator(database, clock) -> str:
    return add_user(database, clock(), "operator", "operator")


@pytest.fixture
def settings(app):
    return app.state.parts.settings


def fail_times(client, count: int, username: str = "operator") -> None:
    for _ in range(count):
        assert post_login(client, username, WRONG).status_code == 401


def test_fewer_failures_than_the_limit_do_not_lock(client, settings, operator) -> None:
    fail_times(client, settings.login_max_failures - 1)
    assert post_login(client, "operator", PASSWORD).status_code == 303


def test_failure_at_the_limit_says_the_account_is_locked(client, settings, operator) -> None:
    fail_times(client, settings.login_max_failures - 1)
    answer = post_login(client, "operator", WRONG)
    assert answer.status_code == 401
    assert LOCKED_WORDS in page_error(answer)


def test_locked_account_refuses_the_right_password(client, settings, operator) -> None:
    fail_times(client, settings.login_max_failures)
    answer = post_login(client, "operator", PASSWORD)
    assert answer.status_code == 401
    assert LOCKED_WORDS in page_error(answer)
    assert client.get("/api/v1/me").status_code == 401


def test_lock_still_holds_just_before_lockout_minutes(client, clock, settings, operator) -> None:
    fail_times(client, settings.login_max_failures)
    clock.advance(timedelta(minutes=settings.login_lockout_minutes) - timedelta(seconds=1))
    answer = post_login(client, "operator", PASSWORD)
    assert answer.status_code == 401
    assert LOCKED_WORDS in page_error(answer)


def test_lock_lifts_after_lockout_minutes(client, clock, settings, operator) -> None:
    fail_times(client, settings.login_max_failures)
    clock.advance(timedelta(minutes=settings.login_lockout_minutes))
    assert post_login(client, "operator", PASSWORD).status_code == 303
    assert client.get("/api/v1/me").json()["label"] == "operator"


def test_lock_is_recorded_in_the_audit_log(client, clock, database, settings, operator) -> None:
    fail_times(client, settings.login_max_failures)
    locks = audit_entries(database, "user.locked")
    assert len(locks) == 1
    assert locks[0].actor == "operator"
    assert locks[0].entity_type == "user"
    assert locks[0].at == clock()
    assert locks[0].ip == "testclient"
    assert locks[0].details == {"minutes": settings.login_lockout_minutes}


def test_unknown_username_gets_the_same_answer_as_a_wrong_password(client, operator) -> None:
    wrong_password = post_login(client, "operator", WRONG)
    unknown_user = post_login(client, "không_có_ai", WRONG)
    assert page_error(unknown_user) == page_error(wrong_password) == FAILED_MESSAGE
    assert unknown_user.status_code == wrong_password.status_code == 401
