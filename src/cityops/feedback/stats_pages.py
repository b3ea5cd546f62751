"""Staff views of citizen reports: the live list and map (`/feedback`, refreshed by htmx from a partial), the
statistics page (`/feedback/stats`), and their JSON twins (`GET /api/v1/feedback/reports`, `GET
/api/v1/feedback/stats`).

Everything needs `read_data`; an agency's users see the reports of their subtree only. No personal data here: the
list shows the public, rounded point and links to the staff report view, where those handling see the contact.
The pages work without JavaScript (plain GET forms, tables); the map is drawn by the vendored ECharts from the
province's boundary served by the app.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from starlette.responses import Response

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.feedback import stats
from cityops.feedback.models import FeedbackCategory
from cityops.geo.models import Subject
from cityops.i18n import format_number
from cityops.web.deps import language, parts, require
from cityops.web.pages import render, require_page
from cityops.web.problems import Problem

router = APIRouter(include_in_schema=True)
REFRESH_SECONDS = 10
PAGE_SIZE = 100
STATUS_ORDER = ("open", "closed")


def _filters(status: str, category: str, agency: str, commune: str) -> stats.Filters:
    return stats.Filters(
        status=status.strip(), category=category.strip(), agency=agency.strip(), commune=commune.strip()
    )


def _problem(exc: stats.StatsError) -> Problem:
    return Problem(422, exc.code, **exc.params)


def _json_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in item.items()}


# --- API ------------------------------------------------------------------------------------------------------


@router.get("/api/v1/feedback/reports", tags=["feedback"], summary="Citizen reports / Phản ánh của người dân")
async def api_reports(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    status: str = Query(default="", max_length=16, description="open or closed"),
    category: str = Query(default="", max_length=64),
    agency: str = Query(default="", max_length=64, description="Responsible agency (with the units below it)"),
    commune: str = Query(default="", max_length=16),
    from_: str = Query(default="", alias="from", max_length=40, description="First day requested (YYYY-MM-DD)"),
    to: str = Query(default="", max_length=40, description="Last day requested (YYYY-MM-DD)"),
    limit: int = Query(default=PAGE_SIZE, ge=1, le=stats.MAX_LIST),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """Reports the caller may see, newest first: no name, phone, e-mail or exact address; the public (rounded)
    point only."""

    def run() -> dict[str, Any]:
        app_parts = parts(request)
        try:
            with app_parts.db.reading() as session:
                window = stats.parse_window(from_, to, app_parts.clock()) if (from_ or to) else None
                items, total = stats.list_reports(
                    session,
                    principal,
                    _filters(status, category, agency, commune),
                    window,
                    limit=limit,
                    offset=offset,
                )
        except stats.StatsError as exc:
            raise _problem(exc) from exc
        return {"total": total, "limit": limit, "offset": offset, "items": [_json_item(i) for i in items]}

    return await run_in_threadpool(run)


@router.get("/api/v1/feedback/stats", tags=["feedback"], summary="Report statistics / Thống kê phản ánh")
async def api_stats(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    status: str = Query(default="", max_length=16),
    category: str = Query(default="", max_length=64),
    agency: str = Query(default="", max_length=64),
    commune: str = Query(default="", max_length=16),
    from_: str = Query(default="", alias="from", max_length=40, description="First day (default: 30 days ago)"),
    to: str = Query(default="", max_length=40, description="Last day (default: today)"),
) -> dict[str, Any]:
    """Counts by status, handling status, category, agency, commune and result; the on-time rate, the average and
    median handling time in hours and the satisfaction rate, for the reports requested in the window."""

    def run() -> dict[str, Any]:
        app_parts = parts(request)
        try:
            with app_parts.db.reading() as session:
                window = stats.parse_window(from_, to, app_parts.clock())
                return stats.report_stats(session, principal, window, _filters(status, category, agency, commune))
        except stats.StatsError as exc:
            raise _problem(exc) from exc

    return await run_in_threadpool(run)


# --- pages ----------------------------------------------------------------------------------------------------


def _options(request: Request, principal: Principal) -> dict[str, list[tuple[str, str]]]:
    """The choices of the filter form: categories, the agencies the user may see, communes."""
    lang = language(request)
    with parts(request).db.reading() as session:
        categories = session.execute(
            select(FeedbackCategory.code, FeedbackCategory.name_vi, FeedbackCategory.name_en).order_by(
                FeedbackCategory.position, FeedbackCategory.code
            )
        ).all()
        agency_query = select(Agency.id, Agency.code, Agency.name_vi, Agency.name_en).order_by(Agency.name_vi)
        agencies = [
            row for row in session.execute(agency_query) if principal.province_wide or row[0] in principal.agency_ids
        ]
        communes = session.execute(
            select(Subject.code, Subject.name_vi, Subject.name_en)
            .where(Subject.kind == "commune")
            .order_by(Subject.name_vi)
        ).all()

    def pick(vi: str, en: str | None) -> str:
        return vi if lang == "vi" else en or vi

    return {
        "categories": [(code, pick(vi, en)) for code, vi, en in categories],
        "agencies": [(code, pick(vi, en)) for _id, code, vi, en in agencies],
        "communes": [(code, pick(vi, en)) for code, vi, en in communes],
    }


def _page_filters(request: Request) -> tuple[dict[str, str], stats.Filters]:
    query = request.query_params
    given = {name: query.get(name, "")[:64].strip() for name in ("status", "category", "agency", "commune")}
    given |= {name: query.get(name, "")[:40].strip() for name in ("from", "to")}
    return given, _filters(given["status"], given["category"], given["agency"], given["commune"])


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return max(1, min(int(text), 10_000)) if text.isdigit() else 1


def _list_context(request: Request, principal: Principal) -> tuple[dict[str, Any], int]:
    """What the list (and its partial) shows; with the status to answer (422 for a bad filter)."""
    given, filters = _page_filters(request)
    page = _page_number(request)
    app_parts = parts(request)
    lang = language(request)
    error = ""
    items: list[dict[str, Any]] = []
    total = 0
    try:
        with app_parts.db.reading() as session:
            window = (
                stats.parse_window(given["from"], given["to"], app_parts.clock())
                if (given["from"] or given["to"])
                else None
            )
            items, total = stats.list_reports(
                session, principal, filters, window, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
    except stats.StatsError as exc:
        error = _problem(exc).body(lang)["detail"]
    now = app_parts.clock()
    for item in items:
        overdue = item["status"] == "open" and item["expected_at"] is not None and item["expected_at"] < now
        item["state"] = "overdue" if overdue else item["status"]
    query = {name: value for name, value in given.items() if value}
    points = [
        {
            "id": item["id"],
            "code": item["tracking_code"],
            "status": item["state"],
            "value": [item["longitude"], item["latitude"]],
            "category": item[f"category_name_{lang}"],
        }
        for item in items
        if item["latitude"] is not None and item["longitude"] is not None
    ]
    return {
        "items": items,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "given": given,
        "query": urlencode(query),
        "page_query": lambda number: urlencode({**query, "page": number}),
        "points": points,
        "error": error,
        "refresh": REFRESH_SECONDS,
    }, 422 if error else 200


@router.get("/feedback", include_in_schema=False)
async def feedback_list(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The live list of reports, newest first, with filters, and the map of their public points."""
    context, status = await run_in_threadpool(_list_context, request, principal)
    options = await run_in_threadpool(_options, request, principal)
    return render(request, "feedback/staff_list.html", {**context, **options}, status_code=status)


