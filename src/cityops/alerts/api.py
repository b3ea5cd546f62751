"""Alerts API: rules (read: read_data; change: manage_alerts), alerts (read: read_data, within the agency's subtree;
acknowledge and silence: handle_alerts) and events (write_observations or manage_alerts).

An alert addressed to another agency answers 404 to an agency's user, as if it did not exist.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.alerts import rules, service
from cityops.alerts.schemas import AlertList, AlertOut, EventsAnswer, RuleIn, RuleList, RuleOut, RulePatch, SilenceIn
from cityops.i18n import both
from cityops.web.deps import client_ip, optional_principal, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["alerts"])
MAX_EVENTS = 1000
RULE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in"},
    403: {"description": "The role may not do this, or no CSRF token"},
    404: {"description": "No such rule that the caller may see (alert_rule_not_found)"},
}
ALERT_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in"},
    403: {"description": "The role may not do this, or no CSRF token"},
    404: {"description": "No such alert that the caller may see (alert_not_found)"},
}


def rule_problem(exc: Exception) -> Problem:
    """The API problem for a refused rule: 404 unknown, 409 taken code, 422 with every field that is wrong."""
    if isinstance(exc, rules.RuleNotFound):
        return Problem(404, "alert_rule_not_found", rule=str(exc)[:64])
    if isinstance(exc, rules.RuleExists):
        return Problem(409, "alert_rule_exists", rule=str(exc)[:64], extra={"field": "code"})
    assert isinstance(exc, rules.RuleInvalid)
    first = exc.problems[0]
    return Problem(
        422,
        "alert_rule_invalid",
        reason_vi=first.message_vi,
        reason_en=first.message_en,
        extra={
            "reason": first.code,
            "field": first.field,
            "errors": [
                {"field": p.field, "code": p.code, "message_vi": p.message_vi, "message_en": p.message_en}
                for p in exc.problems
            ],
        },
    )


def alert_problem(exc: Exception) -> Problem:
    """The API problem for an alert action that cannot be done."""
    if isinstance(exc, service.AlertNotFound):
        return Problem(404, "alert_not_found", alert=str(exc)[:20])
    assert isinstance(exc, service.AlertConflict)
    if exc.code == "already_acknowledged":
        return Problem(409, "alert_already_acknowledged", who=exc.params["who"], at=exc.params["at"])
    return Problem(409, "alert_not_active", alert=exc.params.get("alert", ""))


# --- rules ------------------------------------------------------------------------------------------------


def _rule_answer(request: Request, principal: Principal, code: str) -> dict[str, Any]:
    with parts(request).db.reading() as session:
        try:
            return rules.rule_out(session, rules.get_rule(session, code, principal))
        except rules.RuleNotFound as exc:
            raise rule_problem(exc) from exc


@router.get("/alert-rules", response_model=RuleList, summary="Alert rules / Quy tắc cảnh báo")
async def list_rules(request: Request, principal: Principal = Depends(require("read_data"))) -> dict[str, Any]:
    """The rules the caller may see (agencies: the rules whose alerts address their subtree), by code."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            return {"items": rules.rules_out(session, rules.visible_rules(session, principal))}

    return await run_in_threadpool(run)


@router.get("/alert-rules/{code}", response_model=RuleOut, responses=RULE_RESPONSES, summary="One rule / Một quy tắc")
async def get_rule(request: Request, code: str, principal: Principal = Depends(require("read_data"))) -> dict[str, Any]:
    """One rule."""
    return await run_in_threadpool(_rule_answer, request, principal, code)


@router.post(
    "/alert-rules",
    status_code=201,
    response_model=RuleOut,
    responses={
        **RULE_RESPONSES,
        409: {"description": "A rule with this code exists (alert_rule_exists)"},
        422: {"description": "The rule is not valid (alert_rule_invalid): every wrong field in `errors`"},
    },
    summary="Create a rule / Tạo quy tắc",
)
async def create_rule(
    request: Request, body: RuleIn, principal: Principal = Depends(require("manage_alerts"))
) -> dict[str, Any]:
    """Create a rule (admins, operators); it is evaluated at the next tick. Audited."""
    app_parts = parts(request)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                rule = rules.create_rule(session, actor, moment, body.model_dump())
                return rules.rule_out(session, rule)
        except (rules.RuleInvalid, rules.RuleExists) as exc:
            raise rule_problem(exc) from exc

    return await run_in_threadpool(run)


