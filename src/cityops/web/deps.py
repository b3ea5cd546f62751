"""What routes share: the app's parts, who is asking, permission checks, the language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.templating import Jinja2Templates

from cityops.accounts import service as accounts
from cityops.accounts.roles import Principal
from cityops.clock import Clock
from cityops.db.engine import Database
from cityops.i18n import LANGUAGES
from cityops.settings import Settings
from cityops.web.problems import Problem
from cityops.web.security import CSRF_COOKIE, CSRF_HEADER, LANGUAGE_COOKIE, SESSION_COOKIE, csrf_valid

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppParts:
    """The parts every request may use, kept on app.state.parts."""

    settings: Settings
    db: Database
    clock: Clock
    templates: Jinja2Templates


def parts(request: Request) -> AppParts:
    """The app's parts."""
    result: AppParts = request.app.state.parts
    return result


def now(request: Request) -> datetime:
    """The current time from the app's clock."""
    return parts(request).clock()


def client_ip(request: Request) -> str:
    """The client's address, as the server saw it."""
    return request.client.host if request.client else ""


def language(request: Request) -> str:
    """The language of the answer: ?lang=, then the cookie, then the user's, then Vietnamese."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    principal = getattr(request.state, "principal", None)
    if principal is not None and principal.language in LANGUAGES:
        return str(principal.language)
    return parts(request).settings.default_language


def _resolve(request: Request) -> Principal | None:
    app_parts = parts(request)
    moment = app_parts.clock()
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip() or not credential.isprintable():
            raise Problem(401, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        with app_parts.db.reading() as session:
            principal, touch_due = accounts.principal_for_api_key(session, credential.strip(), moment)
        if principal is None:
            raise Problem(401, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        if touch_due and principal.api_key_id is not None:
            with app_parts.db.writing() as session:
                accounts.touch_api_key(session, principal.api_key_id, moment)
        return principal
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with app_parts.db.reading() as session:
            user = accounts.user_for_session(session, token, moment)
            if user is not None:
                return accounts.principal_for_user(session, user)
    return None


async def optional_principal(request: Request) -> Principal | None:
    """Who is asking, if anyone: an API key (Bearer) or a logged-in user (session cookie)."""
    if not hasattr(request.state, "principal"):
        request.state.principal = await run_in_threadpool(_resolve, request)
    principal: Principal | None = request.state.principal
    return principal


def require(permission: str) -> Callable[..., Any]:
    """A dependency that lets through only principals holding the permission (and CSRF-checks sessions)."""

    async def dependency(request: Request, principal: Principal | None = Depends(optional_principal)) -> Principal:
        if principal is None:
            raise Problem(401, "unauthenticated", headers={"WWW-Authenticate": "Bearer"})
        if not principal.can(permission):
            raise Problem(403, "forbidden")
        if request.method not in SAFE_METHODS and not principal.csrf_exempt:
            settings = parts(request).settings
            if not csrf_valid(
                settings.resolved_secret_key, request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER)
            ):
                raise Problem(403, "csrf_failed")
        return principal

    return dependency
