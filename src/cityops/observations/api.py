"""JSON routes of observations: the data-sharing API agencies push to."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.catalog import service as catalog
from cityops.geo.models import Subject
from cityops.i18n import translate
from cityops.observations import derived, service
from cityops.observations.periods import PeriodError, parse_period
from cityops.observations.schemas import (
    DerivedValuesPage,
    IndicatorVersionsOut,
    IngestResultOut,
    ObservationBatchIn,
    ObservationPage,
)
from cityops.web.deps import parts, require
from cityops.web.observability import metrics_of
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["observations"])
TOP_LEVEL_FIELDS = frozenset({"observations"})
# The batch schema with its item schema inlined: a $ref would point at components the app never registers.
BATCH_SCHEMA = ObservationBatchIn.model_json_schema()
BATCH_SCHEMA["properties"]["observations"]["items"] = BATCH_SCHEMA.pop("$defs")["ObservationIn"]


@router.post(
    "/observations",
    response_model=IngestResultOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BATCH_SCHEMA}},
        }
    },
    responses={
        400: {"description": "Not JSON"},
        401: {"description": "No valid key"},
        409: {"description": "Idempotency-Key reused with another body"},
        413: {"description": "Too large"},
        422: {"description": "Wrong structure"},
    },
    summary="Send a batch of observations / Gửi một lô số liệu",
)
async def post_observations(
    request: Request,
    principal: Principal = Depends(require("write_observations")),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Response:
    """Store every good observation of the batch and say why each bad one was rejected."""
    app_parts = parts(request)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise Problem(415, "unsupported_media_type")
    if idempotency_key is not None and not (
        0 < len(idempotency_key) <= 255 and idempotency_key.isascii() and idempotency_key.isprintable()
    ):
        raise Problem(400, "invalid_idempotency_key")
    body = await request.body()
    try:
        document = service.parse_body(body)
    except ValueError as exc:
        raise Problem(400, "invalid_json", reason=str(exc)[:120]) from exc
    if not isinstance(document, dict):
        raise Problem(422, "invalid_body", reason='{"observations": [...]}')
    unknown = sorted(set(document) - TOP_LEVEL_FIELDS)
    if unknown:
        raise Problem(422, "invalid_body", reason=f"unknown field {unknown[0][:40]!r}")
    items = document.get("observations")
    if not isinstance(items, list):
        raise Problem(422, "invalid_body", reason='"observations" must be a list')
    limit = app_parts.settings.max_batch_items
    if len(items) > limit:
        raise Problem(413, "batch_too_large", limit=limit, count=len(items))
    try:
        status, answer, replayed = await run_in_threadpool(
            service.ingest,
            app_parts.db,
            principal,
            items,
            app_parts.clock(),
            idempotency_key=idempotency_key,
            body_hash=service.request_hash(document),
            idempotency_hours=app_parts.settings.idempotency_hours,
        )
    except service.IdempotencyConflict as exc:
        raise Problem(409, "idempotency_key_reused", key=str(exc)[:80]) from exc
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if status == 200 and not replayed:
        counts = orjson.loads(answer)
        observations = metrics_of(request).observations
        observations.labels("accepted").inc(counts.get("accepted", 0))
        observations.labels("rejected").inc(len(counts.get("rejected", ())))
    return Response(answer, status_code=status, media_type="application/json", headers=headers)


def _indicator_id(session: Session, principal: Principal, code: str) -> int:
    row = catalog.get_indicator(session, principal, code)
    if row is None:
        raise Problem(404, "unknown_indicator", code=code[:80])
    return row[0].id


def _moment(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_period(value).start
    except PeriodError as exc:
        raise Problem(422, "validation_failed", reason=f"{name}: {exc}") from exc


@router.get(
    "/indicators/{code}/series",
    response_model=ObservationPage,
    summary="An indicator's values over time for one subject / Chuỗi số liệu theo thời gian",
)
async def get_series(
    request: Request,
    code: str,
    principal: Principal = Depends(require("read_data")),
    subject: str = Query(max_length=64, description="Administrative-unit or subject code, e.g. 40"),
    start: str | None = Query(
        default=None, alias="from", max_length=40, description="From this period or instant on (e.g. 2026-01)"
    ),
    end: str | None = Query(
        default=None, alias="to", max_length=40, description="Before the start of this period or instant"
    ),
    dimensions: str | None = Query(
        default=None,
        max_length=255,
        description="Only values with these dimensions, e.g. kenh=truc_tuyen&linh_vuc=dat_dai "
        "(percent-encode & and = inside a value); empty for values without dimensions",
    ),
    limit: int = Query(default=500, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """The values of one indicator for one subject, oldest first."""
    start_at, end_at = _moment(start, "from"), _moment(end, "to")
    dims_key = None if dimensions is None else service.canonical_dimensions(_parse_dimensions(dimensions))

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            indicator_id = _indicator_id(session, principal, code)
            subject_id = session.scalar(select(Subject.id).where(Subject.code == subject))
            if subject_id is None:
                raise Problem(404, "unknown_subject", code=subject[:64])
            items, total = service.series(
                session,
                indicator_id,
                subject_id,
                start=start_at,
                end=end_at,
                dims_key=dims_key,
                limit=limit,
                offset=offset,
            )
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    return await run_in_threadpool(run)


def _parse_dimensions(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in filter(None, text.split("&")):
        name, separator, value = pair.partition("=")
        if not separator or not name or not value:
            raise Problem(422, "validation_failed", reason="dimensions: name=value&name=value")
        result[unquote(name)] = unquote(value)
    return result


@router.get(
    "/indicators/{code}/latest",
    response_model=ObservationPage,
    summary="An indicator's newest value per subject / Giá trị mới nhất theo đơn vị",
)
async def get_latest(
    request: Request,
    code: str,
    principal: Principal = Depends(require("read_data")),
    subject_kind: str | None = Query(default=None, pattern="^(province|commune|entity)$"),
    limit: int = Query(default=500, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """For each subject, the value of the newest period (values without dimensions)."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            indicator_id = _indicator_id(session, principal, code)
            items, total = service.latest(
                session, [indicator_id], subject_kind=subject_kind, limit=limit, offset=offset
            )
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    return await run_in_threadpool(run)