@router.patch(
    "/alert-rules/{code}",
    response_model=RuleOut,
    responses={**RULE_RESPONSES, 422: {"description": "A change is not valid (alert_rule_invalid)"}},
    summary="Change a rule / Sửa quy tắc",
)
async def patch_rule(
    request: Request, code: str, body: RulePatch, principal: Principal = Depends(require("manage_alerts"))
) -> dict[str, Any]:
    """Change the fields sent (params sent replace the others). Audited; the rule is evaluated at the next tick."""
    app_parts = parts(request)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()
    changes = body.model_dump(exclude_unset=True)

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                rules.get_rule(session, code, principal)
                rules.update_rule(session, actor, moment, code, changes)
        except (rules.RuleInvalid, rules.RuleNotFound) as exc:
            raise rule_problem(exc) from exc
        return _rule_answer(request, principal, code)

    return await run_in_threadpool(run)


@router.delete("/alert-rules/{code}", status_code=204, responses=RULE_RESPONSES, summary="Delete a rule / Xoá quy tắc")
async def delete_rule(request: Request, code: str, principal: Principal = Depends(require("manage_alerts"))) -> None:
    """Delete a rule and its alerts. Audited."""
    app_parts = parts(request)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> None:
        try:
            with app_parts.db.writing() as session:
                rules.get_rule(session, code, principal)
                rules.delete_rule(session, actor, moment, code)
        except rules.RuleNotFound as exc:
            raise rule_problem(exc) from exc

    await run_in_threadpool(run)


# --- alerts -----------------------------------------------------------------------------------------------


def _alert_answer(request: Request, principal: Principal, alert_id: int) -> dict[str, Any]:
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        try:
            alert = service.get_alert(session, principal, alert_id)
        except service.AlertNotFound as exc:
            raise alert_problem(exc) from exc
        answer = service.alerts_out(session, [alert], app_parts.clock())[0]
        answer["history"] = service.history_out(service.history(session, alert.id))
        return answer


@router.get("/alerts", response_model=AlertList, summary="Alerts / Cảnh báo")
async def list_alerts(
    request: Request,
    principal: Principal = Depends(require("read_data")),
    state: str = Query(default="all", pattern="^(active|firing|pending|resolved|all)$"),
    severity: str = Query(default="", pattern="^(|info|warning|critical)$"),
    kind: str = Query(default="", max_length=40),
    rule: str = Query(default="", max_length=64),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    """The alerts the caller may see (agencies: those addressed to their subtree): firing first, then pending,
    then resolved; the worst first."""
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            alerts, total = service.list_alerts(
                session,
                principal,
                state=state,
                severity=severity,
                kind=kind,
                rule_code=rule,
                limit=limit,
                offset=offset,
            )
            items = service.alerts_out(session, alerts, app_parts.clock())
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    return await run_in_threadpool(run)


@router.get(
    "/alerts/{alert_id}", response_model=AlertOut, responses=ALERT_RESPONSES, summary="One alert / Một cảnh báo"
)
async def get_alert(
    request: Request, alert_id: int, principal: Principal = Depends(require("read_data"))
) -> dict[str, Any]:
    """One alert with its history (pending, fired, acknowledged, silenced, resolved …, who and when)."""
    return await run_in_threadpool(_alert_answer, request, principal, alert_id)


def _alert_action(request: Request, principal: Principal, alert_id: int, action: Any) -> dict[str, Any]:
    app_parts = parts(request)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()
    try:
        with app_parts.db.writing() as session:
            action(session, actor, moment)
    except (service.AlertNotFound, service.AlertConflict) as exc:
        raise alert_problem(exc) from exc
    return _alert_answer(request, principal, alert_id)


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertOut,
    responses={**ALERT_RESPONSES, 409: {"description": "Already acknowledged, or not pending/firing"}},
    summary="Acknowledge / Xác nhận",
)
async def acknowledge(
    request: Request, alert_id: int, principal: Principal = Depends(require("handle_alerts"))
) -> dict[str, Any]:
    """Acknowledge a pending or firing alert: who and when are kept; once per firing."""
    return await run_in_threadpool(
        _alert_action,
        request,
        principal,
        alert_id,
        lambda session, actor, moment: service.acknowledge(session, actor, principal, moment, alert_id),
    )


