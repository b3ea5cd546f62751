"""JSON routes of accounts: who am I, and the audit log (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from cityops.accounts import service
from cityops.accounts.roles import Principal
from cityops.web.deps import optional_principal, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.get("/me", summary="Who is asking / Tài khoản đang dùng")
async def me(principal: Principal | None = Depends(optional_principal)) -> dict[str, Any]:
    """The caller's role and agency."""
    if principal is None:
        raise Problem(401, "unauthenticated")
    return {
        "label": principal.label,
        "role": principal.role,
        "agency_id": principal.agency_id,
        "language": principal.language,
    }


@router.get("/audit", summary="Audit log / Nhật ký thay đổi")
async def audit_log(
    request: Request,
    _principal: Principal = Depends(require("read_audit")),
    entity_type: str = Query(default="", max_length=64),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """Every change to users, roles, keys and agencies, newest first."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            entries = service.list_audit(session, limit=limit, offset=offset, entity_type=entity_type)
            return {
                "items": [
                    {
                        "at": entry.at.isoformat(),
                        "actor": entry.actor,
                        "action": entry.action,
                        "entity_type": entry.entity_type,
                        "entity_id": entry.entity_id,
                        "details": entry.details,
                        "ip": entry.ip,
                    }
                    for entry in entries
                ],
                "limit": limit,
                "offset": offset,
            }

    return await run_in_threadpool(run)