@router.get(
    "/indicators/{code}/values",
    response_model=DerivedValuesPage,
    responses={404: {"description": "Unknown indicator or subject"}, 422: {"description": "Bad period"}},
    summary="An indicator's stored and computed values for one period / Giá trị đã gửi và giá trị tính toán",
)
async def get_values(
    request: Request,
    code: str,
    principal: Principal = Depends(require("read_data")),
    period: str = Query(
        max_length=40,
        description="The period, e.g. 2026-10; an instant indicator also takes a day, "
        "month, … (each subject's newest instant in it)",
    ),
    subject: str | None = Query(default=None, max_length=64, description="One subject (e.g. 40); all when absent"),
) -> dict[str, Any]:
    """Per subject: the stored value, the computed one (ratio from its parts, communes rolled up to the province),
    the one chosen (stored wins), their difference and how many communes reported."""
    try:
        asked = parse_period(period)
    except PeriodError as exc:
        raise Problem(422, "invalid_period", value=period[:40]) from exc

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            row = catalog.get_indicator(session, principal, code)
            if row is None:
                raise Problem(404, "unknown_indicator", code=code[:80])
            try:
                return derived.indicator_values(session, row[0], asked, subject_code=subject)
            except derived.UnknownSubject as exc:
                raise Problem(404, "unknown_subject", code=str(subject)[:64]) from exc
            except derived.PeriodMismatch as exc:
                raise Problem(
                    422,
                    "period_type_mismatch",
                    code=exc.code,
                    expected_vi=translate(f"period.{exc.expected}", "vi"),
                    expected_en=translate(f"period.{exc.expected}", "en"),
                    given_vi=translate(f"period.{exc.given}", "vi"),
                    given_en=translate(f"period.{exc.given}", "en"),
                ) from exc

    return await run_in_threadpool(run)


@router.get(
    "/indicators/{code}/versions",
    response_model=IndicatorVersionsOut,
    responses={404: {"description": "Unknown indicator"}},
    summary="An indicator's current and past definitions / Các phiên bản định nghĩa của chỉ tiêu",
)
async def get_versions(
    request: Request, code: str, principal: Principal = Depends(require("read_data"))
) -> dict[str, Any]:
    """The current and past definitions, newest first, with when each was in force and who loaded it."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            row = catalog.get_indicator(session, principal, code)
            if row is None:
                raise Problem(404, "unknown_indicator", code=code[:80])
            return derived.indicator_versions(session, row[0])

    return await run_in_threadpool(run)
