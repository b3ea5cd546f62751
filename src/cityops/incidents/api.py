"""Incidents API: list and create incidents, one with everything, change it, move its status, assign it, comment,
tick its checklist, attach and download files, link and merge incidents; the categories.

Everyone logged in reads what they may see (province-wide roles: all; agency users: their subtree's and what is
assigned to them — anything else is 404, as if it did not exist). Changes need `handle_incidents` (officers,
handlers, operators, admins); the service decides the finer rules (see incidents/service.py). Every refusal is a
problem with its reason in Vietnamese and English; nothing is stored then.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, Response

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.incidents import attachments as files
from cityops.incidents import service
from cityops.incidents.schemas import (
    MAX_ID,
    AssignIn,
    CommentIn,
    IncidentIn,
    IncidentPatch,
    LinkIn,
    MergeIn,
    StatusIn,
    TaskIn,
)
from cityops.web.deps import client_ip, language, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["incidents"])
MAX_BIG_ID = 2**63 - 1
IncidentId = Path(ge=1, le=MAX_ID, description="The incident's number")

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in, or no valid key"},
    403: {"description": "The role may not do this (forbidden, incident_forbidden), or no CSRF token"},
    404: {"description": "No such incident that the caller may see (incident_not_found)"},
    409: {"description": "Not possible in the incident's state (incident_conflict): nothing stored"},
    422: {"description": "A field is not valid (incident_invalid, validation_failed): nothing stored"},
}
# Which problem each service error is answered with.
FORBIDDEN = {"may_not_work", "may_not_assign", "may_not_assign_outside", "may_not_create", "may_not_reschedule"}
CONFLICTS = {
    "bad_move",
    "use_assign",
    "not_open",
    "link_exists",
    "merge_already",
    "merge_cycle",
    "merge_target_merged",
    "merge_target_closed",
    "merged_stays_closed",
}
# Which field of the request an error is about.
FIELDS = {
    "title_required": "title",
    "unknown_category": "category",
    "unknown_agency": "agency",
    "agency_required": "agency",
    "unknown_subject": "subject",
    "invalid_severity": "severity",
    "invalid_status": "status",
    "invalid_point": "latitude",
    "reason_required": "reason",
    "unknown_user": "assignees",
    "assignee_outside": "assignees",
    "comment_empty": "body",
    "link_kind": "kind",
    "invalid_deadline": "deadline",
    "deadline_before_creation": "deadline",
    "attachment_missing": "file",
    "attachment_empty": "file",
    "attachment_too_large": "file",
    "attachment_type": "file",
    "attachment_mismatch": "file",
}


def problem_of(exc: service.IncidentError) -> Problem:
    """The API problem for a refused incident request."""
    if exc.code == "not_found":
        status, code = 404, "incident_not_found"
    elif exc.code == "attachment_not_found":
        status, code = 404, "incident_attachment_not_found"
    elif exc.code in FORBIDDEN:
        status, code = 403, "incident_forbidden"
    elif exc.code in CONFLICTS:
        status, code = 409, "incident_conflict"
    elif exc.code == "attachment_too_large":
        status, code = 413, "incident_attachment_too_large"
    elif exc.code in ("attachment_type", "attachment_mismatch"):
        status, code = 415, "incident_attachment_type"
    else:
        status, code = 422, "incident_invalid"
    return Problem(
        status,
        code,
        reason_vi=exc.message_vi,
        reason_en=exc.message_en,
        extra={"reason": exc.code, "field": FIELDS.get(exc.code, "")},
    )


def _detail(request: Request, principal: Principal, incident_id: int) -> dict[str, Any]:
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        return service.detail(session, principal, app_parts.clock(), incident_id, language(request))


def _act(
    request: Request,
    principal: Principal,
    change: Callable[[Session, Actor, datetime], int],
) -> dict[str, Any]:
    """Make one change in a writing transaction, then answer the incident it names, as the caller now sees it."""
    app_parts = parts(request)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()
    try:
        with app_parts.db.writing() as session:
            incident_id = change(session, actor, moment)
        return _detail(request, principal, incident_id)
    except service.IncidentError as exc:
        raise problem_of(exc) from exc


@router.get("/incidents", responses=RESPONSES, summary="Incidents / Sự vụ")
async def list_incidents(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    status: list[str] = Query(default=[], max_length=6, description="new, assigned, in_progress … (repeatable)"),
    agency: str | None = Query(default=None, max_length=64, description="Owner agency (with the units below it)"),
    domain: str | None = Query(default=None, max_length=32),
    severity: str | None = Query(default=None, max_length=16),
    category: str | None = Query(default=None, max_length=64),
    overdue: bool | None = Query(default=None, description="true: open and past the deadline; false: not"),
    assigned_to_me: bool = Query(default=False),
    limit: int = Query(default=200, ge=1, le=service.MAX_BOARD),
) -> dict[str, Any]:
    """The incidents the caller may see, soonest deadline first, filtered."""

    def run() -> dict[str, Any]:
        app_parts = parts(request)
        moment = app_parts.clock()
        try:
            with app_parts.db.reading() as session:
                found = service.board(
                    session,
                    principal,
                    moment,
                    status=[one[:20] for one in status],
                    agency_code=agency,
                    domain=domain,
                    severity=severity,
                    category_code=category,
                    overdue=overdue,
                    assigned_to_me=assigned_to_me,
                    limit=limit,
                )
                return {"items": service.summaries(session, found, moment, language(request))}
        except service.IncidentError as exc:
            raise problem_of(exc) from exc

    return await run_in_threadpool(run)


@router.post("/incidents", status_code=201, responses=RESPONSES, summary="Create an incident / Tạo sự vụ")
async def create_incident(
    request: Request, body: IncidentIn, principal: Principal = Depends(require("handle_incidents"))
) -> dict[str, Any]:
    """Open an incident by hand. Agency users open incidents for their own agency only."""

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        return service.create_incident(
            session,
            principal,
            actor,
            moment,
            title=body.title,
            description=body.description,
            category_code=body.category,
            severity=body.severity,
            agency_code=body.agency,
            domain=body.domain,
            subject_code=body.subject,
            latitude=body.latitude,
            longitude=body.longitude,
            place_text=body.place_text,
        ).id

    return await run_in_threadpool(_act, request, principal, change)


@router.get("/incidents/{incident_id}", responses=RESPONSES, summary="One incident / Một sự vụ")
async def get_incident(
    request: Request,
    incident_id: int = IncidentId,
    principal: Principal = Depends(require("read_data")),
) -> dict[str, Any]:
    """One incident with its checklist, comments, attachments, links, merged duplicates, trail, and what the
    caller may do (`can`)."""

    def run() -> dict[str, Any]:
        try:
            return _detail(request, principal, incident_id)
        except service.IncidentError as exc:
            raise problem_of(exc) from exc

    return await run_in_threadpool(run)


@router.patch("/incidents/{incident_id}", responses=RESPONSES, summary="Change an incident / Sửa sự vụ")
async def patch_incident(
    request: Request,
    body: IncidentPatch,
    incident_id: int = IncidentId,
    principal: Principal = Depends(require("handle_incidents")),
) -> dict[str, Any]:
    """Change the title, description, severity or deadline (only the fields sent). Severity and deadline are the
    center's (operators); a new deadline starts escalation again."""
    changes = body.model_dump(exclude_unset=True)
    if "deadline" in changes:
        changes["deadline_at"] = changes.pop("deadline")

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        return service.update_incident(session, principal, actor, moment, incident_id, changes).id

    return await run_in_threadpool(_act, request, principal, change)


