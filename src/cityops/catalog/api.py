"""JSON routes of the catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from cityops.accounts.roles import Principal
from cityops.catalog import service
from cityops.catalog.schemas import IndicatorOut
from cityops.web.deps import parts, require
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
