"""Security pages: `/security` (the overview), `/security/systems` (the registry, with a form for those who
manage security), `/security/systems/{code}` (one system: events, website checks, vulnerabilities) and
`/security/vulnerabilities` (list, form, CSV/JSON import). Agencies see only their own systems."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.soc import service
from cityops.web.deps import client_ip, parts
from cityops.web.pages import form_csrf_ok, form_text, render, require_page

router = APIRouter(include_in_schema=False)
FORM_FIELDS = (
    "code",
    "name_vi",
    "name_en",
    "owner_agency",
    "security_level",
    "hosts",
    "website_url",
    "website_expected_text",
    "description",
)


@router.get("/security")
async def overview_page(
    request: Request,
    principal: Principal = Depends(require_page("read_data")),
    window: str = Query(default="24h", pattern="^(24h|7d)$"),
) -> Response:
    app_parts = parts(request)

    def read() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return service.overview(session, principal, app_parts.clock(), window)

    data = await run_in_threadpool(read)
    return render(request, "soc/overview.html", {"data": data, "levels": service.SEVERITY_LEVELS})


def _systems_context(request: Request, principal: Principal) -> dict[str, Any]:
    with parts(request).db.reading() as session:
        codes = service.agency_codes(session)
        systems = [service.system_out(s, codes) for s in service.visible_systems(session, principal)]
    return {"systems": systems, "agencies": sorted(codes.values())}


@router.get("/security/systems")
async def systems_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    context = await run_in_threadpool(_systems_context, request, principal)
    return render(request, "soc/systems.html", {**context, "errors": [], "form": {}})


@router.post("/security/systems")
async def systems_create(request: Request, principal: Principal = Depends(require_page("manage_security"))) -> Response:
    form = await request.form()
    values = {name: form_text(form.get(name), 2000) for name in FORM_FIELDS}
    errors: list[dict[str, Any]] = []
    if not form_csrf_ok(request, form):
        errors = [service.field_problem("csrf", "")]
    else:
        app_parts = parts(request)
        actor = Actor.of(principal, client_ip(request))

        def run() -> None:
            with app_parts.db.writing() as session:
                service.create_system(session, actor, app_parts.clock(), values)

        try:
            await run_in_threadpool(run)
            return RedirectResponse(f"/security/systems/{values['code']}", status_code=303)
        except service.SocError as exc:
            errors = exc.problems or [service.field_problem("exists", "code", system=values["code"])]
    context = await run_in_threadpool(_systems_context, request, principal)
    return render(request, "soc/systems.html", {**context, "errors": errors, "form": values}, status_code=422)


@router.get("/security/systems/{code}")
async def system_page(
    request: Request, code: str, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    def read() -> dict[str, Any] | None:
        with parts(request).db.reading() as session:
            try:
                system = service.get_system(session, principal, code)
            except service.SocError:
                return None
            codes = service.agency_codes(session)
            return {
                "system": service.system_out(system, codes),
                "events": service.list_events(session, principal, system=code, limit=50),
                "checks": service.recent_checks(session, system.id),
                "vulns": service.list_vulnerabilities(session, principal, system=code),
            }

    context = await run_in_threadpool(read)
    if context is None:
        return render(request, "soc/not_found.html", {"code": code[:64]}, status_code=404)
    return render(request, "soc/system.html", context)


def _vulns_context(request: Request, principal: Principal) -> dict[str, Any]:
    with parts(request).db.reading() as session:
        return {
            "vulns": service.list_vulnerabilities(session, principal),
            "systems": [s.code for s in service.visible_systems(session, principal)],
        }


@router.get("/security/vulnerabilities")
async def vulns_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    context = await run_in_threadpool(_vulns_context, request, principal)
    return render(request, "soc/vulnerabilities.html", {**context, "result": None})


@router.post("/security/vulnerabilities")
async def vulns_post(request: Request, principal: Principal = Depends(require_page("manage_security"))) -> Response:
    """The form (one finding) or an uploaded CSV/JSON file (`file`)."""
    form = await request.form()
    result: dict[str, Any]
    if not form_csrf_ok(request, form):
        result = {"accepted": 0, "rejected": [{"index": 0, **service.field_problem("csrf", "")}]}
    else:
        upload = form.get("file")
        items: list[Any]
        try:
            if upload is not None and not isinstance(upload, str) and upload.filename:
                items = service.read_findings(await upload.read(2_000_001), upload.filename or "")
                source = "import"
            else:
                items = [{name: form_text(form.get(name), 500) for name in service.VULN_FIELDS}]
                source = "manual"
        except service.SocError as exc:
            items, source = [], "import"
            result = {
                "accepted": 0,
                "rejected": [{"index": 0, **service.field_problem("import", "file", **exc.params)}],
            }
        if items:
            app_parts = parts(request)
            actor = Actor.of(principal, client_ip(request))

            def run() -> dict[str, Any]:
                with app_parts.db.writing() as session:
                    return service.save_vulnerabilities(
                        session, actor, principal, app_parts.clock(), items, source=source
                    )

            result = await run_in_threadpool(run)
        elif "result" not in locals():
            result = {"accepted": 0, "rejected": []}
    context = await run_in_threadpool(_vulns_context, request, principal)
    return render(request, "soc/vulnerabilities.html", {**context, "result": result})