@router.post("/incidents/{incident_id}/status", responses=RESPONSES, summary="Move the status / Đổi trạng thái")
async def change_status(
    request: Request,
    body: StatusIn,
    incident_id: int = IncidentId,
    principal: Principal = Depends(require("handle_incidents")),
) -> dict[str, Any]:
    """in_progress, resolved, closed, rejected (with a reason), or reopened (from resolved or closed)."""

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        return service.change_status(
            session, principal, actor, moment, incident_id, status=body.status, reason=body.reason
        ).id

    return await run_in_threadpool(_act, request, principal, change)


@router.post("/incidents/{incident_id}/assign", responses=RESPONSES, summary="Assign / Giao xử lý")
async def assign_incident(
    request: Request,
    body: AssignIn,
    incident_id: int = IncidentId,
    principal: Principal = Depends(require("handle_incidents")),
) -> dict[str, Any]:
    """Give the incident to an agency and assignees of that agency's subtree (replacing the assignees)."""

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        return service.assign(
            session, principal, actor, moment, incident_id, agency_code=body.agency, usernames=body.assignees
        ).id

    return await run_in_threadpool(_act, request, principal, change)


@router.post("/incidents/{incident_id}/comments", status_code=201, responses=RESPONSES, summary="Comment / Bình luận")
async def comment_incident(
    request: Request,
    body: CommentIn,
    incident_id: int = IncidentId,
    principal: Principal = Depends(require("handle_incidents")),
) -> dict[str, Any]:
    """Add a comment; the assignees are told."""

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        return service.add_comment(session, principal, actor, moment, incident_id, body=body.body).incident_id

    return await run_in_threadpool(_act, request, principal, change)


