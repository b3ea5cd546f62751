"""Helpers of the accounts tests: the log-in form by hand, the error on a page, audit entries."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.accounts.models import AuditEntry
from cityops.db.engine import Database
from cityops.web.security import SESSION_COOKIE
from conftest import PASSWORD

LOCKED_WORDS = "tạm khóa"


def add_user(database: Database, now: datetime, username: str, role: str, agency_code: str = "") -> str:
    """Create one user with conftest.PASSWORD (cheaper than every persona when a test needs one)."""
    with database.writing() as session:
        accounts.create_user(
            session, accounts.SYSTEM, now, username=username, password=PASSWORD, role=role, agency_code=agency_code
        )
    return username


def form_token(client: TestClient, path: str = "/login") -> str:
    """The csrf_token of the form on a page (loading it also sets the CSRF cookie)."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, "no csrf_token on the page"
    return found[1]


def post_login(
    client: TestClient, username: str, password: str, *, next_path: str = "/", csrf_token: str | None = None
) -> httpx.Response:
    """Send the log-in form; the token is the page's own unless one is given ("" sends none)."""
    token = form_token(client) if csrf_token is None else csrf_token
    data = {"username": username, "password": password, "next": next_path}
    if token:
        data["csrf_token"] = token
    return client.post("/login", data=data, follow_redirects=False)


def page_error(response: httpx.Response) -> str:
    """The error message a page shows (empty when none)."""
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text, re.S)
    return html.unescape(found[1]).strip() if found else ""


def me_with_session(client: TestClient, token: str) -> httpx.Response:
    """GET /api/v1/me with exactly this session cookie (nothing from the client's cookie jar)."""
    return client.get("/api/v1/me", headers={"Cookie": f"{SESSION_COOKIE}={token}"})


def audit_entries(database: Database, action: str | None = None) -> list[AuditEntry]:
    """Audit entries, oldest first, optionally of one action."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    with database.reading() as session:
        return list(session.scalars(query))


def problem_code(response: httpx.Response) -> Any:
    """The code of a problem answer."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.json()["code"]
