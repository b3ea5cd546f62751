"""Decision-support pages: `/insights` (plan vs actual of every indicator with a target, filterable by subsystem,
with the status in colour and words and its reason), `/insights/rankings/{code}` (communes or agencies best first
with the change of rank) and `/insights/anomalies` (the list of anomalies with their reasons). All `read_data`;
plain GET forms, no script."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.boards.pages import _symbol
from cityops.catalog.models import Domain, Indicator
from cityops.catalog.pages import with_unit
from cityops.clock import LOCAL_TZ
from cityops.i18n import format_number, format_period, translate
from cityops.insights import service
from cityops.observations.periods import period_of
from cityops.web.deps import language, parts
from cityops.web.pages import render, require_page

router = APIRouter(include_in_schema=False)
MAX_CODE = 80
STATUS_CLASS = {"on_track": "good", "at_risk": "watch", "off_track": "bad", "no_data": "nodata"}


def _pick(vi: str, en: str, lang: str) -> str:
    return vi if lang == "vi" else en or vi


def _names(session: Any, codes: list[str]) -> dict[str, tuple[str, str, str, str]]:
    """code → (Vietnamese name, English name, unit, period type)."""
    if not codes:
        return {}
    return {
        row.code: (row.name_vi, row.name_en, row.unit, row.period_type)
        for row in session.execute(
            select(Indicator.code, Indicator.name_vi, Indicator.name_en, Indicator.unit, Indicator.period_type).where(
                Indicator.code.in_(codes)
            )
        )
    }


def _progress_context(request: Request, principal: Principal, domain: str) -> dict[str, Any]:
    app_parts = parts(request)
    lang = language(request)
    now = app_parts.clock()
    with app_parts.db.reading() as session:
        domains = [
            (row.code, _pick(row.name_vi, row.name_en, lang))
            for row in session.execute(select(Domain.code, Domain.name_vi, Domain.name_en).order_by(Domain.sort_order))
        ]
        chosen = domain if domain in {code for code, _ in domains} else ""
        items = service.plan_vs_actual(
            session, principal, now, domain=chosen or None, province=app_parts.settings.province_code
        )
        names = _names(session, [item.indicator for item in items])
    rows = []
    for item in items:
        name_vi, name_en, unit, _ = names.get(item.indicator, (item.indicator, item.indicator, item.unit, ""))
        symbol = _symbol(unit, lang)
        status = STATUS_CLASS[item.status]
        rows.append(
            {
                "code": item.indicator,
                "name": _pick(name_vi, name_en, lang),
                "target": with_unit(item.target, symbol, lang),
                "actual": with_unit(item.actual, symbol, lang) if item.actual is not None else "—",
                "as_of": format_period("month", period_of("month", item.as_of).key, lang) if item.as_of else "",
                "counted": translate("insights.counted", lang, count=item.periods_counted, total=item.periods_in_year),
                "pct": format_number(item.progress_pct, lang, 1) + "%" if item.progress_pct is not None else "—",
                "projected": with_unit(item.projected, symbol, lang) if item.projected is not None else "—",
                "status": item.status,
                "status_class": status,
                "status_word": translate(f"insights.status.{item.status}", lang),
                "reason": service.describe(item.reason, item.params, lang),
            }
        )
    counts = {status: sum(1 for row in rows if row["status"] == status) for status in STATUS_CLASS}
    return {
        "domains": domains,
        "domain": chosen,
        "rows": rows,
        "counts": counts,
        "year": now.astimezone(LOCAL_TZ).year,
        "index_codes": list(service.indices()),
    }


@router.get("/insights")
async def insights_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """Plan vs actual of every indicator with a target this year."""
    domain = (request.query_params.get("domain") or "")[:32].replace("\x00", "")
    context = await run_in_threadpool(_progress_context, request, principal, domain)
    return render(request, "insights/index.html", context)


def _ranking_context(request: Request, principal: Principal, code: str, by: str) -> dict[str, Any] | None:
    app_parts = parts(request)
    lang = language(request)
    with app_parts.db.reading() as session:
        try:
            found = service.ranking(
                session, principal, app_parts.clock(), code, by=by, province=app_parts.settings.province_code
            )
        except service.UnknownCode:
            return None
        names = _names(session, [code])
    index = service.indices().get(code)
    if index is not None:
        title, symbol, period_type = _pick(index.name_vi, index.name_en, lang), "", index.period
    elif code == service.PLAN_CODE:
        title, symbol, period_type = translate("insights.plan_ranking", lang), "%", "month"
    else:
        name_vi, name_en, unit, period_type = names[code]
        title, symbol = _pick(name_vi, name_en, lang), _symbol(unit, lang)
        period_type = period_type if period_type not in ("instant", "day") else "month"

    def label(moment: Any) -> str:
        if not moment:
            return "—"
        text = format_period(period_type, period_of(period_type, moment).key, lang)
        return text[:1].upper() + text[1:]

    rows = []
    for row in found.rows:
        if row.change is None:
            change, change_class = translate("insights.rank.new", lang), "same"
        elif row.change > 0:
            change, change_class = translate("insights.rank.up", lang, count=row.change), "up"
        elif row.change < 0:
            change, change_class = translate("insights.rank.down", lang, count=-row.change), "down"
        else:
            change, change_class = translate("insights.rank.same", lang), "same"
        rows.append(
            {
                "rank": row.rank,
                "unit": row.unit,
                "name": _pick(row.name_vi, row.name_en, lang),
                "value": with_unit(row.value, symbol, lang) if symbol else format_number(row.value, lang, 1),
                "previous_rank": row.previous_rank if row.previous_rank is not None else "—",
                "change": change,
                "change_class": change_class,
            }
        )
    return {
        "code": code,
        "by": found.by,
        "title": title,
        "period": label(found.period_start),
        "previous_period": label(found.previous_period_start),
        "rows": rows,
        "index": index,
        "description": _pick(index.description_vi, index.description_en, lang) if index else "",
    }


@router.get("/insights/rankings/{code}")
async def ranking_page(
    request: Request, code: str, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """Communes (or agencies) best first for an indicator or a composite index."""
    by = request.query_params.get("by") or "commune"
    by = by if by in ("commune", "agency") else "commune"
    clean = code[:MAX_CODE].replace("\x00", "")
    context = await run_in_threadpool(_ranking_context, request, principal, clean, by)
    if context is None:
        lang = language(request)
        message = translate("insights.not_found", lang, code=clean)
        return render(request, "boards/not_found.html", {"message": message}, status_code=404)
    return render(request, "insights/ranking.html", context)


def anomaly_rows(
    session: Any, anomalies: list[service.Anomaly], lang: str, places: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Anomalies as a page lists them: indicator, place, period, value, expected, reason (also used by the boards)."""
    names = _names(session, sorted({a.indicator for a in anomalies}))
    if places is None:
        from cityops.geo.models import Subject

        codes = sorted({a.subject for a in anomalies})
        places = {
            row.code: _pick(row.name_vi, row.name_en, lang)
            for row in session.execute(
                select(Subject.code, Subject.name_vi, Subject.name_en).where(Subject.code.in_(codes or [""]))
            )
        }
    rows = []
    for anomaly in anomalies:
        name_vi, name_en, unit, period_type = names.get(anomaly.indicator, (anomaly.indicator, "", "", "month"))
        bucket = period_type if period_type not in ("instant", "day") else "day"
        symbol = _symbol(unit, lang)
        reason, params = service.anomaly_reason(anomaly)
        rows.append(
            {
                "indicator": anomaly.indicator,
                "name": _pick(name_vi, name_en, lang),
                "subject": anomaly.subject,
                "place": places.get(anomaly.subject, anomaly.subject),
                "period": format_period(bucket, period_of(bucket, anomaly.period_start).key, lang),
                "period_key": period_of(bucket, anomaly.period_start).key,
                "kind": anomaly.kind,
                "kind_word": translate(f"insights.kind.{anomaly.kind}", lang),
                "value": with_unit(anomaly.value, symbol, lang),
                "expected": with_unit(anomaly.expected, symbol, lang),
                "reason": service.describe(reason, params, lang),
            }
        )
    return rows


def _anomalies_context(request: Request, principal: Principal, domain: str) -> dict[str, Any]:
    app_parts = parts(request)
    lang = language(request)
    with app_parts.db.reading() as session:
        domains = [
            (row.code, _pick(row.name_vi, row.name_en, lang))
            for row in session.execute(select(Domain.code, Domain.name_vi, Domain.name_en).order_by(Domain.sort_order))
        ]
        chosen = domain if domain in {code for code, _ in domains} else ""
        found = service.anomalies(
            session, principal, app_parts.clock(), domain=chosen or None, province=app_parts.settings.province_code
        )
        rows = anomaly_rows(session, found, lang)
    return {"domains": domains, "domain": chosen, "rows": rows}


@router.get("/insights/anomalies")
async def anomalies_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """Anomalies of the last 35 days, most severe first."""
    domain = (request.query_params.get("domain") or "")[:32].replace("\x00", "")
    context = await run_in_threadpool(_anomalies_context, request, principal, domain)
    return render(request, "insights/anomalies.html", context)
