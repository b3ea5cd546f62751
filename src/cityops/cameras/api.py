"""Camera JSON routes.

- `GET /api/v1/cameras` (`read_data`): the cameras the caller may see (province-wide roles: all; others: their
  agency subtree's); `GET /api/v1/cameras/{code}` one, with uptime over 24 h and 7 days (another agency's: 404).
- `POST /api/v1/cameras` (`manage_cameras`): register one; `PATCH /api/v1/cameras/{code}`: change fields
  (`{"enabled": false}` disables it). Errors field by field (422 `camera_invalid`).
- `POST /api/v1/cameras/import` (`manage_cameras`): a CSV body; good rows kept, bad rows answered one by one.
- `POST /api/v1/cameras/events` (`supply_data`: an agency system's key, an operator): video-analytics events.
Credentials are never in an answer: only `credentials_set`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.cameras import events, service
from cityops.web.deps import client_ip, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["cameras"])
MAX_EVENTS = 500


def _json(document: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code=status_code, media_type="application/json")


async def _object(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "invalid_json", reason=str(exc)[:120]) from None


def _invalid(exc: service.CameraInvalid) -> Problem:
    return Problem(422, "camera_invalid", extra={"errors": [p.out() for p in exc.problems]})


@router.get("/cameras", summary="Cameras / Danh sách camera")
async def list_cameras(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    status: str = Query(default="", max_length=16),
    commune: str = Query(default="", max_length=16),
) -> Response:
    app_parts = parts(request)

    def run() -> list[dict[str, Any]]:
        with app_parts.db.reading() as session:
            now = app_parts.clock()
            cameras = service.list_cameras(session, principal, status=status, commune=commune)
            return [service.camera_out(session, camera, now) for camera in cameras]

    return _json({"cameras": await run_in_threadpool(run)})


@router.get("/cameras/{code}", summary="One camera / Một camera")
async def get_camera(request: Request, code: str, principal: Principal = Depends(require("read_data"))) -> Response:
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            try:
                camera = service.get_camera(session, principal, code)
            except service.CameraNotFound:
                raise Problem(404, "not_found") from None
            return service.camera_out(session, camera, app_parts.clock(), detail=True)

    return _json(await run_in_threadpool(run))


@router.post("/cameras", summary="Register a camera / Đăng ký camera", status_code=201)
async def create_camera(request: Request, principal: Principal = Depends(require("manage_cameras"))) -> Response:
    body = await _object(request)
    if not isinstance(body, dict):
        raise Problem(422, "invalid_body", reason="a JSON object is expected / cần một đối tượng JSON")
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.writing() as session:
            now = app_parts.clock()
            try:
                values = service.Checker(session, app_parts.settings.province_code).check(body, creating=True)
                camera = service.create_camera(
                    session,
                    Actor.of(principal, client_ip(request)),
                    now,
                    app_parts.settings.resolved_secret_key,
                    values,
                )
            except service.CameraInvalid as exc:
                raise _invalid(exc) from None
            return service.camera_out(session, camera, now)

    return _json(await run_in_threadpool(run), 201)


@router.patch("/cameras/{code}", summary="Change a camera / Sửa camera")
async def update_camera(
    request: Request, code: str, principal: Principal = Depends(require("manage_cameras"))
) -> Response:
    body = await _object(request)
    if not isinstance(body, dict):
        raise Problem(422, "invalid_body", reason="a JSON object is expected / cần một đối tượng JSON")
    if "code" in body:
        raise _invalid(service.CameraInvalid([service.FieldProblem("code", "code_fixed")]))
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.writing() as session:
            now = app_parts.clock()
            try:
                camera = service.get_camera(session, principal, code)
            except service.CameraNotFound:
                raise Problem(404, "not_found") from None
            try:
                values = service.Checker(session, app_parts.settings.province_code).check(body, creating=False)
                changed = service.update_camera(
                    session,
                    Actor.of(principal, client_ip(request)),
                    now,
                    app_parts.settings.resolved_secret_key,
                    camera,
                    values,
                )
            except service.CameraInvalid as exc:
                raise _invalid(exc) from None
            return {**service.camera_out(session, camera, now), "changed": sorted(changed)}

    return _json(await run_in_threadpool(run))


@router.post("/cameras/import", summary="Import cameras from CSV / Nhập camera từ CSV")
async def import_cameras(request: Request, principal: Principal = Depends(require("manage_cameras"))) -> Response:
    data = await request.body()
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        try:
            rows = service.read_csv(data)
        except service.ImportFileError as exc:
            raise Problem(422, exc.code, **exc.params) from None
        with app_parts.db.writing() as session:
            report = service.import_rows(
                session,
                Actor.of(principal, client_ip(request)),
                app_parts.clock(),
                app_parts.settings.resolved_secret_key,
                app_parts.settings.province_code,
                rows,
            )
        return report.out()

    return _json(await run_in_threadpool(run))


@router.post("/cameras/events", summary="Video-analytics events / Sự kiện phân tích video")
async def post_events(request: Request, principal: Principal = Depends(require("supply_data"))) -> Response:
    body = await _object(request)
    items = body.get("events") if isinstance(body, dict) else body if isinstance(body, list) else None
    if not isinstance(items, list):
        raise Problem(422, "invalid_body", reason='{"events": [...]} is expected / cần {"events": [...]}')
    if len(items) > MAX_EVENTS:
        raise Problem(413, "batch_too_large", limit=MAX_EVENTS, count=len(items))
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.writing() as session:
            return events.record_camera_events(
                session, principal, app_parts.clock(), app_parts.settings.data_dir, items
            )

    return _json(await run_in_threadpool(run))
