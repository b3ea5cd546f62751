"""After log-in the user goes only to a local path: never to another site."""

from __future__ import annotations

import pytest
from account_helpers import add_user, post_login

from conftest import PASSWORD


@pytest.fixture
def operator(database, clock) -> str:
    return add_user(database, clock(), "operator", "operator")


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "https://evil.example", "//evil.example/login", "/\\evil.example", "evil.example"],
)
def test_login_never_redirects_to_another_site(client, operator, target: str) -> None:
    answer = post_login(client, "operator", PASSWORD, next_path=target)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_login_redirects_to_a_local_next_path(client, operator) -> None:
    answer = post_login(client, "operator", PASSWORD, next_path="/admin/audit")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/audit"


def test_login_form_keeps_only_a_local_next_path(client) -> None:
    page = client.get("/login", params={"next": "//evil.example"})
    assert 'name="next" value="/"' in page.text
