"""Subsystem boards: `/boards` lists the nine subsystems; `/boards/<domain>` shows every monitored item of one with
its latest value against target, its trend (with the target line), the communes' values best to worst, and a
period selector; `?subject=<commune code>` shows the same board for one commune.

Everything is in the page (no-JS forms with GET parameters); the trends are drawn by boards.js with ECharts from
data written into the page, and refreshed on the live `values` events when /static/live.js is there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.boards import service
from cityops.catalog.pages import units, with_unit
from cityops.i18n import catalog, format_moment, format_number, format_period, translate
from cityops.web.deps import language, parts
from cityops.web.pages import render, require_page

router = APIRouter(include_in_schema=False)
MAX_CODE = 64
STATUS_ICONS = {"good": "✓", "watch": "!", "bad": "✕", "nodata": "?", "none": "–"}


def _name(item: Any, lang: str) -> str:
    return str(item.name_vi if lang == "vi" else item.name_en or item.name_vi)


def _symbol(unit: str, lang: str) -> str:
    found = units().get(unit)
    if found is None:
        return unit
    return found.symbol_vi if lang == "vi" else found.symbol_en


def _domain_line(code: str, lang: str) -> str:
    key = f"boards.domain.{code}"
    return translate(key, lang) if key in catalog(lang) else ""


def _index_context(request: Request, principal: Principal) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        rows = service.domains(session, principal)
    return {
        "domains": [
            {
                "code": domain.code,
                "name": _name(domain, lang),
                "source_system": domain.source_system,
                "line": _domain_line(domain.code, lang),
                "count": count,
            }
            for domain, count in rows
        ]
    }


@router.get("/boards")
async def boards_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The nine subsystems, each linking to its board."""
    return render(request, "boards/index.html", await run_in_threadpool(_index_context, request, principal))


def _period_label(period_type: str, key: str, lang: str) -> str:
    """27/11/2026, Tháng 11/2026, Năm học 2025-2026: a period as a heading or a chart label says it."""
    label = format_period(period_type, key, lang)
    return label[:1].upper() + label[1:]


def _item_out(item: service.Item, board: service.Board, lang: str, query: dict[str, str]) -> dict[str, Any]:
    indicator = item.indicator
    symbol = _symbol(indicator.unit, lang)
    thresholds = indicator.thresholds or {}
    updated = ""
    if item.source == "stored" and item.received_at is not None:
        updated = translate("boards.updated", lang, moment=format_moment(item.received_at, lang))
    elif item.source == "computed":
        if item.communes_reported is not None and item.communes_expected:
            updated = translate(
                "boards.computed_from", lang, reported=item.communes_reported, expected=item.communes_expected
            )
        else:
            updated = translate("boards.computed", lang)
    plan = ""
    if item.target is not None and item.value is not None and item.target:
        plan = translate("boards.plan_share", lang, share=format_number(100 * item.value / item.target, lang, 1))
    best, worst = service.shown_communes(item.communes)

    def commune_out(commune: service.CommuneValue, top: float) -> dict[str, Any]:
        width = 0.0 if commune.value is None or top <= 0 else max(2.0, 100 * max(commune.value, 0) / top)
        return {
            "code": commune.code,
            "name": commune.name_vi if lang == "vi" else commune.name_en or commune.name_vi,
            "value": with_unit(commune.value, symbol, lang),
            "period": _period_label(commune.period_type, commune.period, lang),
            "status": commune.status,
            "status_word": translate(f"boards.status.{commune.status}", lang),
            "icon": STATUS_ICONS[commune.status],
            "width": f"{width:.1f}",
            "href": "?" + urlencode({**query, "subject": commune.code}),
        }

    top = max((abs(c.value) for c in item.communes if c.value is not None), default=0.0)
    labels = [_period_label(p.period_type, p.period, lang) for p in item.trend]
    chart: dict[str, Any] = {
        "name": _name(indicator, lang),
        "unit": symbol,
        "lang": lang,
        "labels": labels,
        "values": [p.value for p in item.trend],
        "anomalies": [
            {"index": index, "kind": translate(f"insights.kind.{p.anomaly.kind}", lang)}
            for index, p in enumerate(item.trend)
            if p.anomaly is not None
        ],
        "targets": [p.target for p in item.trend],
        "warning": thresholds.get("warning"),
        "critical": thresholds.get("critical"),
        "min": indicator.min_value,
        "max": indicator.max_value,
        "text": {
            "value": translate("boards.chart.value", lang),
            "target": translate("boards.chart.target", lang),
            "warning": translate("boards.chart.warning", lang),
            "critical": translate("boards.chart.critical", lang),
            "anomaly": translate("insights.board.mark", lang),
        },
    }
    return {
        "code": indicator.code,
        "name": _name(indicator, lang),
        "description": indicator.description_vi if lang == "vi" else indicator.description_en,
        "monitored_item": indicator.monitored_item,
        "value": with_unit(item.value, symbol, lang) if item.value is not None else "",
        "status": item.status,
        "status_word": translate(f"boards.status.{item.status}", lang),
        "icon": STATUS_ICONS[item.status],
        "stale": item.stale,
        "period": _period_label(item.period_type, item.period, lang) if item.period else "",
        "updated": updated,
        "target": with_unit(item.target, symbol, lang) if item.target is not None else "",
        "plan": plan,
        "direction": translate(f"catalog.direction.{indicator.direction}", lang),
        "period_type": translate(f"catalog.period.{indicator.period_type}", lang),
        "warning": with_unit(thresholds.get("warning"), symbol, lang) if thresholds.get("warning") is not None else "",
        "critical": with_unit(thresholds.get("critical"), symbol, lang)
        if thresholds.get("critical") is not None
        else "",
        "trend_from": format_moment(item.trend_start, lang)[:10] if item.trend_start else "",
        "points": [
            {
                "label": label,
                "value": with_unit(p.value, symbol, lang),
                "target": with_unit(p.target, symbol, lang),
                "anomaly": translate(f"insights.kind.{p.anomaly.kind}", lang) if p.anomaly is not None else "",
            }
            for label, p in zip(labels, item.trend, strict=True)
        ],
        "chart": chart,
        "has_points": any(p.value is not None for p in item.trend),
        "best": [commune_out(c, top) for c in best],
        "worst": [commune_out(c, top) for c in worst],
        "all_communes": [commune_out(c, top) for c in item.communes] if worst else [],
        "commune_count": len(item.communes),
    }


