"""Information security API: systems (read: read_data, own systems for agencies; change: manage_security), the
overview, events, vulnerabilities (entered, imported from CSV or JSON), and Wazuh alerts (`POST
/api/v1/soc/wazuh`: agency systems' keys with write_observations, or operators with manage_alerts — the same
permission as `POST /api/v1/events`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.i18n import both
from cityops.soc import service, wazuh, websites
from cityops.web.deps import client_ip, optional_principal, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1/soc", tags=["security"])
STATUS = {
    "soc_system_not_found": 404,
    "soc_vulnerability_not_found": 404,
    "soc_system_exists": 409,
}


def problem(exc: service.SocError) -> Problem:
    extra = {"errors": exc.problems} if exc.problems else None
    return Problem(STATUS.get(exc.code, 422), exc.code, extra=extra, **exc.params)


async def _json(request: Request) -> Any:
    import orjson

    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "invalid_json", reason=str(exc)[:120]) from exc


def _system_answer(request: Request, principal: Principal, code: str) -> dict[str, Any]:
    with parts(request).db.reading() as session:
        try:
            system = service.get_system(session, principal, code)
        except service.SocError as exc:
            raise problem(exc) from exc
        return service.system_out(system, service.agency_codes(session))


@router.get("/systems", summary="Information systems / Hệ thống thông tin")
async def list_systems(request: Request, principal: Principal = Depends(require("read_data"))) -> dict[str, Any]:
    """The systems the caller may see (agencies: their own), by code."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            codes = service.agency_codes(session)
            return {"items": [service.system_out(s, codes) for s in service.visible_systems(session, principal)]}

    return await run_in_threadpool(run)


@router.post("/systems", status_code=201, summary="Register a system / Đăng ký hệ thống")
async def create_system(request: Request, principal: Principal = Depends(require("manage_security"))) -> dict[str, Any]:
    """Register a system: code, name_vi, name_en, owner_agency, security_level 1–5, hosts, website_url,
    website_expected_text, description. Audited."""
    body = await _json(request)
    if not isinstance(body, dict):
        raise Problem(422, "soc_system_invalid", reason_vi="{...}", reason_en="{...}")
    app_parts = parts(request)
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                system = service.create_system(session, actor, app_parts.clock(), body)
                return service.system_out(system, service.agency_codes(session))
        except service.SocError as exc:
            raise problem(exc) from exc

    return await run_in_threadpool(run)


@router.get("/systems/{code}", summary="One system / Một hệ thống")
async def get_system(
    request: Request, code: str, principal: Principal = Depends(require("read_data"))
) -> dict[str, Any]:
    return await run_in_threadpool(_system_answer, request, principal, code)


@router.patch("/systems/{code}", summary="Change a system / Sửa hệ thống")
async def patch_system(
    request: Request, code: str, principal: Principal = Depends(require("manage_security"))
) -> dict[str, Any]:
    """Change the fields sent. Audited."""
    body = await _json(request)
    if not isinstance(body, dict):
        raise Problem(422, "soc_system_invalid", reason_vi="{...}", reason_en="{...}")
    app_parts = parts(request)
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                system = service.update_system(session, actor, principal, app_parts.clock(), code, body)
                return service.system_out(system, service.agency_codes(session))
        except service.SocError as exc:
            raise problem(exc) from exc

    return await run_in_threadpool(run)


@router.post("/systems/{code}/website/accept", summary="Accept the website's content / Chấp nhận nội dung trang")
async def accept_website(
    request: Request, code: str, principal: Principal = Depends(require("manage_security"))
) -> dict[str, Any]:
    """Take the page as last checked as the new reference (after a wanted change). Audited."""
    app_parts = parts(request)
    answer = await run_in_threadpool(_system_answer, request, principal, code)
    with app_parts.db.reading() as session:
        system_id = service.get_system(session, principal, code).id
    await run_in_threadpool(
        websites.accept_content, app_parts.db, Actor.of(principal, client_ip(request)), system_id, app_parts.clock()
    )
    return answer


@router.get("/overview", summary="Security overview / Tổng quan an toàn thông tin")
async def overview(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    window: str = Query(default="24h", pattern="^(24h|7d)$"),
) -> dict[str, Any]:
    """Events by band and by system, top sources, open vulnerabilities, websites (agencies: their systems)."""
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return service.overview_out(service.overview(session, principal, app_parts.clock(), window))

    return await run_in_threadpool(run)


