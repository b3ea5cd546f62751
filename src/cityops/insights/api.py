"""The decision-support API: `GET /api/v1/insights/progress`, `/api/v1/insights/rankings/{code}`,
`/api/v1/insights/anomalies` — `read_data`, restricted indicators only for their agency and province-wide roles.

Each reason comes as its code and params and in both languages (`message_vi`, `message_en`)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from cityops.accounts.roles import Principal
from cityops.insights import service
from cityops.web.deps import parts, require
from cityops.web.problems import Problem

router = APIRouter(include_in_schema=True)
MAX_CODE = 80


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def progress_out(progress: service.Progress) -> dict[str, Any]:
    out = _plain(asdict(progress))
    out["message_vi"] = service.describe(progress.reason, progress.params, "vi")
    out["message_en"] = service.describe(progress.reason, progress.params, "en")
    return dict(out)


def anomaly_out(anomaly: service.Anomaly) -> dict[str, Any]:
    out = dict(_plain(asdict(anomaly)))
    reason, params = service.anomaly_reason(anomaly)
    out["message_vi"] = service.describe(reason, params, "vi")
    out["message_en"] = service.describe(reason, params, "en")
    return out


def _code(text: str, name: str) -> str:
    clean = text.strip()
    if "\x00" in clean or len(clean) > MAX_CODE:
        raise Problem(422, "insights_bad_parameter", name=name)
    return clean


@router.get("/api/v1/insights/progress", tags=["insights"], summary="Plan vs actual / Kế hoạch và thực hiện")
async def api_progress(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    domain: str = Query(default="", max_length=32),
    subject: str = Query(default="", max_length=16, description="A commune's code, or * for the province and all"),
    year: int | None = Query(default=None, ge=2000, le=2100),
) -> dict[str, Any]:
    """Every indicator with a target in the year: the year to date, the projection to 31/12 and the status."""

    def run() -> dict[str, Any]:
        app_parts = parts(request)
        with app_parts.db.reading() as session:
            items = service.plan_vs_actual(
                session,
                principal,
                app_parts.clock(),
                domain=_code(domain, "domain") or None,
                subject=_code(subject, "subject") or None,
                year=year,
                province=app_parts.settings.province_code,
            )
        return {"total": len(items), "items": [progress_out(item) for item in items]}

    return await run_in_threadpool(run)


@router.get("/api/v1/insights/rankings/{code}", tags=["insights"], summary="Rankings / Xếp hạng")
async def api_ranking(
    request: Request,
    code: str,
    principal: Principal = Depends(require("read_data")),
    by: str = Query(default="commune", max_length=16),
) -> dict[str, Any]:
    """Communes (or agencies: `plan.on_track`) best first, with the change of rank since the period before."""
    if by not in ("commune", "agency"):
        raise Problem(422, "insights_bad_parameter", name="by")
    clean = _code(code, "code")

    def run() -> dict[str, Any]:
        app_parts = parts(request)
        with app_parts.db.reading() as session:
            try:
                found = service.ranking(
                    session, principal, app_parts.clock(), clean, by=by, province=app_parts.settings.province_code
                )
            except service.UnknownCode as exc:
                raise Problem(404, "insights_unknown_code", code=clean, by=by) from exc
        return dict(_plain(asdict(found)))

    return await run_in_threadpool(run)


@router.get("/api/v1/insights/anomalies", tags=["insights"], summary="Anomalies / Bất thường")
async def api_anomalies(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    domain: str = Query(default="", max_length=32),
    indicator: list[str] = Query(default=[]),
    since: str = Query(default="", max_length=40, description="The first day (YYYY-MM-DD), default 35 days ago"),
) -> dict[str, Any]:
    """Spikes, drops, outliers and level shifts, most severe first."""
    moment: datetime | None = None
    if since:
        try:
            moment = datetime.fromisoformat(since.strip())
        except ValueError as exc:
            raise Problem(422, "insights_bad_parameter", name="since") from exc
        if moment.tzinfo is None:
            from cityops.clock import LOCAL_TZ

            moment = moment.replace(tzinfo=LOCAL_TZ)
        moment = moment.astimezone(UTC)
    codes = [_code(code, "indicator") for code in indicator if code.strip()] or None

    def run() -> dict[str, Any]:
        app_parts = parts(request)
        with app_parts.db.reading() as session:
            items = service.anomalies(
                session,
                principal,
                app_parts.clock(),
                domain=_code(domain, "domain") or None,
                since=moment,
                indicators=codes,
                province=app_parts.settings.province_code,
            )
        return {"total": len(items), "items": [anomaly_out(item) for item in items]}

    return await run_in_threadpool(run)
