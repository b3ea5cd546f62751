"""The upload page of a spreadsheet feed: download the template, send a file, see the preview with each row's
errors, then send the good rows ("Gửi dữ liệu") or discard the file.

Plain HTML forms with a CSRF token work without JavaScript (each POST answers with a redirect back to the page);
with htmx the preview and its outcome replace the preview panel in place.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.connectors.spreadsheet import service
from cityops.connectors.spreadsheet.template import period_label
from cityops.feeds.cadence import CadenceError, parse_cadence
from cityops.i18n import translate
from cityops.web.deps import client_ip, language, parts
from cityops.web.pages import form_csrf_ok, render, require_page

router = APIRouter(include_in_schema=False)
PERMISSION = "supply_data"
PAGE = "spreadsheet_upload.html"
PARTIAL = "_spreadsheet_preview.html"
MAX_UPLOAD_ID = 2**63 - 1


def _page_path(code: str, upload_id: int | None = None) -> str:
    return f"/feeds/{code}/upload" + (f"?upload={upload_id}" if upload_id else "")


def _context(request: Request, principal: Principal, code: str, upload_id: int | None) -> dict[str, Any]:
    """What the page shows: the feed, its template, the latest uploads and the upload asked for."""
    app_parts = parts(request)
    lang = language(request)
    with app_parts.db.reading() as session:
        feed = service.upload_feed(session, principal, code)
        terms = service.feed_indicator_terms(session, feed.id)
        now = app_parts.clock()
        period = service.default_period(session, feed, terms, now)
        agency = session.scalar(select(Agency).where(Agency.id == feed.agency_id))
        uploads = service.list_uploads(session, principal, code, limit=10)
        upload = service.get_upload(session, principal, code, upload_id) if upload_id else None
    cadence = ""
    if feed.cadence:
        try:
            cadence = parse_cadence(feed.cadence).describe(lang)
        except CadenceError:
            cadence = feed.cadence
    return {
        "feed": {"code": feed.code, "name": feed.name or feed.code, "cadence": cadence},
        "agency": (agency.name_vi if lang == "vi" else agency.name_en) if agency else "",
        "indicators": [
            {
                "code": term.code,
                "name": term.name_vi if lang == "vi" else term.name_en,
                "unit": term.unit_vi if lang == "vi" else term.unit_en,
                "period": translate(f"period.{term.period_type}", lang),
            }
            for term in terms
        ],
        "period": period,
        "period_label": period_label(period),
        "uploads": uploads,
        "upload": upload,
    }


async def _page(
    request: Request,
    principal: Principal,
    code: str,
    upload_id: int | None = None,
    *,
    problem: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The whole page, or the preview panel alone for htmx; a feed the user may not use is a 404 page."""
    try:
        context = await run_in_threadpool(_context, request, principal, code, upload_id)
    except service.UploadRefused as exc:
        if exc.status != 404 or upload_id is None or exc.code != "spreadsheet_upload_not_found":
            return _refused_page(request, exc)
        context = await run_in_threadpool(_context, request, principal, code, None)
        problem, status_code = exc.messages(), 404
    context["problem"] = _in_language(problem, language(request))
    htmx = request.headers.get("hx-request") == "true"
    response = render(request, PARTIAL if htmx else PAGE, context, status_code=200 if htmx else status_code)
    if htmx and context.get("upload"):
        response.headers["HX-Push-Url"] = _page_path(code, context["upload"]["id"])
    return response


def _in_language(problem: tuple[str, str] | None, lang: str) -> str:
    if problem is None:
        return ""
    return problem[1] if lang == "en" else problem[0]


def _refused_page(request: Request, exc: service.UploadRefused) -> Response:
    vi, en = exc.messages()
    return render(
        request,
        PAGE,
        {"missing": True, "problem": en if language(request) == "en" else vi},
        status_code=exc.status,
    )


def _after_change(request: Request, code: str, upload_id: int) -> Response | None:
    """Without htmx, a change answers with a redirect back to the page (so a reload sends nothing again)."""
    if request.headers.get("hx-request") == "true":
        return None
    return RedirectResponse(_page_path(code, upload_id) + "#preview", status_code=303)