@router.get("/events", summary="Security events / Sự kiện an toàn thông tin")
async def list_events(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    system: str = Query(default="", max_length=64),
    level: str = Query(default="", pattern="^(|info|low|medium|high|critical)$"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    """Newest first, with the raw text; `level` keeps that band and above."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            try:
                events = service.list_events(session, principal, system=system, level=level, limit=limit, offset=offset)
            except service.SocError as exc:
                raise problem(exc) from exc
            codes = {s.id: s.code for s in service.visible_systems(session, principal)}
            if principal.province_wide is False:
                events = [e for e in events if e.system_id in codes]
            return {"items": [service.event_out(e, codes) for e in events]}

    return await run_in_threadpool(run)


@router.post("/wazuh", summary="Wazuh alerts / Cảnh báo Wazuh")
async def post_wazuh(request: Request, principal: Principal | None = Depends(optional_principal)) -> dict[str, Any]:
    """One Wazuh alert, a list, `{"alerts": [...]}` or NDJSON. Every good alert is stored as a security event;
    each bad one is answered in `rejected` with its index and why, in Vietnamese and English."""
    permission = "manage_alerts" if principal is not None and principal.can("manage_alerts") else "write_observations"
    principal = await require(permission)(request, principal)
    body = await request.body()
    try:
        items = wazuh.split_body(body)
    except wazuh.WazuhBodyError as exc:
        if exc.code == "invalid_json":
            raise Problem(400, "invalid_json", reason=exc.reason) from exc
        raise Problem(422, exc.code, reason=exc.reason) from exc
    app_parts = parts(request)
    peer = client_ip(request)

    def run() -> dict[str, Any]:
        now = app_parts.clock()
        kept: list[service.Incoming] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            parsed = wazuh.parse_alert(item, now, index)
            if isinstance(parsed, wazuh.WazuhProblem):
                message_vi, message_en = both(f"soc.wazuh_error.{parsed.code}", **parsed.params)
                rejected.append(
                    {
                        "index": index,
                        "code": parsed.code,
                        "field": parsed.field,
                        "message_vi": message_vi,
                        "message_en": message_en,
                    }
                )
            else:
                kept.append(service.Incoming(parsed, "http", peer))
        with app_parts.db.writing() as session:
            done = service.store_events(session, kept, now, owners=service.owners_for(session, principal))
        return {"received": len(items), "accepted": done["stored"], "matched": done["matched"], "rejected": rejected}

    return await run_in_threadpool(run)


@router.get("/vulnerabilities", summary="Vulnerabilities / Lỗ hổng")
async def list_vulnerabilities(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    status: str = Query(default="", pattern="^(|open|mitigated|fixed|accepted)$"),
    system: str = Query(default="", max_length=64),
) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            rows = service.list_vulnerabilities(session, principal, status=status, system=system)
            return {"items": [service.vulnerability_out(v, code) for v, code in rows]}

    return await run_in_threadpool(run)


async def _save(request: Request, principal: Principal, items: list[Any], source: str) -> dict[str, Any]:
    app_parts = parts(request)
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        with app_parts.db.writing() as session:
            return service.save_vulnerabilities(session, actor, principal, app_parts.clock(), items, source=source)

    return await run_in_threadpool(run)


@router.post("/vulnerabilities", summary="Enter vulnerabilities / Nhập lỗ hổng")
async def post_vulnerabilities(
    request: Request, principal: Principal = Depends(require("manage_security"))
) -> dict[str, Any]:
    """One finding, a list, or `{"findings": [...]}`: system, reference (CVE or scanner id), title, level
    (low/medium/high/critical; from cvss when absent), cvss, status, found_at. Created or updated by system and
    reference; every good finding kept, each bad one answered in `rejected`. Audited."""
    body = await _json(request)
    items = body.get("findings") if isinstance(body, dict) and "findings" in body else body
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list) or len(items) > 5000:
        raise Problem(422, "soc_import_invalid", reason='{"findings": [...]}')
    return await _save(request, principal, items, "manual")


@router.post("/vulnerabilities/import", summary="Import findings / Nhập kết quả rà quét")
async def import_vulnerabilities(
    request: Request, principal: Principal = Depends(require("manage_security"))
) -> dict[str, Any]:
    """The body is a CSV file (header: system,reference,title,level,cvss,status,found_at) or the JSON of findings."""
    body = await request.body()
    try:
        items = service.read_findings(body, "x.json" if "json" in request.headers.get("content-type", "") else "")
    except service.SocError as exc:
        raise problem(exc) from exc
    if len(items) > 5000:
        raise Problem(422, "soc_import_invalid", reason="at most 5000 findings")
    return await _save(request, principal, items, "import")


@router.patch("/vulnerabilities/{vuln_id}", summary="Change a vulnerability's status / Đổi trạng thái lỗ hổng")
async def patch_vulnerability(
    request: Request, vuln_id: int, principal: Principal = Depends(require("manage_security"))
) -> dict[str, Any]:
    body = await _json(request)
    status = body.get("status") if isinstance(body, dict) else None
    app_parts = parts(request)
    actor = Actor.of(principal, client_ip(request))

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                vuln = service.set_vulnerability_status(
                    session, actor, principal, app_parts.clock(), vuln_id, str(status or "")
                )
                code = session.scalar(
                    service.select(service.InformationSystem.code).where(service.InformationSystem.id == vuln.system_id)
                )
                return service.vulnerability_out(vuln, code or "")
        except service.SocError as exc:
            raise problem(exc) from exc

    return await run_in_threadpool(run)
