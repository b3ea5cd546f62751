"""Pages: `/brief` (the leader's daily brief, phone first) and `/reports` (the archive, making one now,
subscriptions)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.reports import api, service
from cityops.reports.content import may_read
from cityops.reports.models import ReportRun
from cityops.reports.templates import BRIEF, local_date, period_label, templates
from cityops.web.deps import client_ip, language, now, parts
from cityops.web.pages import PageForbidden, form_csrf_ok, form_text, render, require_page
from cityops.web.problems import Problem

router = APIRouter(include_in_schema=False)


def _province_wide(principal: Principal) -> Principal:
    if not principal.province_wide:
        raise PageForbidden
    return principal


@router.get("/brief")
@router.get("/brief/{day}")
async def brief_page(
    request: Request, day: str = "", principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """The day's brief on a phone: one column, large type, each line a link to what is behind it."""
    _province_wide(principal)
    app_parts, lang = parts(request), language(request)
    try:
        chosen = api.parse_day(day) if day else None
    except Problem:
        chosen = date(1, 1, 1)

    def read() -> tuple[ReportRun | None, list[date]]:
        with app_parts.db.reading() as session:
            days = [
                run.period_start
                for run in service.list_runs(session, principal, template=BRIEF, limit=8)
                if run.state == "done"
            ]
            try:
                return service.brief_of(session, principal, chosen), days
            except service.ReportError:
                return None, days

    run, days = await run_in_threadpool(read)
    context: dict[str, Any] = {"run": run, "days": days, "asked": chosen}
    if run is not None:
        context.update(service.render_context(run.content, lang))
    return render(request, "reports/brief.html", context, status_code=200 if run is not None else 404)


def _archive_context(request: Request, principal: Principal, template: str, period_kind: str) -> dict[str, Any]:
    app_parts, lang = parts(request), language(request)
    today = local_date(now(request))
    with app_parts.db.reading() as session:
        runs = [
            service.run_out(run, lang)
            for run in service.list_runs(session, principal, template=template, period_kind=period_kind, limit=100)
        ]
        mine = service.subscriptions_of(session, principal.user_id) if principal.user_id else set()
    readable = [t for t in templates().values() if may_read(principal, t.scope)]
    offers = [
        {
            "code": t.code,
            "name": t.name(lang),
            "periods": [
                {"value": first.isoformat(), "label": period_label(t.period, first, last, lang)}
                for first, last in service.periods_for(t, today)
            ],
        }
        for t in readable
    ]
    subscriptions = (
        [{"code": BRIEF, "name": service.translate("reports.brief.title", lang), "on": (BRIEF, "province") in mine}]
        if principal.province_wide
        else []
    )
    subscriptions += [{"code": t.code, "name": t.name(lang), "on": (t.code, t.scope) in mine} for t in readable]
    return {
        "runs": runs,
        "templates": readable,
        "offers": offers,
        "subscriptions": subscriptions,
        "chosen_template": template,
        "chosen_kind": period_kind,
        "message": request.query_params.get("done", ""),
        "error": "",
    }


@router.get("/reports")
async def archive(
    request: Request,
    template: str = "",
    period_kind: str = "",
    principal: Principal = Depends(require_page("read_data")),
) -> Response:
    """The archive: list, filter by template and period kind, download; make one now; subscriptions."""
    if template and template != BRIEF and template not in templates():
        template = ""
    if period_kind not in ("", "day", "week", "month", "quarter"):
        period_kind = ""
    context = await run_in_threadpool(_archive_context, request, principal, template, period_kind)
    return render(request, "reports/archive.html", context)


@router.post("/reports/make")
async def make_page(request: Request, principal: Principal = Depends(require_page("manage_reports"))) -> Response:
    form = await request.form()
    lang = language(request)
    error = ""
    if not form_csrf_ok(request, form):
        error = service.translate("reports.archive.bad_form", lang)
    else:
        try:
            await run_in_threadpool(
                api.make_now, request, principal, form_text(form.get("template"), 64), form_text(form.get("period"), 40)
            )
            return RedirectResponse("/reports?done=made", status_code=303)
        except Problem as exc:
            error = service.translate(f"problem.{exc.code}.detail", lang, **exc.params)
    context = await run_in_threadpool(_archive_context, request, principal, "", "")
    context["error"] = error
    return render(request, "reports/archive.html", context, status_code=422)


@router.post("/reports/subscriptions")
async def subscriptions_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    form = await request.form()
    lang = language(request)
    error = ""
    if not form_csrf_ok(request, form):
        error = service.translate("reports.archive.bad_form", lang)
    else:
        app_parts, moment = parts(request), now(request)
        template = form_text(form.get("template"), 64)
        wanted = form_text(form.get("subscribed"), 8) == "1"

        def write() -> None:
            with app_parts.db.writing() as session:
                service.set_subscription(
                    session, principal, Actor.of(principal, client_ip(request)), moment, template, wanted
                )

        try:
            await run_in_threadpool(write)
            return RedirectResponse("/reports?done=saved", status_code=303)
        except service.ReportError as exc:
            error = service.translate(f"problem.{exc.code}.detail", lang, **exc.params)
    context = await run_in_threadpool(_archive_context, request, principal, "", "")
    context["error"] = error
    return render(request, "reports/archive.html", context, status_code=422)