@router.get("/feeds/{code}/upload")
async def upload_page(
    request: Request,
    code: str = Path(min_length=1, max_length=64),
    upload: int | None = Query(default=None, ge=1, le=MAX_UPLOAD_ID),
    principal: Principal = Depends(require_page(PERMISSION)),
) -> Response:
    """The upload page of a feed, with an upload's preview or outcome when one is named."""
    return await _page(request, principal, code, upload)


@router.post("/feeds/{code}/upload")
async def upload_form(
    request: Request,
    code: str = Path(min_length=1, max_length=64),
    principal: Principal = Depends(require_page(PERMISSION)),
) -> Response:
    """Read the chosen file into a preview."""
    app_parts = parts(request)
    limit = app_parts.settings.max_body_bytes
    async with request.form(max_files=1, max_fields=10) as form:
        if not form_csrf_ok(request, form):
            return await _page(request, principal, code, problem=_csrf_problem(), status_code=403)
        chosen = form.get("file")
        if not isinstance(chosen, UploadFile) or not (chosen.filename or chosen.size):
            return await _page(request, principal, code, problem=_missing_file(), status_code=422)
        content = await chosen.read(limit + 1)
        name = (chosen.filename or "").replace("\x00", "").strip()[-255:]
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        return service.preview(
            app_parts.db,
            principal,
            actor,
            code,
            service.Uploaded(content, name),
            app_parts.clock(),
            province_code=app_parts.settings.province_code,
            secret_key=app_parts.settings.resolved_secret_key,
        )

    if len(content) > limit:
        return await _page(request, principal, code, problem=_too_large(limit), status_code=413)
    try:
        made = await run_in_threadpool(run)
    except service.UploadRefused as exc:
        if exc.status == 404 or exc.code == "spreadsheet_wrong_kind":
            return _refused_page(request, exc)
        return await _page(request, principal, code, problem=exc.messages(), status_code=exc.status)
    return _after_change(request, code, made["id"]) or await _page(request, principal, code, made["id"])


async def _change(request: Request, principal: Principal, code: str, upload_id: int, action: str) -> Response:
    app_parts = parts(request)
    form = await request.form(max_files=0, max_fields=10)
    if not form_csrf_ok(request, form):
        return await _page(request, principal, code, upload_id, problem=_csrf_problem(), status_code=403)
    actor = Actor.of(principal, client_ip(request))
    change = service.commit if action == "commit" else service.discard

    def run() -> dict[str, Any]:
        return change(app_parts.db, principal, actor, code, upload_id, app_parts.clock())

    try:
        await run_in_threadpool(run)
    except service.UploadRefused as exc:
        if exc.status == 404 and exc.code != "spreadsheet_upload_not_found":
            return _refused_page(request, exc)
        return await _page(request, principal, code, upload_id, problem=exc.messages(), status_code=exc.status)
    return _after_change(request, code, upload_id) or await _page(request, principal, code, upload_id)


@router.post("/feeds/{code}/uploads/{upload_id}/commit")
async def commit_form(
    request: Request,
    code: str = Path(min_length=1, max_length=64),
    upload_id: int = Path(ge=1, le=MAX_UPLOAD_ID),
    principal: Principal = Depends(require_page(PERMISSION)),
) -> Response:
    """Send the good rows of a preview ("Gửi dữ liệu")."""
    return await _change(request, principal, code, upload_id, "commit")


@router.post("/feeds/{code}/uploads/{upload_id}/discard")
async def discard_form(
    request: Request,
    code: str = Path(min_length=1, max_length=64),
    upload_id: int = Path(ge=1, le=MAX_UPLOAD_ID),
    principal: Principal = Depends(require_page(PERMISSION)),
) -> Response:
    """Discard a preview."""
    return await _change(request, principal, code, upload_id, "discard")


def _csrf_problem() -> tuple[str, str]:
    return translate("login.csrf", "vi"), translate("login.csrf", "en")


def _missing_file() -> tuple[str, str]:
    return translate("spreadsheet.page.no_file", "vi"), translate("spreadsheet.page.no_file", "en")


def _too_large(limit: int) -> tuple[str, str]:
    return (
        translate("problem.body_too_large.detail", "vi", limit=limit),
        translate("problem.body_too_large.detail", "en", limit=limit),
    )
