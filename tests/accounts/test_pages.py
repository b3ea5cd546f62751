"""Pages: the home page needs a log-in, speaks Vietnamese or English, and the audit page is for admins."""

from __future__ import annotations

import pytest
from account_helpers import add_user

from cityops.web.security import LANGUAGE_COOKIE
from conftest import login


@pytest.fixture
def operator(database, clock) -> str:
    return add_user(database, clock(), "operator", "operator")


def test_anonymous_home_redirects_to_login(client) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


def test_home_shows_the_indicator_table_after_login(client, operator) -> None:
    login(client, "operator")
    page = client.get("/")
    assert page.status_code == 200
    assert "Các chỉ tiêu và giá trị mới nhất" in page.text
    assert "<table>" in page.text
    assert 'data-indicator="hcc.ho_so_tiep_nhan"' in page.text


def test_lang_en_switches_the_page_to_english(client, operator) -> None:
    login(client, "operator")
    page = client.get("/", params={"lang": "en"})
    assert '<html lang="en">' in page.text
    assert "Indicators and their latest values" in page.text


def test_lang_en_sets_a_cookie_that_keeps_english(client, operator) -> None:
    login(client, "operator")
    switched = client.get("/", params={"lang": "en"})
    assert switched.cookies.get(LANGUAGE_COOKIE) == "en"
    page = client.get("/")
    assert '<html lang="en">' in page.text
    assert "Indicators and their latest values" in page.text


def test_audit_page_is_shown_to_admin(client, database, clock) -> None:
    add_user(database, clock(), "admin", "admin")
    login(client, "admin")
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert "Nhật ký thay đổi" in page.text
    assert "user.login" in page.text


def test_audit_page_is_forbidden_to_operator(client, operator) -> None:
    login(client, "operator")
    page = client.get("/admin/audit")
    assert page.status_code == 403
    assert "Nhật ký thay đổi</h1>" not in page.text


def test_audit_page_sends_anonymous_to_login(client) -> None:
    answer = client.get("/admin/audit", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/admin/audit"
