"""`/api/v1/reports…` and `/api/v1/brief…`: the archive, downloads, making a report now, subscriptions."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.reports import service
from cityops.reports.templates import BRIEF, last_closed, local_date, parse_period, templates
from cityops.web.deps import client_ip, language, now, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["reports"])

STATUS = {
    "report_unknown_template": 404,
    "report_not_found": 404,
    "report_brief_missing": 404,
    "report_not_ready": 409,
    "report_no_file": 404,
    "report_subscription_user": 403,
    "report_invalid_period": 422,
    "report_exists": 409,
}


def problem(error: service.ReportError) -> Problem:
    return Problem(STATUS.get(error.code, 422), error.code, **error.params)


def parse_day(text: str) -> date:
    try:
        return _day(text)
    except ValueError:
        raise Problem(422, "report_invalid_period", period=text[:40]) from None


def _day(text: str) -> date:
    text = text.strip()
    if "/" in text:
        day, month, year = text.split("/")
        return date(int(year), int(month), int(day))
    return date.fromisoformat(text)


def make_now(request: Request, principal: Principal, template_code: str, period_text: str) -> dict[str, Any]:
    """Make a template's report for a closed period named by the user (shared by the API and the page)."""
    app_parts = parts(request)
    moment = now(request)
    try:
        template = service.template_of(template_code)
    except service.ReportError as exc:
        raise problem(exc) from None
    try:
        first, last = (
            parse_period(template.period, period_text)
            if period_text.strip()
            else last_closed(template.period, local_date(moment))
        )
    except ValueError:
        raise Problem(422, "report_invalid_period", period=period_text[:40]) from None
    if last >= local_date(moment):
        raise Problem(422, "report_invalid_period", period=period_text[:40])
    run_id = service.make_report(
        app_parts.db,
        app_parts.settings,
        moment,
        template.code,
        first,
        last,
        made_by=principal.label,
        actor=Actor.of(principal, client_ip(request)),
    )
    with app_parts.db.reading() as session:
        if run_id is None:
            existing = [
                run
                for run in service.list_runs(session, principal, template=template.code, limit=200)
                if run.period_start == first
            ]
            raise Problem(409, "report_exists", template=template.code, id=existing[0].id if existing else "?")
        return service.run_out(service.get_run(session, principal, run_id), language(request))


@router.get("/reports")
async def list_reports(
    request: Request,
    template: str = "",
    period_kind: str = "",
    limit: int = 50,
    principal: Principal = Depends(require("read_data")),
) -> dict[str, Any]:
    """Made reports the caller may read, newest period first; filter by template and period kind."""
    if template and template != BRIEF and template not in templates():
        raise Problem(404, "report_unknown_template", template=template[:64], allowed=", ".join(templates()))
    app_parts, lang = parts(request), language(request)

    def read() -> list[dict[str, Any]]:
        with app_parts.db.reading() as session:
            runs = service.list_runs(session, principal, template=template, period_kind=period_kind, limit=limit)
            return [service.run_out(run, lang) for run in runs]

    return {"reports": await run_in_threadpool(read)}


@router.get("/reports/templates")
async def list_templates(request: Request, principal: Principal = Depends(require("read_data"))) -> dict[str, Any]:
    """The templates (from reports/data/templates.toml) the caller may read."""
    from cityops.reports.content import may_read

    lang = language(request)
    return {
        "templates": [
            {
                "code": t.code,
                "name": t.name(lang),
                "period": t.period,
                "scope": t.scope,
                "domains": list(t.domains),
                "sections": list(t.sections),
            }
            for t in templates().values()
            if may_read(principal, t.scope)
        ]
    }


@router.get("/reports/{run_id}")
async def get_report(
    request: Request, run_id: int, principal: Principal = Depends(require("read_data"))
) -> dict[str, Any]:
    """One made report with its content (the figures it was made from)."""
    app_parts, lang = parts(request), language(request)

    def read() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            run = service.get_run(session, principal, run_id)
            return {**service.run_out(run, lang), "content": run.content}

    try:
        return await run_in_threadpool(read)
    except service.ReportError as exc:
        raise problem(exc) from None


def file_response(request: Request, principal: Principal, run_id: int, kind: str) -> Response:
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        run = service.get_run(session, principal, run_id)
        data, media, name = service.file_of(app_parts.settings, run, kind, language(request))
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"},
    )


@router.get("/reports/{run_id}/{kind}")
async def download(
    request: Request, run_id: int, kind: str, principal: Principal = Depends(require("read_data"))
) -> Response:
    """A made report's file: `pdf` or `xlsx` (Vietnamese; `?lang=en` makes it again in English)."""
    try:
        return await run_in_threadpool(file_response, request, principal, run_id, kind)
    except service.ReportError as exc:
        raise problem(exc) from None


@router.post("/reports", status_code=201)
async def make(
    request: Request,
    body: dict[str, Any] = Body(...),
    principal: Principal = Depends(require("manage_reports")),
) -> dict[str, Any]:
    """Make a template's report now for a closed period: {"template": "monthly_province", "period": "2026-10"}
    (any day inside the period, a month YYYY-MM or a quarter YYYY-Qn; empty: the last closed period)."""
    return await run_in_threadpool(
        make_now, request, principal, str(body.get("template") or "")[:64], str(body.get("period") or "")[:40]
    )


@router.put("/reports/subscriptions/{template}")
async def subscribe(
    request: Request,
    template: str,
    body: dict[str, Any] = Body(...),
    principal: Principal = Depends(require("read_data")),
) -> dict[str, Any]:
    """Receive a template's reports by e-mail ({"subscribed": true}) or not."""
    app_parts, moment = parts(request), now(request)
    wanted = bool(body.get("subscribed", True))

    def write() -> bool:
        with app_parts.db.writing() as session:
            return service.set_subscription(
                session, principal, Actor.of(principal, client_ip(request)), moment, template[:64], wanted
            )

    try:
        changed = await run_in_threadpool(write)
    except service.ReportError as exc:
        raise problem(exc) from None
    return {"template": template, "subscribed": wanted, "changed": changed}


@router.get("/brief")
@router.get("/brief/{day}")
async def get_brief(
    request: Request, day: str = "", principal: Principal = Depends(require("read_data"))
) -> dict[str, Any]:
    """The leader's brief of a day (default: the newest), with its content."""
    app_parts, lang = parts(request), language(request)
    chosen = parse_day(day) if day else None

    def read() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            run = service.brief_of(session, principal, chosen)
            return {**service.run_out(run, lang), "content": run.content}

    try:
        return await run_in_threadpool(read)
    except service.ReportError as exc:
        raise problem(exc) from None
