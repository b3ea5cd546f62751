"""JSON routes of geography: the province's boundary, its administrative units, and the places registry.

Who may read what (docs/geography.md):
- the boundary and the administrative units are public facts: every logged-in user (citizens too) and every key;
- places need `read_data` (not citizens): the registry may hold places that are not public;
- importing places needs `manage_catalog` (admins and operators).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.geo import service
from cityops.geo.places_file import PlaceFileError
from cityops.geo.schemas import PlaceImportOut, PlaceOut, PlacePage, UnitOut, UnitPage
from cityops.web.deps import client_ip, optional_principal, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["geography"])
GEOJSON = "application/geo+json"
# A places file is read whole into memory: at most this much (and never more than CITYOPS_MAX_BODY_BYTES).
MAX_IMPORT_BYTES = 5 * 1024 * 1024
RAW_IMPORT_TYPES = ("text/csv", "application/csv", "application/geo+json", "application/json")
KIND_PATTERN = "^(" + "|".join(service.PLACE_KINDS) + ")$"


async def signed_in(principal: Principal | None = Depends(optional_principal)) -> Principal:
    """Any logged-in user or agency key, whatever the role."""
    if principal is None:
        raise Problem(401, "unauthenticated", headers={"WWW-Authenticate": "Bearer"})
    return principal


def _province(request: Request) -> str:
    return f"{int(parts(request).settings.province_code):02d}"


def _geojson(document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), media_type=GEOJSON)


@router.get(
    "/geo/boundary",
    summary="The province's boundary / Ranh giới tỉnh",
    responses={200: {"content": {GEOJSON: {}}, "description": "GeoJSON FeatureCollection of one feature"}},
)
async def boundary(request: Request, _principal: Principal = Depends(signed_in)) -> Response:
    """The province's boundary (simplified, with its attribution), as a GeoJSON FeatureCollection. Cacheable."""
    code = _province(request)
    try:
        body = service.boundary_document(code)
    except ValueError as exc:
        raise Problem(404, "no_boundary", code=code) from exc
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=GEOJSON, headers=headers)


