"""Camera pages and pictures.

- `GET /cameras` (`read_data`): the cameras the user may see with their status; thumbnails for `view_video`;
  the CSV import form for `manage_cameras` (`POST /cameras/import`).
- `GET|POST /cameras/new`, `GET|POST /cameras/{code}` (`manage_cameras` to change): no-JS forms, errors beside
  what was typed; the camera page shows the live view (`view_video`), uptime and the last probes.
- `GET /cameras/{code}/snapshot.jpg` and `GET /cameras/{code}/live` (`view_video`; officers only their agency's
  cameras, others 404): the picture and the MJPEG stream, fetched by the server with the stored credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response, StreamingResponse

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.cameras import health, media, net, service
from cityops.cameras.models import Camera
from cityops.geo.models import Subject
from cityops.i18n import translate
from cityops.web.deps import client_ip, language, parts, require
from cityops.web.pages import form_csrf_ok, form_text, render, require_page
from cityops.web.problems import Problem

router = APIRouter(include_in_schema=False)
# The form edits every field of the service; "enabled" is a checkbox, read apart (absent means off).
FORM_FIELDS = tuple(name for name in service.FIELDS if name != "enabled")
MAX_CSV_BYTES = 2 * 1024 * 1024


@dataclass
class CameraForm:
    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)


def _media(request: Request) -> tuple[media.SnapshotCache, media.Viewers]:
    state = request.app.state
    if not hasattr(state, "camera_media"):
        settings = parts(request).settings
        state.camera_media = (
            media.SnapshotCache(settings.camera_snapshot_cache_seconds),
            media.Viewers(settings.camera_live_viewers),
        )
    result: tuple[media.SnapshotCache, media.Viewers] = state.camera_media
    return result


def _agencies(request: Request) -> list[tuple[str, str]]:
    from sqlalchemy import select

    with parts(request).db.reading() as session:
        rows = session.execute(
            select(Agency.code, Agency.name_vi).where(Agency.kind != "commune").order_by(Agency.code)
        )
        return [(code, name) for code, name in rows]


def _form_values(camera: Camera | None, session: Any) -> dict[str, Any]:
    if camera is None:
        return {name: "" for name in FORM_FIELDS} | {
            "owner": "cong_an_tinh",
            "probe_seconds": "60",
            "offline_alert_minutes": "10",
            "enabled": True,
        }
    commune = session.get(Subject, camera.commune_id) if camera.commune_id else None
    owner = session.get(Agency, camera.owner_agency_id) if camera.owner_agency_id else None
    return {
        "code": camera.code,
        "name_vi": camera.name_vi,
        "name_en": camera.name_en,
        "latitude": "" if camera.latitude is None else str(camera.latitude),
        "longitude": "" if camera.longitude is None else str(camera.longitude),
        "commune": commune.code if commune else "",
        "address": camera.address,
        "owner": owner.code if owner else "",
        "stream_url": camera.stream_url,
        "snapshot_url": camera.snapshot_url,
        "onvif_url": camera.onvif_url,
        "username": "",
        "password": "",
        "tags": " ".join(camera.tags or []),
        "probe_seconds": str(camera.probe_seconds),
        "offline_alert_minutes": str(camera.offline_alert_minutes),
        "enabled": camera.enabled,
    }


def _show(form: CameraForm, exc: service.CameraInvalid, lang: str) -> None:
    for problem in exc.problems:
        message_vi, message_en = problem.messages()
        message = message_en if lang == "en" else message_vi
        form.errors.setdefault(problem.field, []).append(message)
        form.summary.append((problem.field, message))


def _list_context(request: Request, principal: Principal) -> dict[str, Any]:
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        now = app_parts.clock()
        cameras = [service.camera_out(session, c, now) for c in service.list_cameras(session, principal)]
    counts: dict[str, int] = {}
    for camera in cameras:
        counts[camera["status"]] = counts.get(camera["status"], 0) + 1
    return {
        "cameras": cameras,
        "counts": counts,
        "can_manage": principal.can("manage_cameras"),
        "can_view": principal.can("view_video"),
    }


@router.get("/cameras")
async def cameras_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    context = await run_in_threadpool(_list_context, request, principal)
    context["done"] = (
        translate(f"cameras.done.{request.query_params.get('done')}", language(request))
        if request.query_params.get("done") in ("created", "updated")
        else ""
    )
    return render(request, "cameras/list.html", context)


@router.post("/cameras/import")
async def import_page(request: Request, principal: Principal = Depends(require_page("manage_cameras"))) -> Response:
    raw = await request.form(max_files=1)
    lang = language(request)
    context = await run_in_threadpool(_list_context, request, principal)
    if not form_csrf_ok(request, raw):
        context["import_error"] = translate("cameras.csrf", lang)
        return render(request, "cameras/list.html", context, status_code=403)
    upload = raw.get("file")
    data = await upload.read(MAX_CSV_BYTES + 1) if isinstance(upload, UploadFile) else b""
    if not data or len(data) > MAX_CSV_BYTES:
        context["import_error"] = translate("cameras.import.no_file", lang)
        return render(request, "cameras/list.html", context, status_code=422)
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        rows = service.read_csv(data)
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

    try:
        result = await run_in_threadpool(run)
    except service.ImportFileError as exc:
        context["import_error"] = translate(f"problem.{exc.code}.detail", lang, **exc.params)
        return render(request, "cameras/list.html", context, status_code=422)
    context = await run_in_threadpool(_list_context, request, principal)
    context["import_result"] = result
    return render(request, "cameras/list.html", context)


def _form_page(
    request: Request, form: CameraForm, camera: dict[str, Any] | None, status: int = 200, **extra: Any
) -> Response:
    context = {"form": form, "camera": camera, "agencies": _agencies(request), **extra}
    return render(request, "cameras/form.html", context, status_code=status)


@router.get("/cameras/new")
async def new_page(request: Request, principal: Principal = Depends(require_page("manage_cameras"))) -> Response:
    return _form_page(request, CameraForm(_form_values(None, None)), None, can_manage=True, can_view=False)


def _read_form(raw: Any, creating: bool) -> dict[str, Any]:
    values = {name: form_text(raw.get(name), 2000) for name in FORM_FIELDS}
    values["enabled"] = raw.get("enabled") == "on"
    if not creating:
        values.pop("code")
    return values


@router.post("/cameras/new")
async def create_page(request: Request, principal: Principal = Depends(require_page("manage_cameras"))) -> Response:
    raw = await request.form()
    lang = language(request)
    typed = _read_form(raw, creating=True)
    form = CameraForm({**typed, "password": ""})
    if not form_csrf_ok(request, raw):
        form.summary.append(("", translate("cameras.csrf", lang)))
        return _form_page(request, form, None, 403, can_manage=True, can_view=False)
    app_parts = parts(request)

    def run() -> str:
        with app_parts.db.writing() as session:
            values = service.Checker(session, app_parts.settings.province_code).check(typed, creating=True)
            camera = service.create_camera(
                session,
                Actor.of(principal, client_ip(request)),
                app_parts.clock(),
                app_parts.settings.resolved_secret_key,
                values,
            )
            return camera.code

    try:
        code = await run_in_threadpool(run)
    except service.CameraInvalid as exc:
        _show(form, exc, lang)
        return _form_page(request, form, None, 422, can_manage=True, can_view=False)
    return RedirectResponse(f"/cameras/{code}?done=created", status_code=303)


def _detail(
    request: Request, principal: Principal, code: str
) -> tuple[dict[str, Any], dict[str, Any], list[Any]] | None:
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        try:
            camera = service.get_camera(session, principal, code)
        except service.CameraNotFound:
            return None
        now = app_parts.clock()
        checks = [
            {
                "at": c.checked_at,
                "status": c.status,
                "frame_rate": c.frame_rate,
                "width": c.width,
                "height": c.height,
                "latency_ms": c.latency_ms,
                "error": c.error,
            }
            for c in service.recent_checks(session, camera.id)
        ]
        return service.camera_out(session, camera, now, detail=True), _form_values(camera, session), checks


def _not_found(request: Request, code: str) -> Response:
    return render(request, "cameras/not_found.html", {"code": code[:64]}, status_code=404)


@router.get("/cameras/{code}")
async def camera_page(
    request: Request, code: str, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    found = await run_in_threadpool(_detail, request, principal, code)
    if found is None:
        return _not_found(request, code)
    camera, values, checks = found
    lang = language(request)
    done = request.query_params.get("done", "")
    return _form_page(
        request,
        CameraForm(values),
        camera,
        checks=checks,
        can_manage=principal.can("manage_cameras"),
        can_view=principal.can("view_video"),
        done=translate(f"cameras.done.{done}", lang) if done in ("created", "updated") else "",
    )


@router.post("/cameras/{code}")
async def edit_page(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_cameras"))
) -> Response:
    raw = await request.form()
    lang = language(request)
    found = await run_in_threadpool(_detail, request, principal, code)
    if found is None:
        return _not_found(request, code)
    camera, _, checks = found
    typed = _read_form(raw, creating=False)
    if not typed["username"] and not typed["password"] and raw.get("clear_credentials") != "on":
        typed.pop("username")
        typed.pop("password")
    form = CameraForm({**typed, "code": camera["code"], "password": "", "username": typed.get("username", "")})
    extra = {"checks": checks, "can_manage": True, "can_view": principal.can("view_video")}
    if not form_csrf_ok(request, raw):
        form.summary.append(("", translate("cameras.csrf", lang)))
        return _form_page(request, form, camera, 403, **extra)
    app_parts = parts(request)

    def run() -> None:
        with app_parts.db.writing() as session:
            row = service.get_camera(session, principal, code)
            values = service.Checker(session, app_parts.settings.province_code).check(typed, creating=False)
            service.update_camera(
                session,
                Actor.of(principal, client_ip(request)),
                app_parts.clock(),
                app_parts.settings.resolved_secret_key,
                row,
                values,
            )

    try:
        await run_in_threadpool(run)
    except service.CameraInvalid as exc:
        _show(form, exc, lang)
        return _form_page(request, form, camera, 422, **extra)
    return RedirectResponse(f"/cameras/{camera['code']}?done=updated", status_code=303)


# --- pictures --------------------------------------------------------------------------------------------------


def _target(request: Request, principal: Principal, code: str) -> net.Target:
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        try:
            camera = service.get_camera(session, principal, code)
        except service.CameraNotFound:
            raise Problem(404, "not_found") from None
        if not camera.enabled:
            raise Problem(404, "not_found")
        return health.target_of(camera, app_parts.settings)


@router.get("/cameras/{code}/snapshot.jpg")
async def snapshot(request: Request, code: str, principal: Principal = Depends(require("view_video"))) -> Response:
    """The camera's picture now (cached a few seconds), fetched by the server with the stored credentials."""
    target = await run_in_threadpool(_target, request, principal, code)
    cache, _ = _media(request)
    try:
        picture = await run_in_threadpool(cache.get, target, parts(request).settings.camera_probe_timeout_seconds)
    except net.CameraUnreachable as exc:
        raise Problem(502, "camera_unreachable", reason=str(exc)[:200]) from None
    return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=2"})


@router.get("/cameras/{code}/live")
async def live_view(request: Request, code: str, principal: Principal = Depends(require("view_video"))) -> Response:
    """The camera's live picture as a multipart MJPEG stream (a bounded number of viewers per camera)."""
    target = await run_in_threadpool(_target, request, principal, code)
    if target.stream_kind == "none":
        raise Problem(404, "camera_no_stream")
    _, viewers = _media(request)
    try:
        viewers.enter(target.code)
    except media.ViewersFull:
        raise Problem(429, "camera_viewers_full", limit=viewers.limit) from None
    return StreamingResponse(
        media.live(target, parts(request).settings.camera_probe_timeout_seconds, viewers),
        media_type=media.MEDIA_TYPE,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
