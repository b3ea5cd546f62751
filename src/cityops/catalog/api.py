"""JSON routes of the catalog."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.catalog import exchange, service
from cityops.catalog.schemas import IndicatorOut
from cityops.web.deps import client_ip, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["catalog"])


class IndicatorPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[IndicatorOut]


@router.get("/indicators", response_model=IndicatorPage, summary="Indicators / Danh mục chỉ tiêu")
async def list_indicators(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    domain: str = Query(default="", max_length=32, description="Subsystem code, e.g. hcc"),
    q: str = Query(default="", max_length=100, description="Search in code and names"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """The indicators the caller may see, in catalog order."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            rows, total = service.list_indicators(
                session, principal, domain=domain, search=q, limit=limit, offset=offset
            )
            return {
                "total": total,
                "limit": limit,
                "offset": offset,
                "items": [service.indicator_out(*row) for row in rows],
            }

    return await run_in_threadpool(run)


@router.get("/indicators/{code}", response_model=IndicatorOut, summary="One indicator / Một chỉ tiêu")
async def get_indicator(
    request: Request, code: str, principal: Principal = Depends(require("read_data"))
) -> dict[str, Any]:
    """One indicator's definition."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            row = service.get_indicator(session, principal, code)
            if row is None:
                raise Problem(404, "unknown_indicator", code=code[:80])
            return service.indicator_out(*row)

    return await run_in_threadpool(run)


# --- export and import ------------------------------------------------------------------------------


@router.get(
    "/catalog/export",
    response_class=Response,
    responses={
        200: {
            "description": "The catalog file (Content-Disposition: attachment)",
            "content": {media_type.split(";")[0]: {} for media_type in exchange.MEDIA_TYPES.values()},
        }
    },
    summary="Export the catalog / Xuất danh mục chỉ tiêu",
)
async def export_catalog(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    format: Literal["json", "csv", "xlsx"] = Query(default="json", description="json, csv or xlsx"),
) -> Response:
    """The whole catalog the caller may see: domains, indicators with targets and thresholds (and, in JSON,
    agencies and units), as a file named like cityops-catalog-2026-11-27.xlsx."""
    app_parts = parts(request)

    def run() -> exchange.Export:
        with app_parts.db.reading() as session:
            return exchange.export_catalog(session, principal, app_parts.clock(), format)

    result = await run_in_threadpool(run)
    return Response(
        result.content,
        media_type=result.media_type,
        headers={"Content-Disposition": f'attachment; filename="{result.filename}"'},
    )


class ChangeOut(BaseModel):
    field: str
    old: Any
    new: Any


class OutcomeOut(BaseModel):
    code: str
    outcome: Literal["created", "updated", "unchanged"]
    version: int
    previous_version: int | None
    sheet: str | None
    row: int | None
    path: str | None
    changes: list[ChangeOut]


class RejectedRowOut(BaseModel):
    sheet: str | None
    row: int | None
    path: str | None
    code: str
    field: str
    reason: str
    message_vi: str
    message_en: str


class ImportReportOut(BaseModel):
    """What an import changed (or, in a dry run, would change), and why each rejected row was not applied."""

    file: str
    format: str
    dry_run: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected_rows: int
    not_in_file: int
    message_vi: str
    message_en: str
    indicators: list[OutcomeOut]
    rejected: list[RejectedRowOut]


@router.post(
    "/catalog/import",
    response_model=ImportReportOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
    responses={
        401: {"description": "Not logged in"},
        403: {"description": "Not an admin or operator, or no CSRF token"},
        413: {"description": "File too large"},
        422: {"description": "Not a catalog, unreadable, or wrong columns (nothing applied)"},
    },
    summary="Import the catalog / Nhập danh mục chỉ tiêu",
)
async def import_catalog(
    request: Request,
    principal: Principal = Depends(require("manage_catalog")),
    dry_run: bool = Query(default=False, description="Only show what would change"),
    format: Literal["json", "csv", "xlsx"] | None = Query(
        default=None, description="Default: by the file's extension, else by its content"
    ),
) -> dict[str, Any]:
    """Apply every good row of a JSON, CSV or XLSX catalog file; reject each bad row with its reason.

    A changed indicator gets a new version (the old one kept), audited. An indicator absent from the file is kept.
    """
    app_parts = parts(request)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise Problem(422, "catalog_file_missing")
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(422, "catalog_file_missing")
        content = await upload.read(exchange.MAX_IMPORT_BYTES + 1)
        filename = (upload.filename or "").replace("\x00", "")[-200:]
    if len(content) > exchange.MAX_IMPORT_BYTES:
        raise Problem(413, "catalog_file_too_large", limit=exchange.MAX_IMPORT_BYTES)
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        with app_parts.db.reading() if dry_run else app_parts.db.writing() as session:
            report = exchange.import_catalog(
                session, actor, app_parts.clock(), content, filename=filename, fmt=format, dry_run=dry_run
            )
            return report.as_dict()

    try:
        return await run_in_threadpool(run)
    except exchange.ImportRefused as refused:
        raise Problem(refused.status, refused.code, **refused.params) from refused
