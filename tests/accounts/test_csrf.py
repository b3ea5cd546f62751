"""CSRF: every form and every unsafe request of a logged-in session needs the token; API keys do not."""

from __future__ import annotations

from typing import Any

import pytest
from account_helpers import add_user, form_token, me_with_session, page_error, post_login, problem_code
from fastapi import APIRouter, Depends

from cityops.accounts.roles import Principal
from cityops.web.app import create_app
from cityops.web.deps import require
from cityops.web.security import SESSION_COOKIE
from conftest import PASSWORD, AgencyKey, csrf_header, login

CSRF_MESSAGE = "Phiên biểu mẫu đã hết hạn. Vui lòng tải lại trang và thử lại."

# A tiny unsafe API route guarded by require(), in this test app only: no unsafe route of the real app
# is open to a logged-in session yet, so the CSRF check of require() is shown here.
probe = APIRouter(prefix="/api/v1/test-probe")


@probe.post("")
async def probe_change(principal: Principal = Depends(require("read_data"))) -> dict[str, str]:
    return {"changed_by": principal.label}


@pytest.fixture
def app(backend, clock) -> Any:
    application = create_app(backend.settings, clock=clock, database=backend.database)
    application.include_router(probe)
    return application


@pytest.fixture
def operator(database, clock) -> str:
    return add_user(database, clock(), "operator", "operator")


# --- the log-in form ----------------------------------------------------------------------------------


def test_login_without_csrf_token_is_refused_with_the_vietnamese_message(client, operator) -> None:
    form_token(client)  # the CSRF cookie is there; the form field is not
    answer = post_login(client, "operator", PASSWORD, csrf_token="")
    assert answer.status_code == 403
    assert page_error(answer) == CSRF_MESSAGE
    assert SESSION_COOKIE not in answer.cookies


def test_login_with_wrong_csrf_token_is_refused_with_the_vietnamese_message(client, operator) -> None:
    form_token(client)
    answer = post_login(client, "operator", PASSWORD, csrf_token="0" * 64)
    assert answer.status_code == 403
    assert page_error(answer) == CSRF_MESSAGE
    assert SESSION_COOKIE not in answer.cookies


def test_login_refused_for_csrf_opens_no_session(client, operator) -> None:
    post_login(client, "operator", PASSWORD, csrf_token="0" * 64)
    assert client.get("/api/v1/me").status_code == 401


# --- the log-out form ---------------------------------------------------------------------------------


def test_logout_without_csrf_token_is_refused_and_keeps_the_session(client, operator) -> None:
    login(client, "operator")
    token = client.cookies.get(SESSION_COOKIE)
    answer = client.post("/logout", follow_redirects=False)
    assert answer.status_code == 403
    assert page_error(answer) == CSRF_MESSAGE
    assert client.cookies.get(SESSION_COOKIE) == token
    assert me_with_session(client, token).status_code == 200


def test_logout_with_wrong_csrf_token_is_refused_and_keeps_the_session(client, operator) -> None:
    login(client, "operator")
    token = client.cookies.get(SESSION_COOKIE)
    answer = client.post("/logout", data={"csrf_token": "0" * 64}, follow_redirects=False)
    assert answer.status_code == 403
    assert client.cookies.get(SESSION_COOKIE) == token
    assert me_with_session(client, token).status_code == 200


# --- unsafe API requests of a logged-in session ---------------------------------------------------------


def test_session_change_without_csrf_header_is_refused(client, operator) -> None:
    login(client, "operator")
    answer = client.post("/api/v1/test-probe")
    assert answer.status_code == 403
    assert problem_code(answer) == "csrf_failed"


def test_session_change_with_wrong_csrf_header_is_refused(client, operator) -> None:
    login(client, "operator")
    answer = client.post("/api/v1/test-probe", headers={"X-CSRF-Token": "0" * 64})
    assert answer.status_code == 403
    assert problem_code(answer) == "csrf_failed"


def test_session_change_with_csrf_header_is_allowed(client, app, operator) -> None:
    login(client, "operator")
    answer = client.post("/api/v1/test-probe", headers=csrf_header(client, app))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"changed_by": "operator"}


def test_session_safe_request_needs_no_csrf_header(client, operator) -> None:
    login(client, "operator")
    assert client.get("/api/v1/me").status_code == 200


# --- API keys are exempt ------------------------------------------------------------------------------


def test_api_key_change_needs_no_csrf_header(client, hcc_key: AgencyKey) -> None:
    answer = client.post("/api/v1/test-probe", headers=hcc_key.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"changed_by": f"key:{hcc_key.prefix}"}


def test_api_key_writes_observations_without_csrf_header(client, hcc_key: AgencyKey) -> None:
    answer = client.post(
        "/api/v1/observations",
        headers=hcc_key.headers,
        json={"observations": [{"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": 7}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
