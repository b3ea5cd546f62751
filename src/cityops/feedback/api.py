"""Feedback JSON routes for the staff and the administrator.

- `GET /api/v1/feedback/reports/{id}` (`read_data`): a report as its viewer may see it — the contact only for
  those who handle it (`handle_incidents` in the responsible agency's subtree, or `manage_incidents`); another
  agency's report is `404 not_found`.
- `GET /api/v1/personal-data?phone=…|email=…` (`manage_personal_data`): everything held about one person, as
  JSON (Law on Personal Data Protection 2025: the right to access); `DELETE` the same erases the contacts (the
  right to erasure). Both are audited without the phone or e-mail in clear.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.feedback import privacy, service
from cityops.web.deps import client_ip, language, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["feedback"])
MAX_ID = 2**62


def _json(document: Any) -> Response:
    return Response(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")


@router.get("/feedback/reports/{report_id}", summary="One citizen report / Một phản ánh")
async def get_report(
    request: Request, report_id: int, principal: Principal = Depends(require("read_data"))
) -> Response:
    """A report with its timeline, answer and photos; the contact only for its handlers."""
    lang = language(request)

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            try:
                report = service.staff_report(session, principal, report_id)
            except service.ReportNotFound as exc:
                raise Problem(404, "not_found") from exc
            return service.handler_view(session, principal, report, lang)

    if not 0 < report_id < MAX_ID:
        raise Problem(404, "not_found")
    return _json(await run_in_threadpool(run))


def _who(phone: str, email: str) -> tuple[str | None, str | None]:
    """The phone and/or e-mail asked about, normalised; 422 when neither is given or one is malformed."""
    phone, email = phone.strip(), email.strip()
    if not phone and not email:
        raise Problem(422, "validation_failed", reason="phone or email is required / cần số điện thoại hoặc e-mail")
    normal_phone = privacy.normalise_phone(phone) if phone else None
    if phone and normal_phone is None:
        raise Problem(
            422, "validation_failed", reason="phone: not a Vietnamese phone number / không phải số điện thoại"
        )
    normal_email = privacy.normalise_email(email) if email else None
    if email and normal_email is None:
        raise Problem(422, "validation_failed", reason="email: not an e-mail address / không phải địa chỉ e-mail")
    return normal_phone, normal_email


@router.get("/personal-data", summary="Export one person's data / Xuất dữ liệu cá nhân")
async def export_personal_data(
    request: Request,
    principal: Principal = Depends(require("manage_personal_data")),
    phone: str = Query(default="", max_length=40),
    email: str = Query(default="", max_length=254),
) -> Response:
    """Every report filed with this phone or e-mail, with its contact, as JSON."""
    who_phone, who_email = _who(phone, email)
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.writing() as session:
            return privacy.export_personal_data(
                session,
                Actor.of(principal, client_ip(request)),
                app_parts.clock(),
                app_parts.settings.resolved_secret_key,
                phone=who_phone,
                email=who_email,
            )

    return _json(await run_in_threadpool(run))


@router.delete("/personal-data", summary="Erase one person's data / Xóa dữ liệu cá nhân")
async def erase_personal_data(
    request: Request,
    principal: Principal = Depends(require("manage_personal_data")),
    phone: str = Query(default="", max_length=40),
    email: str = Query(default="", max_length=254),
) -> Response:
    """Erase the contact (name, phone, e-mail, address) of every report filed with this phone or e-mail."""
    who_phone, who_email = _who(phone, email)
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.writing() as session:
            return privacy.erase_personal_data(
                session,
                Actor.of(principal, client_ip(request)),
                app_parts.clock(),
                app_parts.settings.resolved_secret_key,
                phone=who_phone,
                email=who_email,
            )

    return _json(await run_in_threadpool(run))
