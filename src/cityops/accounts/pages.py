"""HTML routes of accounts: log-in, log-out, the audit log page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from cityops.accounts import service
from cityops.accounts.roles import Principal
from cityops.i18n import LANGUAGES, translate
from cityops.web.deps import client_ip, language, optional_principal, parts
from cityops.web.pages import render, require_page
from cityops.web.security import CSRF_COOKIE, LANGUAGE_COOKIE, SESSION_COOKIE, csrf_valid

router = APIRouter(include_in_schema=False)


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    """The log-in page."""
    return render(request, "login.html", {"next": _safe_next(next), "error": ""})


def _safe_next(target: str) -> str:
    # Only local paths: never send a user to another site after log-in.
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.post("/login")
async def login(
    request: Request,
    username: str = Form(max_length=64),
    password: str = Form(max_length=1024),
    csrf_token: str = Form(default="", max_length=128),
    next: str = Form(default="/", max_length=512),
) -> Response:
    """Check the password; open a session or say why not."""
    app_parts = parts(request)
    settings = app_parts.settings
    lang = language(request)
    if not csrf_valid(settings.resolved_secret_key, request.cookies.get(CSRF_COOKIE), csrf_token):
        return render(
            request, "login.html", {"next": _safe_next(next), "error": translate("login.csrf", lang)}, status_code=403
        )
    moment = app_parts.clock()
    ip = client_ip(request)

    def run() -> tuple[str | None, int, str]:
        with app_parts.db.writing() as session:
            result = service.authenticate(
                session,
                username,
                password,
                moment,
                ip=ip,
                max_failures=settings.login_max_failures,
                lockout=timedelta(minutes=settings.login_lockout_minutes),
            )
            if result.user is None:
                return None, result.locked_minutes, ""
            token = service.open_session(
                session,
                result.user,
                moment,
                hours=settings.session_hours,
                ip=ip,
                user_agent=request.headers.get("user-agent", ""),
            )
            return token, 0, result.user.language

    token, locked_minutes, user_language = await run_in_threadpool(run)
    if token is None:
        message = (
            translate("login.locked", lang, minutes=locked_minutes)
            if locked_minutes
            else translate("login.failed", lang)
        )
        return render(request, "login.html", {"next": _safe_next(next), "error": message}, status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )
    if LANGUAGE_COOKIE not in request.cookies and user_language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, user_language, max_age=365 * 86400, samesite="lax", secure=settings.cookie_secure
        )
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token: str = Form(default="", max_length=128)) -> Response:
    """End the session."""
    app_parts = parts(request)
    if not csrf_valid(app_parts.settings.resolved_secret_key, request.cookies.get(CSRF_COOKIE), csrf_token):
        # Refused: the session stays open and its cookie is kept (a forged log-out changes nothing).
        error = translate("login.csrf", language(request))
        return render(request, "login.html", {"next": "/", "error": error}, status_code=403)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        moment, ip = app_parts.clock(), client_ip(request)

        def run() -> None:
            with app_parts.db.writing() as session:
                service.close_session(session, token, moment, ip)

        await run_in_threadpool(run)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/admin/audit")
async def audit_page(request: Request, principal: Principal = Depends(require_page("read_audit"))) -> Response:
    """The audit log for administrators."""

    def run() -> list[Any]:
        with parts(request).db.reading() as session:
            return service.list_audit(session, limit=200)

    return render(request, "audit.html", {"entries": await run_in_threadpool(run)})


__all__ = ["optional_principal", "router"]
