"""HTML routes of the shell: the home page with every indicator and its latest value; page helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.catalog import service as catalog
from cityops.catalog.models import Domain
from cityops.geo.models import Subject
from cityops.i18n import format_moment, format_number, translate
from cityops.observations import derived
from cityops.observations import service as observations
from cityops.web.deps import language, optional_principal, parts
from cityops.web.security import CSRF_COOKIE, csrf_token, csrf_valid

router = APIRouter(include_in_schema=False)
HOME_REFRESH_SECONDS = 10


class LoginRequired(Exception):
    """Raised by a page that needs a log-in; answered with a redirect to /login."""


class PageForbidden(Exception):
    """Raised by a page the user's role may not see; answered with a 403 page."""


def require_page(permission: str) -> Callable[..., Any]:
    """A dependency for pages: redirect to log-in when anonymous, 403 when the role lacks the permission."""

    async def dependency(principal: Principal | None = Depends(optional_principal)) -> Principal:
        if principal is None or principal.api_key_id is not None:
            raise LoginRequired
        if not principal.can(permission):
            raise PageForbidden
        return principal

    return dependency


def form_text(value: Any, limit: int = 255) -> str:
    """A form field as trimmed text of at most `limit` characters; anything else (a file, nothing) is "".
    NUL cannot be stored by PostgreSQL and no field needs it."""
    return value.replace("\x00", "").strip()[:limit] if isinstance(value, str) else ""


def form_csrf_ok(request: Request, form: Any) -> bool:
    """Whether a posted form carries the CSRF token of this browser's seed."""
    token = form.get("csrf_token")
    return csrf_valid(
        parts(request).settings.resolved_secret_key,
        request.cookies.get(CSRF_COOKIE),
        token if isinstance(token, str) else None,
    )


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render a page in the request's language, with the CSRF token and the user."""
    app_parts = parts(request)
    lang = language(request)
    seed = request.state.csrf_seed
    full_context = {
        "request": request,
        "lang": lang,
        "other_lang": "en" if lang == "vi" else "vi",
        "t": lambda key, **params: translate(key, lang, **params),
        "number": lambda value: format_number(value, lang),
        "moment": lambda value: format_moment(value, lang),
        "csrf_token": csrf_token(app_parts.settings.resolved_secret_key, seed),
        "principal": getattr(request.state, "principal", None),
        **context,
    }
    response = app_parts.templates.TemplateResponse(request, template, full_context, status_code=status_code)
    if request.cookies.get(CSRF_COOKIE) != seed:
        response.set_cookie(
            CSRF_COOKIE, seed, httponly=True, samesite="strict", secure=app_parts.settings.cookie_secure
        )
    return response


def _home_rows(request: Request, principal: Principal) -> list[dict[str, Any]]:
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        rows, _ = catalog.list_indicators(session, principal, limit=1000)
        domains = {
            code: (name_vi, name_en)
            for code, name_vi, name_en in session.execute(select(Domain.code, Domain.name_vi, Domain.name_en))
        }
        province = session.scalar(select(Subject.id).where(Subject.kind == "province"))
        values: dict[str, dict[str, Any]] = {}
        computed: dict[str, derived.DerivedValue] = {}
        if province is not None and rows:
            latest, _ = observations.latest(session, [row[0].id for row in rows], subject_ids=[province])
            values = {item["indicator"]: item for item in latest}
            # Where the province sent nothing: its value computed from the parts or the communes, marked as such.
            missing = [row[0] for row in rows if row[0].code not in values]
            computed = derived.province_values(session, missing, province)
    return [
        {
            "indicator": indicator,
            "domain": domains.get(domain_code, (domain_code, domain_code)),
            "latest": values.get(indicator.code),
            "computed": computed.get(indicator.code),
        }
        for indicator, domain_code, _owner in rows
    ]


@router.get("/")
async def home(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The province at a glance (one card per subsystem, live), then every indicator with its newest value."""
    from cityops.live import overview

    app_parts = parts(request)

    def read() -> tuple[list[dict[str, Any]], overview.Overview]:
        with app_parts.db.reading() as session:
            glance = overview.build(session, principal, app_parts.clock())
        return _home_rows(request, principal), glance

    rows, glance = await run_in_threadpool(read)
    return render(request, "home.html", {"rows": rows, "refresh": HOME_REFRESH_SECONDS, "overview": glance})


@router.get("/partials/home-values")
async def home_values(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The table body of the home page, refreshed by htmx."""
    rows = await run_in_threadpool(_home_rows, request, principal)
    return render(request, "_home_rows.html", {"rows": rows})
