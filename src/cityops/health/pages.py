"""The Data health pages: agencies ranked by the trust of their feeds, and one feed's page saying exactly what is
missing, what was rejected, what was flagged and which periods came late.

Every score shows as a number with a word (Tốt / Cần chú ý / Kém) and a colour; every state as a word and a colour.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.health import service
from cityops.i18n import format_moment, format_number, format_period
from cityops.web.deps import language, parts
from cityops.web.pages import render, require_page

router = APIRouter(include_in_schema=False)
GOOD, WATCH = 95.0, 80.0  # a score at or above GOOD is good; at or above WATCH needs watching; below is bad


def window_days(text: str | None) -> int:
    """The window chosen on the page: 7, 30 or 90 days (anything else: the default)."""
    try:
        days = int(text or service.DEFAULT_DAYS)
    except ValueError:
        return service.DEFAULT_DAYS
    return days if days in service.WINDOW_CHOICES else service.DEFAULT_DAYS


def grade(score: float | None) -> str:
    """good, watch, bad — or none when there is nothing to judge."""
    if score is None:
        return "none"
    return "good" if score >= GOOD else "watch" if score >= WATCH else "bad"


def percent(score: float | None, lang: str) -> str:
    """55,6% in Vietnamese, 55.6% in English; a dash for no score."""
    if score is None:
        return "—"
    return format_number(round(score, 1), lang, digits=1) + "%"


def _helpers(lang: str) -> dict[str, Any]:
    return {
        "percent": lambda score: percent(score, lang),
        "grade": grade,
        "period": lambda row: format_period(row.get("period_type", ""), row.get("period", ""), lang),
        "when": lambda value: format_moment(value, lang) if value else "—",
        "count": lambda value: format_number(value, lang),
        "decimal": lambda value: format_number(value, lang) if value is not None else "—",
        "named": lambda row, prefix="indicator": row.get(f"{prefix}_name_{lang}") or row.get(prefix) or "—",
        "window_choices": service.WINDOW_CHOICES,
    }


@router.get("/data-health")
async def data_health(
    request: Request, days: str | None = None, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """The agencies ranked, worst first, each with its feeds' four scores and state."""
    app_parts = parts(request)
    chosen = window_days(days)
    window = service.window_of(app_parts.clock(), chosen)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return service.ranking_report(session, principal, window, app_parts.settings.province_code)

    report = await run_in_threadpool(run)
    lang = language(request)
    return render(
        request,
        "data_health.html",
        {"report": report, "days": chosen, "window": window, **_helpers(lang)},
    )


@router.get("/data-health/feeds/{code}")
async def data_health_feed(
    request: Request,
    code: str,
    days: str | None = None,
    principal: Principal = Depends(require_page("read_data")),
) -> Response:
    """One feed: its scores, what is missing, the rejected rows, the flagged values and the late periods."""
    app_parts = parts(request)
    chosen = window_days(days)
    window = service.window_of(app_parts.clock(), chosen)

    def run() -> dict[str, Any] | None:
        with app_parts.db.reading() as session:
            try:
                return service.feed_report(session, principal, code, window, app_parts.settings.province_code)
            except (service.FeedUnknown, service.FeedNotYours):
                # As in the API: another agency's feed is "not one you may see", like an unknown one.
                return None

    report = await run_in_threadpool(run)
    lang = language(request)
    context: dict[str, Any] = {"report": report, "code": code[:64], "days": chosen, "window": window, **_helpers(lang)}
    return render(request, "data_health_feed.html", context, status_code=200 if report else 404)