@router.post("/incidents/{incident_id}/tasks/{task_id}", responses=RESPONSES, summary="Checklist / Đầu việc")
async def set_task(
    request: Request,
    body: TaskIn,
    incident_id: int = IncidentId,
    task_id: int = Path(ge=1, le=MAX_BIG_ID),
    principal: Principal = Depends(require("handle_incidents")),
) -> dict[str, Any]:
    """Tick (`done: true`) or untick a step of the checklist."""

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        return service.set_task(session, principal, actor, moment, incident_id, task_id, done=body.done).incident_id

    return await run_in_threadpool(_act, request, principal, change)


@router.post(
    "/incidents/{incident_id}/attachments",
    status_code=201,
    responses={
        **RESPONSES,
        413: {"description": "Over the attachment size limit (incident_attachment_too_large)"},
        415: {"description": "Not an accepted kind, or a name that lies about it (incident_attachment_type)"},
    },
    summary="Attach a file / Đính kèm tệp",
)
async def attach_file(
    request: Request,
    incident_id: int = IncidentId,
    principal: Principal = Depends(require("handle_incidents")),
) -> dict[str, Any]:
    """Attach one file (multipart field `file`): PDF, JPEG, PNG, WebP, DOCX, XLSX or plain text, judged by its
    content, at most the configured size. Answers the incident with its attachments."""
    app_parts = parts(request)
    limit = app_parts.settings.max_attachment_bytes
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise problem_of(service.IncidentError("attachment_missing"))
    async with request.form(max_files=1, max_fields=5) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise problem_of(service.IncidentError("attachment_missing"))
        content = await upload.read(limit + 1)
        filename = upload.filename or ""
    directory = app_parts.settings.data_dir / "attachments"

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        return service.add_attachment(
            session,
            principal,
            actor,
            moment,
            incident_id,
            filename=filename,
            content=content,
            directory=directory,
            max_bytes=limit,
        ).incident_id

    return await run_in_threadpool(_act, request, principal, change)


@router.get(
    "/incidents/{incident_id}/attachments/{attachment_id}",
    responses={**RESPONSES, 404: {"description": "No such attachment (incident_attachment_not_found)"}},
    summary="Download a file / Tải tệp",
)
async def download_file(
    request: Request,
    incident_id: int = IncidentId,
    attachment_id: int = Path(ge=1, le=MAX_BIG_ID),
    principal: Principal = Depends(require("read_data")),
) -> Response:
    """The file, as an attachment (never shown inline), to those who may see the incident."""
    app_parts = parts(request)
    directory = app_parts.settings.data_dir / "attachments"

    def run() -> tuple[str, str, Any]:
        try:
            with app_parts.db.reading() as session:
                attachment, path = service.attachment_file(session, principal, incident_id, attachment_id, directory)
                return attachment.filename, attachment.content_type, path
        except service.IncidentError as exc:
            raise problem_of(exc) from exc

    filename, content_type, path = await run_in_threadpool(run)
    return FileResponse(
        path,
        media_type=content_type,
        headers={
            "Content-Disposition": files.content_disposition(filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/incidents/{incident_id}/links", status_code=201, responses=RESPONSES, summary="Link / Liên kết")
async def link_incident(
    request: Request,
    body: LinkIn,
    incident_id: int = IncidentId,
    principal: Principal = Depends(require("handle_incidents")),
) -> dict[str, Any]:
    """Link this incident to another one as related."""

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        return service.link(session, principal, actor, moment, incident_id, to_id=body.to, kind=body.kind).from_id

    return await run_in_threadpool(_act, request, principal, change)


@router.post("/incidents/{incident_id}/merge", responses=RESPONSES, summary="Merge a duplicate / Gộp trùng lặp")
async def merge_incident(
    request: Request,
    body: MergeIn,
    incident_id: int = IncidentId,
    principal: Principal = Depends(require("handle_incidents")),
) -> dict[str, Any]:
    """Merge this incident (a duplicate) into another: it is closed and points to the other; answers the other."""

    def change(session: Session, actor: Actor, moment: datetime) -> int:
        merged = service.merge(session, principal, actor, moment, incident_id, into_id=body.into)
        return merged.merged_into_id or merged.id

    return await run_in_threadpool(_act, request, principal, change)


@router.get("/incident-categories", summary="Incident categories / Loại sự vụ")
async def list_categories(request: Request, principal: Principal = Depends(require("read_data"))) -> dict[str, Any]:
    """Every category with its domain, owner agency, deadline hours by severity and SOP checklist."""

    def run() -> dict[str, Any]:
        lang = language(request)
        with parts(request).db.reading() as session:
            agencies = {agency.id: agency for agency in session.scalars(select(Agency))}
            return {"items": [service.category_out(c, agencies, lang) for c in service.list_categories(session)]}

    return await run_in_threadpool(run)
