"""JSON routes of data health: the agencies ranked by the trust of their feeds, one feed's and one indicator's scores.

Everyone who may read data sees the ranking (agency and feed names, scores, states). The rows behind a feed's scores
(what is missing, what was rejected, what was flagged) are for province-wide roles and the feed's own agency: for
another agency's feed the answer is the same 404 `feed_not_found` ("no feed … that you may see") as for an unknown
one, as in the feeds API and for indicators.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from cityops.accounts.roles import Principal
from cityops.health import service
from cityops.health.schemas import FeedTrustOut, IndicatorTrustOut, RankingOut
from cityops.web.deps import parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["data health"])

FROM_HELP = "Start: a day (2026-11-01), month, quarter, year or instant; default 30 days before `to`"
TO_HELP = "End, included: a day (2026-11-27), month, … or instant; default now"


def _window(request: Request, start: str | None, end: str | None) -> service.Window:
    try:
        return service.parse_window(start, end, parts(request).clock())
    except service.WindowError as exc:
        raise Problem(422, "health_invalid_window", start=exc.start or "—", end=exc.end or "—") from exc


@router.get(
    "/data-health",
    response_model=RankingOut,
    summary="Agencies ranked by the trust of their feeds / Xếp hạng cơ quan theo độ tin cậy dữ liệu",
)
async def get_ranking(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    start: str | None = Query(default=None, alias="from", max_length=40, description=FROM_HELP),
    end: str | None = Query(default=None, alias="to", max_length=40, description=TO_HELP),
) -> dict[str, Any]:
    """Every agency with feeds, worst overall score first, with each feed's four scores and state."""
    window = _window(request, start, end)
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return service.ranking_report(session, principal, window, app_parts.settings.province_code)

    return await run_in_threadpool(run)


@router.get(
    "/feeds/{code}/trust",
    response_model=FeedTrustOut,
    responses={404: {"description": "No such feed, or another agency's"}},
    summary="A feed's trust scores and the rows that lowered them / Độ tin cậy của một nguồn dữ liệu",
)
async def get_feed_trust(
    request: Request,
    code: str,
    principal: Principal = Depends(require("read_data")),
    start: str | None = Query(default=None, alias="from", max_length=40, description=FROM_HELP),
    end: str | None = Query(default=None, alias="to", max_length=40, description=TO_HELP),
) -> dict[str, Any]:
    """đúng, đủ, sạch, sống of one feed, its state now, and the rows behind each score (capped, counts exact)."""
    window = _window(request, start, end)
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return service.feed_report(session, principal, code, window, app_parts.settings.province_code)

    try:
        return await run_in_threadpool(run)
    except (service.FeedUnknown, service.FeedNotYours) as exc:
        raise Problem(404, "feed_not_found", feed=code[:64]) from exc


@router.get(
    "/indicators/{code}/trust",
    response_model=IndicatorTrustOut,
    responses={404: {"description": "No such indicator that the caller may see"}},
    summary="An indicator's trust scores over its feeds / Độ tin cậy của một chỉ tiêu",
)
async def get_indicator_trust(
    request: Request,
    code: str,
    principal: Principal = Depends(require("read_data")),
    start: str | None = Query(default=None, alias="from", max_length=40, description=FROM_HELP),
    end: str | None = Query(default=None, alias="to", max_length=40, description=TO_HELP),
) -> dict[str, Any]:
    """The indicator's scores pooled over the feeds that carry it; rows only of the feeds the caller may open."""
    window = _window(request, start, end)
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return service.indicator_report(session, principal, code, window, app_parts.settings.province_code)

    try:
        return await run_in_threadpool(run)
    except service.IndicatorUnknown as exc:
        raise Problem(404, "unknown_indicator", code=code[:80]) from exc