@router.post(
    "/alerts/{alert_id}/silence",
    response_model=AlertOut,
    responses={
        **ALERT_RESPONSES,
        409: {"description": "Not pending or firing"},
        422: {"description": "alert_silence_invalid"},
    },
    summary="Silence / Tắt thông báo",
)
async def silence(
    request: Request, alert_id: int, body: SilenceIn, principal: Principal = Depends(require("handle_alerts"))
) -> dict[str, Any]:
    """Silence an alert for some minutes or until a moment (at most 30 days), with a reason: while silenced, its
    firing is not told to anyone. A silence ends when it expires, when lifted, or when the alert resolves."""
    moment = parts(request).clock()
    reason = body.reason.replace("\x00", "").strip()
    if not reason:
        raise _silence_problem("alerts.silence_error.reason")
    if body.minutes is not None and not 0 < body.minutes <= 43200:
        raise _silence_problem("alerts.silence_error.minutes")
    until = service.silence_until(moment, minutes=body.minutes, until=body.until)
    if until is None:
        raise _silence_problem("alerts.silence_error.until")
    return await run_in_threadpool(
        _alert_action,
        request,
        principal,
        alert_id,
        lambda session, actor, now: service.silence(
            session, actor, principal, now, alert_id, until=until, reason=reason
        ),
    )


def _silence_problem(message_id: str) -> Problem:
    reason_vi, reason_en = both(message_id)
    return Problem(422, "alert_silence_invalid", reason_vi=reason_vi, reason_en=reason_en)


@router.delete(
    "/alerts/{alert_id}/silence", response_model=AlertOut, responses=ALERT_RESPONSES, summary="Unsilence / Bật lại"
)
async def unsilence(
    request: Request, alert_id: int, principal: Principal = Depends(require("handle_alerts"))
) -> dict[str, Any]:
    """Lift an alert's silence."""
    return await run_in_threadpool(
        _alert_action,
        request,
        principal,
        alert_id,
        lambda session, actor, moment: service.unsilence(session, actor, principal, moment, alert_id),
    )


# --- events -----------------------------------------------------------------------------------------------


@router.post(
    "/events",
    response_model=EventsAnswer,
    responses={
        401: {"description": "Not logged in"},
        403: {"description": "Not allowed"},
        422: {"description": "events_invalid"},
    },
    summary="Report events / Gửi sự kiện",
)
async def post_events(request: Request, principal: Principal | None = Depends(optional_principal)) -> dict[str, Any]:
    """Report events (security, camera, citizen, system): `{"events": [...]}` or a list. Every good event is kept;
    each bad one is answered in `rejected` with its index and why, in Vietnamese and English. Agency systems
    (write_observations) and operators (manage_alerts) may report."""
    permission = "manage_alerts" if principal is not None and principal.can("manage_alerts") else "write_observations"
    principal = await require(permission)(request, principal)
    body = await request.body()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "invalid_json", reason=str(exc)[:120]) from exc
    items = document.get("events") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise Problem(422, "events_invalid", reason='{"events": [...]}')
    if len(items) > MAX_EVENTS:
        raise Problem(422, "events_invalid", reason=f"at most {MAX_EVENTS} events")
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.writing() as session:
            return service.record_events(session, principal, app_parts.clock(), items)

    return await run_in_threadpool(run)