def _board_context(
    request: Request, principal: Principal, domain: str, subject: str | None, range_code: str | None
) -> dict[str, Any]:
    app_parts = parts(request)
    lang = language(request)
    with app_parts.db.reading() as session:
        board = service.board(
            session,
            principal,
            domain,
            province_code=app_parts.settings.province_code,
            subject_code=subject,
            range_code=range_code,
            now=app_parts.clock(),
        )
    query = {"range": board.range_code}
    if lang == "en" and request.query_params.get("lang") == "en":
        query["lang"] = "en"
    at_commune = board.place.id != board.province.id
    groups: list[dict[str, Any]] = []
    for item in board.items:
        out = _item_out(item, board, lang, query)
        if not groups or groups[-1]["number"] != out["monitored_item"]:
            groups.append({"number": out["monitored_item"], "items": []})
        groups[-1]["items"].append(out)
    counts = {status: sum(1 for item in board.items if item.status == status) for status in service.STATUSES}
    anomalies = _anomalies_out(board, lang)
    return {
        "domain": {
            "code": board.domain.code,
            "name": _name(board.domain, lang),
            "source_system": board.domain.source_system,
            "line": _domain_line(board.domain.code, lang),
        },
        "place": {"code": board.place.code, "name": _name(board.place, lang)},
        "province": {"code": board.province.code, "name": _name(board.province, lang)},
        "at_commune": at_commune,
        "subject": board.place.code if at_commune else "",
        "range": board.range_code,
        "ranges": [{"code": code, "name": translate(f"boards.range.{code}", lang)} for code in board.ranges],
        "range_asked": range_code or "",
        "groups": groups,
        "counts": counts,
        "indicator_codes": " ".join(service.indicator_codes(board)),
        "back_href": f"/boards/{board.domain.code}?" + urlencode(query),
        "count": len(board.items),
        "anomalies": anomalies,
    }


def _anomalies_out(board: service.Board, lang: str) -> list[dict[str, Any]]:
    """The board's "Bất thường" list: indicator, period, what was found and why, in the reader's language."""
    from cityops.insights import service as insights

    items = {item.indicator.code: item for item in board.items}
    out = []
    for anomaly in board.anomalies:
        item = items.get(anomaly.indicator)
        if item is None:
            continue
        indicator = item.indicator
        symbol = _symbol(indicator.unit, lang)
        point = next((p for p in item.trend if p.anomaly is anomaly), None)
        reason, params = insights.anomaly_reason(anomaly)
        params = {**params, "value": with_unit(anomaly.value, symbol, lang)}
        params["expected"] = with_unit(anomaly.expected, symbol, lang)
        out.append(
            {
                "code": indicator.code,
                "name": _name(indicator, lang),
                "kind": anomaly.kind,
                "kind_word": translate(f"insights.kind.{anomaly.kind}", lang),
                "period": _period_label(point.period_type, point.period, lang) if point is not None else "",
                "reason": insights.describe(reason, params, lang),
            }
        )
    return out


def _not_found(request: Request, message: str, **params: Any) -> Response:
    lang = language(request)
    return render(request, "boards/not_found.html", {"message": translate(message, lang, **params)}, status_code=404)


@router.get("/boards/{domain}")
async def board_page(
    request: Request, domain: str, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """One subsystem's board for the province, or for one commune (`?subject=`), over a range (`?range=`)."""
    params = request.query_params
    subject = params.get("subject") or None
    range_code = params.get("range") or None
    clean = domain[:MAX_CODE].replace("\x00", "")
    if subject is not None and (len(subject) > MAX_CODE or "\x00" in subject):
        return _not_found(request, "boards.not_found.subject", code=subject[:MAX_CODE].replace("\x00", ""))
    if range_code is not None and range_code not in service.RANGES:
        range_code = None
    try:
        context = await run_in_threadpool(_board_context, request, principal, clean, subject, range_code)
    except service.UnknownDomain:
        return _not_found(request, "boards.not_found.domain", code=clean)
    except service.UnknownSubject:
        return _not_found(request, "boards.not_found.subject", code=(subject or "")[:MAX_CODE])
    lang = language(request)
    asked = params.get("range")
    if asked and asked != context["range"]:
        chosen = next(r["name"] for r in context["ranges"] if r["code"] == context["range"])
        context["notice"] = translate("boards.range_replaced", lang, range=chosen)
    return render(request, "boards/board.html", context)
