"""The map (`/map`) and its data (`/map/layers/<name>.geojson`) — issue 7, point 4.

The page draws the province's boundary, the communes (points at their centres, shaded by a chosen indicator) and
the layers of tourist sites, cameras, citizen reports, incidents and firing alerts with the vendored Leaflet and
leaflet.markercluster; no tile layer unless `CITYOPS_MAP_TILE_URL` names one on the province's own server. Both
need `read_data`; each layer holds only what the user may see (geo/layers.py) and no personal data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.alerts.models import SEVERITIES as ALERT_SEVERITIES
from cityops.geo import layers
from cityops.i18n import translate
from cityops.incidents.models import SEVERITIES as INCIDENT_SEVERITIES
from cityops.incidents.models import STATUSES as INCIDENT_STATUSES
from cityops.web.deps import language, parts
from cityops.web.pages import render, require_page
from cityops.web.problems import Problem

router = APIRouter(include_in_schema=False)
GEOJSON = "application/geo+json"
LIVE_SCRIPT = Path(__file__).resolve().parent.parent / "web" / "static" / "live.js"


def _province(request: Request) -> str:
    return f"{int(parts(request).settings.province_code):02d}"


def _problem(exc: layers.LayerError) -> Problem:
    status = 404 if exc.code in ("not_found", "unknown_indicator") else 422
    return Problem(status, exc.code, **exc.params)


@router.get("/map/layers/{name}.geojson")
async def map_layer(
    request: Request,
    name: str,
    principal: Principal = Depends(require_page("read_data")),
    indicator: str = Query(default="", max_length=80),
    status: str = Query(default="", max_length=32),
    severity: str = Query(default="", max_length=32),
) -> Response:
    """One layer of the map as GeoJSON: what the user may see, without personal data."""
    lang = language(request)
    province = _province(request)
    filters = layers.Filters(indicator=indicator.strip(), status=status.strip(), severity=severity.strip())

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            return layers.layer(session, principal, name, province, filters, lang)

    try:
        document = await run_in_threadpool(run)
    except layers.LayerError as exc:
        raise _problem(exc) from exc
    return Response(orjson.dumps(document), media_type=GEOJSON, headers={"Cache-Control": "no-store"})


def _words(lang: str) -> dict[str, Any]:
    """What map.js writes in popups, legends and the layer control, in the page's language."""

    def t(key: str) -> str:
        return translate(key, lang)

    return {
        "layers": {name: t(f"map.layer.{name}") for name in layers.LAYERS},
        "report_status": {status: t(f"map.report_status.{status}") for status in layers.REPORT_STATUSES},
        "incident_status": {status: t(f"map.incident_status.{status}") for status in INCIDENT_STATUSES},
        "severity": {level: t(f"map.severity.{level}") for level in (*INCIDENT_SEVERITIES, *ALERT_SEVERITIES)},
        "camera_status": {status: t(f"map.camera_status.{status}") for status in ("online", "partial", "offline")},
        "alert_state": t("map.alert_state.firing"),
        "status": t("map.popup.status"),
        "severity_word": t("map.popup.severity"),
        "category": t("map.popup.category"),
        "commune": t("map.popup.commune"),
        "agency": t("map.popup.agency"),
        "value": t("map.popup.value"),
        "cameras": t("map.popup.cameras"),
        "open": t("map.popup.open"),
        "board": t("map.popup.board"),
        "no_value": t("map.legend.no_value"),
        "boundary": t("map.layer.boundary"),
        "failed": t("map.failed"),
        "count": t("map.count"),
        "layers_button": t("map.layers_button"),
        "zoom_in": t("map.zoom_in"),
        "zoom_out": t("map.zoom_out"),
        "close": t("map.close"),
    }


def _context(request: Request, principal: Principal) -> tuple[dict[str, Any], int]:
    lang = language(request)
    chosen = {name: request.query_params.get(name, "").strip()[:80] for name in ("indicator", "report_status")}
    chosen["incident_status"] = request.query_params.get("incident_status", "").strip()[:32]
    chosen["severity"] = request.query_params.get("severity", "").strip()[:32]
    with parts(request).db.reading() as session:
        indicators = layers.commune_indicators(session, principal)
    options = [
        (indicator.code, indicator.name_en if lang == "en" and indicator.name_en else indicator.name_vi, domain)
        for indicator, domain in indicators
    ]
    errors = []
    if chosen["indicator"] and chosen["indicator"] not in {code for code, _, _ in options}:
        errors.append(("indicator", "map.error.indicator"))
    if chosen["report_status"] and chosen["report_status"] not in layers.REPORT_STATUSES:
        errors.append(("report_status", "map.error.status"))
    if chosen["incident_status"] and chosen["incident_status"] not in INCIDENT_STATUSES:
        errors.append(("incident_status", "map.error.status"))
    if chosen["severity"] and chosen["severity"] not in ALERT_SEVERITIES:
        errors.append(("severity", "map.error.severity"))
    for name, _key in errors:
        chosen[name] = ""  # the map draws without the bad filter; the form says what was wrong
    settings = {
        "layers": list(layers.LAYERS),
        "boundary": "/api/v1/geo/boundary",
        "base": "/map/layers/",
        "tiles": parts(request).settings.map_tile_url,
        "lang": lang,
        "chosen": chosen,
        "words": _words(lang),
    }
    return {
        "indicators": options,
        "chosen": chosen,
        "errors": dict(errors),
        "report_statuses": layers.REPORT_STATUSES,
        "incident_statuses": INCIDENT_STATUSES,
        "severities": ALERT_SEVERITIES,
        "layer_names": layers.LAYERS,
        "settings_json": orjson.dumps(settings).decode(),
        "live": LIVE_SCRIPT.exists(),
        "tiles": bool(parts(request).settings.map_tile_url),
    }, 422 if errors else 200


@router.get("/map")
async def map_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The map of the province with its layers, filters and details on click."""
    context, status = await run_in_threadpool(_context, request, principal)
    return render(request, "map/map.html", context, status_code=status)
