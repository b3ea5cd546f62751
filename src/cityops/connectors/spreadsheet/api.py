"""Spreadsheet uploads by API: the template of a feed, upload (a preview with per-row errors), commit, discard."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.connectors.spreadsheet import service
from cityops.web.deps import client_ip, parts, require
from cityops.web.problems import Problem

router = APIRouter(tags=["spreadsheets"])
PERMISSION = "supply_data"
MAX_UPLOAD_ID = 2**63 - 1
UploadId = Path(ge=1, le=MAX_UPLOAD_ID, description="The upload's id, from the answer to the upload")
FeedCode = Path(min_length=1, max_length=64, description="The feed's code")
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No key and no log-in"},
    403: {"description": "A role that does not supply data, or no CSRF token from a browser session"},
    404: {"description": "No such spreadsheet feed of your agency (or no such upload)"},
}


def refused(exc: service.UploadRefused) -> Problem:
    """The problem answer of a refused request."""
    return Problem(exc.status, exc.code, **exc.params)


async def received_file(request: Request, max_bytes: int) -> service.Uploaded:
    """The uploaded file: the `file` part of a multipart form, or the body itself (any other content type)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Problem(422, "spreadsheet_file_missing")
            content = await upload.read(max_bytes + 1)
            name = upload.filename or ""
    else:
        content = await request.body()
        name = request.query_params.get("file_name", "")
    if len(content) > max_bytes:
        raise Problem(413, "body_too_large", limit=max_bytes)
    return service.Uploaded(content, name.replace("\x00", "").strip()[-255:])


@router.get(
    "/api/v1/feeds/{code}/template.{fmt}",
    responses={
        **_ERRORS,
        200: {
            "content": {service.XLSX_MEDIA_TYPE: {}, "text/csv": {}},
            "description": "The template file: Vietnamese headers, the subjects to fill, the period filled in",
        },
        409: {"description": "Not a spreadsheet feed"},
        422: {"description": "The period is not one"},
    },
    summary="Template of a feed / Biểu mẫu của nguồn dữ liệu",
)
async def feed_template(
    request: Request,
    code: str = FeedCode,
    fmt: str = Path(pattern="^(xlsx|csv)$", description="xlsx or csv"),
    period: str | None = Query(
        default=None,
        max_length=40,
        description="The period to fill in (27/11/2026, 11/2026, Quý 4/2026, 2026, 2026-11 …); default: the oldest "
        "late period, else the one due next",
    ),
    principal: Principal = Depends(require(PERMISSION)),
) -> Response:
    """The feed's template, to fill in and upload: one row per subject the feed must cover, one column per
    indicator (Vietnamese name and unit), the period filled in, instructions in Vietnamese and English."""
    app_parts = parts(request)

    def run() -> tuple[bytes, str, str]:
        with app_parts.db.reading() as session:
            return service.template(
                session,
                principal,
                code,
                app_parts.clock(),
                province_code=app_parts.settings.province_code,
                fmt=fmt,
                period=period,
            )

    try:
        content, name, media_type = await run_in_threadpool(run)
    except service.UploadRefused as exc:
        raise refused(exc) from exc
    disposition = f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


@router.get(
    "/api/v1/feeds/{code}/uploads",
    responses={**_ERRORS, 409: {"description": "Not a spreadsheet feed"}},
    summary="Uploads of a feed / Các lần tải tệp lên",
)
async def feed_uploads(
    request: Request,
    code: str = FeedCode,
    limit: int = Query(default=20, ge=1, le=200),
    principal: Principal = Depends(require(PERMISSION)),
) -> dict[str, Any]:
    """The feed's latest uploads, newest first."""
    app_parts = parts(request)

    def run() -> list[dict[str, Any]]:
        with app_parts.db.reading() as session:
            return service.list_uploads(session, principal, code, limit)

    try:
        return {"uploads": await run_in_threadpool(run)}
    except service.UploadRefused as exc:
        raise refused(exc) from exc


@router.post(
    "/api/v1/feeds/{code}/uploads",
    status_code=201,
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
                },
                service.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
    responses={
        **_ERRORS,
        201: {"description": "The preview: rows read, items found, each error with its row and column"},
        409: {"description": "Not a spreadsheet feed"},
        413: {"description": "Too large, too many rows or values"},
        415: {"description": "Not a CSV or XLSX file (told by its content)"},
        422: {"description": "Empty, unreadable, no header row, or no recognisable columns"},
    },
    summary="Upload a file (preview) / Tải tệp lên (xem trước)",
)
async def upload_file(
    request: Request,
    code: str = FeedCode,
    principal: Principal = Depends(require(PERMISSION)),
) -> JSONResponse:
    """Read a CSV or XLSX file and keep it as a preview — nothing is stored until it is committed.

    Every good value is kept; every bad row or cell gets an error naming its row (as Excel numbers it), its
    column and why, in Vietnamese and English. Items are checked against the catalog as ingest would.
    """
    app_parts = parts(request)
    uploaded = await received_file(request, app_parts.settings.max_body_bytes)
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        return service.preview(
            app_parts.db,
            principal,
            actor,
            code,
            uploaded,
            app_parts.clock(),
            province_code=app_parts.settings.province_code,
            secret_key=app_parts.settings.resolved_secret_key,
        )

    try:
        return JSONResponse(await run_in_threadpool(run), status_code=201)
    except service.UploadRefused as exc:
        raise refused(exc) from exc


@router.get(
    "/api/v1/feeds/{code}/uploads/{upload_id}",
    responses={**_ERRORS, 409: {"description": "Not a spreadsheet feed"}},
    summary="One upload / Một lần tải tệp lên",
)
async def one_upload(
    request: Request,
    code: str = FeedCode,
    upload_id: int = UploadId,
    principal: Principal = Depends(require(PERMISSION)),
) -> dict[str, Any]:
    """An upload: its state, errors, a sample of its items and, once committed, what was stored."""
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return service.get_upload(session, principal, code, upload_id)

    try:
        return await run_in_threadpool(run)
    except service.UploadRefused as exc:
        raise refused(exc) from exc


@router.post(
    "/api/v1/feeds/{code}/uploads/{upload_id}/commit",
    responses={**_ERRORS, 409: {"description": "Already committed or discarded, or not a spreadsheet feed"}},
    summary="Commit an upload / Gửi dữ liệu của tệp",
)
async def commit_upload(
    request: Request,
    code: str = FeedCode,
    upload_id: int = UploadId,
    principal: Principal = Depends(require(PERMISSION)),
) -> dict[str, Any]:
    """Store the upload's good items (checked again now) and keep each error as a rejection; once only."""
    app_parts = parts(request)
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        return service.commit(app_parts.db, principal, actor, code, upload_id, app_parts.clock())

    try:
        return await run_in_threadpool(run)
    except service.UploadRefused as exc:
        raise refused(exc) from exc


@router.delete(
    "/api/v1/feeds/{code}/uploads/{upload_id}",
    responses={**_ERRORS, 409: {"description": "Already committed or discarded, or not a spreadsheet feed"}},
    summary="Discard an upload / Hủy tệp đã tải lên",
)
async def discard_upload(
    request: Request,
    code: str = FeedCode,
    upload_id: int = UploadId,
    principal: Principal = Depends(require(PERMISSION)),
) -> dict[str, Any]:
    """Close a preview without storing anything."""
    app_parts = parts(request)
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        return service.discard(app_parts.db, principal, actor, code, upload_id, app_parts.clock())

    try:
        return await run_in_threadpool(run)
    except service.UploadRefused as exc:
        raise refused(exc) from exc