def _units(request: Request, kind: str, q: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    with parts(request).db.reading() as session:
        units, total = service.list_units(session, _province(request), kind=kind, q=q, limit=limit, offset=offset)
        parents = service.unit_parent_codes(session, units)
        return [service.unit_out(unit, parents.get(unit.parent_id or -1)) for unit in units], total


@router.get("/units", response_model=UnitPage, summary="Administrative units / Đơn vị hành chính")
async def list_units(
    request: Request,
    _principal: Principal = Depends(signed_in),
    kind: str = Query(default="", pattern="^(province|commune)?$"),
    q: str = Query(default="", max_length=100, description="Name with or without diacritics or type word, or code"),
    limit: int = Query(default=200, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """The province and its communes and wards (2025): codes to send as `subject`, names, centroids, areas."""
    items, total = await run_in_threadpool(_units, request, kind, q, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get(
    "/units.geojson",
    summary="Administrative units as points / Đơn vị hành chính (GeoJSON)",
    responses={200: {"content": {GEOJSON: {}}, "description": "GeoJSON FeatureCollection of points"}},
)
async def units_geojson(
    request: Request,
    _principal: Principal = Depends(signed_in),
    kind: str = Query(default="", pattern="^(province|commune)?$"),
    q: str = Query(default="", max_length=100),
    limit: int = Query(default=1000, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
) -> Response:
    """The same units as points at their centroids."""
    items, _total = await run_in_threadpool(_units, request, kind, q, limit, offset)
    return _geojson(service.units_geojson(items))


@router.get("/units/{code}", response_model=UnitOut, summary="One administrative unit / Một đơn vị hành chính")
async def get_unit(request: Request, code: str, _principal: Principal = Depends(signed_in)) -> dict[str, Any]:
    """The province or one of its communes, by code."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            unit = service.get_unit(session, _province(request), code)
            if unit is None:
                raise Problem(404, "unknown_subject", code=code[:64])
            parents = service.unit_parent_codes(session, [unit])
            return service.unit_out(unit, parents.get(unit.parent_id or -1))

    return await run_in_threadpool(run)


def _places(
    request: Request, kind: str, commune: str, q: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    with parts(request).db.reading() as session:
        commune_id = None
        if commune.strip():
            try:
                commune_id = service.resolve_commune(service.province_communes(session, _province(request)), commune).id
            except service.RowRejected as exc:
                if exc.code == "ambiguous_commune":
                    raise Problem(422, "ambiguous_commune", **exc.params) from exc
                raise Problem(404, "unknown_subject", code=commune[:64]) from exc
        return service.list_places(session, kind=kind, commune_id=commune_id, q=q, limit=limit, offset=offset)


@router.get("/places", response_model=PlacePage, summary="Places / Địa điểm")
async def list_places(
    request: Request,
    _principal: Principal = Depends(require("read_data")),
    kind: str = Query(default="", pattern=KIND_PATTERN.replace(")$", ")?$")),
    commune: str = Query(default="", max_length=100, description="Commune code or name"),
    q: str = Query(default="", max_length=100, description="Words of the code, names or address"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """Tourist sites, hospitals, schools, markets … ordered by code."""
    items, total = await run_in_threadpool(_places, request, kind, commune, q, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get(
    "/places.geojson",
    summary="Places as points / Địa điểm (GeoJSON)",
    responses={200: {"content": {GEOJSON: {}}, "description": "GeoJSON FeatureCollection of points"}},
)
async def places_geojson(
    request: Request,
    _principal: Principal = Depends(require("read_data")),
    kind: str = Query(default="", pattern=KIND_PATTERN.replace(")$", ")?$")),
    commune: str = Query(default="", max_length=100),
    q: str = Query(default="", max_length=100),
    limit: int = Query(default=5000, ge=1, le=10000),
    offset: int = Query(default=0, ge=0),
) -> Response:
    """The same places as GeoJSON points, for the map."""
    items, _total = await run_in_threadpool(_places, request, kind, commune, q, limit, offset)
    return _geojson(service.places_geojson(items))


@router.get("/places/{code}", response_model=PlaceOut, summary="One place / Một địa điểm")
async def get_place(request: Request, code: str, _principal: Principal = Depends(require("read_data"))) -> Any:
    """One place by code."""

    def run() -> dict[str, Any] | None:
        with parts(request).db.reading() as session:
            return service.get_place(session, code)

    place = await run_in_threadpool(run)
    if place is None:
        raise Problem(404, "unknown_place", code=code[:64])
    return place


async def _upload(request: Request, limit: int) -> bytes:
    """The uploaded file: the `file` part of a multipart form, or the body itself when sent as CSV or GeoJSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in RAW_IMPORT_TYPES:
        data = await request.body()
    elif content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Problem(422, "validation_failed", reason="file: a file is required (multipart field 'file')")
            data = await upload.read(limit + 1)
    else:
        raise Problem(415, "unsupported_media_type")
    if len(data) > limit:
        raise Problem(413, "body_too_large", limit=limit)
    return data


@router.post(
    "/places/import",
    response_model=PlaceImportOut,
    summary="Import places from CSV or GeoJSON / Nhập địa điểm từ CSV hoặc GeoJSON",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
                "application/geo+json": {"schema": {"type": "object"}},
            },
        }
    },
    responses={
        401: {"description": "Not logged in"},
        403: {"description": "Not an admin or operator, or no CSRF token"},
        413: {"description": "File too large or too many rows"},
        415: {"description": "Not multipart, CSV or GeoJSON"},
        422: {"description": "The file as a whole cannot be read (not UTF-8, no header, not GeoJSON)"},
    },
)
async def import_places(request: Request, principal: Principal = Depends(require("manage_catalog"))) -> Any:
    """Keep every good row (a known code updates its place) and say why each bad row was rejected."""
    app_parts = parts(request)
    data = await _upload(request, min(MAX_IMPORT_BYTES, app_parts.settings.max_body_bytes))
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        with app_parts.db.writing() as session:
            report = service.import_places(
                session,
                actor,
                app_parts.clock(),
                data,
                province_code=_province(request),
                max_rows=app_parts.settings.max_batch_items,
            )
            return report.out()

    try:
        return await run_in_threadpool(run)
    except PlaceFileError as exc:
        status = 413 if exc.code == "places_file_too_many_rows" else 422
        raise Problem(status, exc.code, **exc.params) from exc