@router.get("/feedback/partials/list", include_in_schema=False)
async def feedback_list_partial(
    request: Request, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """The rows of the list (and the map's points), for htmx to refresh every few seconds."""
    context, status = await run_in_threadpool(_list_context, request, principal)
    return render(request, "feedback/staff_list_rows.html", context, status_code=status)


def _percent(value: float | None, lang: str) -> str:
    return "—" if value is None else f"{format_number(value, lang, digits=1)}%"


@router.get("/feedback/stats", include_in_schema=False)
async def feedback_stats(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """Counts, rates and handling times of the reports requested in a window, as tables (and a bar chart)."""
    given, filters = _page_filters(request)
    app_parts = parts(request)
    lang = language(request)

    def run() -> tuple[dict[str, Any] | None, str]:
        try:
            with app_parts.db.reading() as session:
                window = stats.parse_window(given["from"], given["to"], app_parts.clock())
                return stats.report_stats(session, principal, window, filters), ""
        except stats.StatsError as exc:
            return None, _problem(exc).body(lang)["detail"]

    found, error = await run_in_threadpool(run)
    options = await run_in_threadpool(_options, request, principal)
    context = {
        "stats": found,
        "error": error,
        "given": given,
        "percent": lambda value: _percent(value, lang),
        "results": stats.RESULTS,
        "handling": stats.HANDLING,
        **options,
    }
    return render(request, "feedback/staff_stats.html", context, status_code=422 if error else 200)
