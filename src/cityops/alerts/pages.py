"""Alert pages: the alert list (firing first) with acknowledge, silence and make-incident forms, one alert with its
history, and the rules: list, create, view and edit, delete.

Everything works without JavaScript: plain forms with a CSRF token, a redirect on success, and on a refusal the same
page again (422) with what is wrong next to the field and what was typed kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.alerts import rules, service
from cityops.alerts.models import EVENT_CATEGORIES, INCIDENT_MODES, RULE_KINDS, SEVERITIES, AlertRule
from cityops.catalog.models import Domain, Indicator
from cityops.feeds.models import Feed
from cityops.geo.models import Subject
from cityops.i18n import fold, translate
from cityops.incidents.models import IncidentCategory
from cityops.web.deps import client_ip, language, parts
from cityops.web.pages import form_csrf_ok, form_text, render, require_page

router = APIRouter(include_in_schema=False)
SILENCE_CHOICES = (30, 60, 240, 1440, 10080)
PAGE_SIZE = 200
PARAM_FIELDS = (
    "p_op",
    "p_value",
    "p_change_unit",
    "p_tolerance_pct",
    "p_periods",
    "p_condition",
    "p_level",
    "p_category",
    "p_type",
    "p_min_severity",
    "p_count",
    "p_window_minutes",
)
TEXT_FIELDS = (
    "code",
    "name_vi",
    "name_en",
    "kind",
    "indicator",
    "feed",
    "subject",
    "severity",
    "for_minutes",
    "incident_mode",
    "incident_category",
    "agency",
)
_NUMBER = re.compile(r"-?[0-9]+([.,][0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"[0-9]{1,9}", re.ASCII)


def _not_found() -> HTTPException:
    return HTTPException(404)


def _name(item: Any, lang: str) -> str:
    return str(item.name_vi if lang == "vi" else item.name_en or item.name_vi)


# --- the alert list and one alert -------------------------------------------------------------------------


def _decorate(items: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    for item in items:
        item["title"] = item["title_vi"] if lang == "vi" else item["title_en"] or item["title_vi"]
        item["severity_label"] = translate(f"alerts.severity.{item['severity']}", lang)
        item["state_label"] = translate(f"alerts.state.{item['state']}", lang)
        item["active"] = item["state"] in service.ACTIVE
        item["agency_name"] = item["agency_name_vi"] if lang == "vi" else item["agency_name_en"]
        item["rule_name"] = item["rule_name_vi"] if lang == "vi" else item["rule_name_en"]
        item["kind_label"] = translate(f"alerts.kind.{item['kind']}", lang)
    return items


def _list_context(request: Request, principal: Principal) -> dict[str, Any]:
    lang = language(request)
    query = request.query_params
    state = query.get("state", "active")
    state = state if state in service.STATE_FILTERS else "active"
    severity = query.get("severity", "")
    severity = severity if severity in SEVERITIES else ""
    kind = form_text(query.get("kind"), 40)
    rule_code = form_text(query.get("rule"), 64)
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        alerts, total = service.list_alerts(
            session, principal, state=state, severity=severity, kind=kind, rule_code=rule_code, limit=PAGE_SIZE
        )
        items = _decorate(service.alerts_out(session, alerts, app_parts.clock()), lang)
        rule_choices = [(r.code, _name(r, lang)) for r in rules.visible_rules(session, principal)]
    return {
        "alerts": items,
        "total": total,
        "filters": {"state": state, "severity": severity, "kind": kind, "rule": rule_code},
        "states": service.STATE_FILTERS,
        "severities": SEVERITIES,
        "kinds": ("feed_late", *RULE_KINDS),
        "rule_choices": rule_choices,
        "can_handle": principal.can("handle_alerts"),
        "can_manage": principal.can("manage_alerts"),
        "silence_choices": SILENCE_CHOICES,
        "notice": _notice(request),
        "error": "",
        "typed": {},
        "back": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    }


def _notice(request: Request) -> str:
    done = request.query_params.get("done", "")
    if done in ("acknowledged", "silenced", "unsilenced", "saved", "created", "deleted", "unchanged"):
        return translate(f"alerts.notice.{done}", language(request))
    return ""


@router.get("/alerts")
async def alerts_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The alerts the user may see: firing first, the worst first; filters; acknowledge, silence, make incident."""
    return render(request, "alerts/list.html", await run_in_threadpool(_list_context, request, principal))


def _detail_context(request: Request, principal: Principal, alert_id: int) -> dict[str, Any] | None:
    lang = language(request)
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        try:
            alert = service.get_alert(session, principal, alert_id)
        except service.AlertNotFound:
            return None
        item = _decorate(service.alerts_out(session, [alert], app_parts.clock()), lang)[0]
        entries = service.history_out(service.history(session, alert.id))
    for entry in entries:
        entry["label"] = translate(f"alerts.history.{entry['event']}", lang)
    return {
        "alert": item,
        "history": entries,
        "can_handle": principal.can("handle_alerts"),
        "silence_choices": SILENCE_CHOICES,
        "notice": _notice(request),
        "error": "",
        "typed": {},
        "back": f"/alerts/{alert_id}",
    }


@router.get("/alerts/{alert_id:int}")
async def alert_page(
    request: Request, alert_id: int, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """One alert: what, how bad, since when, who acknowledged it, its silence, and its history."""
    context = await run_in_threadpool(_detail_context, request, principal, alert_id)
    if context is None:
        raise _not_found()
    return render(request, "alerts/alert.html", context)


def _back(raw: FormData, alert_id: int) -> str:
    back = form_text(raw.get("back"), 500)
    return back if back.startswith("/alerts") and "//" not in back and "\\" not in back else f"/alerts/{alert_id}"


def _with_done(target: str, done: str) -> str:
    path, _, query = target.partition("?")
    kept = "&".join(part for part in query.split("&") if part and not part.startswith("done="))
    return f"{path}?{kept + '&' if kept else ''}done={done}"


async def _refused(
    request: Request, principal: Principal, alert_id: int, raw: FormData, message: str, status: int
) -> Response:
    """The page the form came from again, with what went wrong and what was typed."""
    back = _back(raw, alert_id)
    typed = {
        "alert": alert_id,
        "reason": form_text(raw.get("reason"), 1000),
        "minutes": form_text(raw.get("minutes"), 10),
    }
    if back.startswith(f"/alerts/{alert_id}"):
        context = await run_in_threadpool(_detail_context, request, principal, alert_id)
        template = "alerts/alert.html"
    else:
        context = await run_in_threadpool(_list_context, request, principal)
        template = "alerts/list.html"
    if context is None:
        raise _not_found()
    context.update(error=message, typed=typed)
    return render(request, template, context, status_code=status)


async def _alert_action(request: Request, principal: Principal, alert_id: int, action: str) -> Response:
    app_parts = parts(request)
    lang = language(request)
    raw = await request.form()
    if not form_csrf_ok(request, raw):
        return await _refused(request, principal, alert_id, raw, translate("login.csrf", lang), 403)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()
    until = None
    reason = form_text(raw.get("reason"), 1000)
    if action == "silence":
        minutes_text = form_text(raw.get("minutes"), 10)
        if not reason:
            return await _refused(
                request, principal, alert_id, raw, translate("alerts.silence_error.reason", lang), 422
            )
        minutes = int(minutes_text) if _INTEGER.fullmatch(minutes_text) else 0
        until = service.silence_until(moment, minutes=minutes, until=None) if 0 < minutes <= 43200 else None
        if until is None:
            return await _refused(
                request, principal, alert_id, raw, translate("alerts.silence_error.minutes", lang), 422
            )

    def run() -> int | None:
        with app_parts.db.writing() as session:
            if action == "ack":
                service.acknowledge(session, actor, principal, moment, alert_id)
            elif action == "silence":
                assert until is not None
                service.silence(session, actor, principal, moment, alert_id, until=until, reason=reason)
            elif action == "unsilence":
                service.unsilence(session, actor, principal, moment, alert_id)
            else:
                alert = service.get_alert(session, principal, alert_id)
                if alert.incident_id is not None:
                    return alert.incident_id
                rule = session.get(AlertRule, alert.rule_id) if alert.rule_id is not None else None
                category = None
                if rule is not None and rule.incident_category_id is not None:
                    category = session.scalar(
                        select(IncidentCategory.code).where(IncidentCategory.id == rule.incident_category_id)
                    )
                return service.make_incident(session, actor, moment, alert_id, category_code=category)
        return None

    try:
        incident_id = await run_in_threadpool(run)
    except service.AlertNotFound as exc:
        raise _not_found() from exc
    except service.AlertConflict as exc:
        params = {k: v for k, v in exc.params.items()}
        message = translate(f"alerts.conflict.{exc.code}", lang, **params)
        return await _refused(request, principal, alert_id, raw, message, 409)
    if action == "incident":
        if incident_id is None:
            return await _refused(request, principal, alert_id, raw, translate("alerts.incident_failed", lang), 422)
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)
    done = {"ack": "acknowledged", "silence": "silenced", "unsilence": "unsilenced"}[action]
    return RedirectResponse(_with_done(_back(raw, alert_id), done), status_code=303)


@router.post("/alerts/{alert_id:int}/ack")
async def ack_alert(
    request: Request, alert_id: int, principal: Principal = Depends(require_page("handle_alerts"))
) -> Response:
    """Acknowledge an alert (once per firing)."""
    return await _alert_action(request, principal, alert_id, "ack")


@router.post("/alerts/{alert_id:int}/silence")
async def silence_alert(
    request: Request, alert_id: int, principal: Principal = Depends(require_page("handle_alerts"))
) -> Response:
    """Silence an alert for a while, with a reason."""
    return await _alert_action(request, principal, alert_id, "silence")


@router.post("/alerts/{alert_id:int}/unsilence")
async def unsilence_alert(
    request: Request, alert_id: int, principal: Principal = Depends(require_page("handle_alerts"))
) -> Response:
    """Lift an alert's silence."""
    return await _alert_action(request, principal, alert_id, "unsilence")


@router.post("/alerts/{alert_id:int}/incident")
async def incident_from_alert(
    request: Request, alert_id: int, principal: Principal = Depends(require_page("handle_alerts"))
) -> Response:
    """Make the incident of an alert (once; a second press leads to the same incident) and go to it."""
    return await _alert_action(request, principal, alert_id, "incident")


# --- rules ------------------------------------------------------------------------------------------------


@dataclass
class RuleForm:
    """The rule form as shown: its entries as text, and what is wrong with them."""

    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[tuple[str, str, str]] = field(default_factory=list)
    notice: str = ""

    def add(self, field_id: str, message: str, lang: str) -> None:
        self.errors.setdefault(field_id, []).append(message)
        self.summary.append((field_id, translate(f"alerts.form.{field_id}", lang), message))


def _blank() -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(TEXT_FIELDS, "")
    values.update(dict.fromkeys(PARAM_FIELDS, ""))
    values.update(
        description="",
        kind="threshold",
        severity="warning",
        for_minutes="0",
        incident_mode="none",
        enabled=True,
        p_op=">",
        p_change_unit="pct",
        p_periods="1",
        p_condition="late",
        p_category="security",
        p_min_severity="warning",
        p_count="1",
        p_window_minutes="60",
    )
    return values


def _number_text(value: Any) -> str:
    if value is None or value == "":
        return ""
    return str(int(value)) if isinstance(value, (int, float)) and float(value).is_integer() else str(value)


def _values_of(definition: dict[str, Any]) -> dict[str, Any]:
    """The form's entries that show a stored rule."""
    values = _blank()
    params = definition.get("params") or {}
    values.update({name: definition.get(name, "") for name in TEXT_FIELDS})
    values.update(
        description=definition.get("description", ""),
        for_minutes=str(definition.get("for_minutes", 0)),
        enabled=bool(definition.get("enabled", True)),
    )
    for name in ("op", "tolerance_pct", "periods", "condition", "level", "category", "type", "min_severity", "count"):
        if name in params:
            values[f"p_{name}"] = (
                _number_text(params[name])
                if name not in ("op", "condition", "category", "type", "min_severity")
                else params[name]
            )
    if "window_minutes" in params:
        values["p_window_minutes"] = _number_text(params["window_minutes"])
    if "value" in params:
        values["p_value"] = _number_text(params["value"])
    for unit in ("pct", "abs"):
        if unit in params:
            values.update(p_change_unit=unit, p_value=_number_text(params[unit]))
    return values


def _parse_number(text: str) -> Any:
    if not text:
        return None
    if _NUMBER.fullmatch(text):
        return float(text.replace(",", "."))
    return text  # the service says it is not a number, quoting it


def _parse_integer(text: str) -> Any:
    if not text:
        return None
    return int(text) if _INTEGER.fullmatch(text) else text


def _read_form(raw: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form's entries as typed, and the rule definition they make."""
    values = _blank()
    for name in (*TEXT_FIELDS, *PARAM_FIELDS):
        values[name] = form_text(raw.get(name), 255)
    values["description"] = form_text(raw.get("description"), 5000)
    values["enabled"] = raw.get("enabled") == "on"
    kind = values["kind"]
    params: dict[str, Any] = {}
    if kind == "threshold":
        params = {"op": values["p_op"], "value": _parse_number(values["p_value"])}
    elif kind == "off_target":
        params = {"tolerance_pct": _parse_number(values["p_tolerance_pct"])}
    elif kind == "change":
        unit = values["p_change_unit"] if values["p_change_unit"] in ("pct", "abs") else "pct"
        params = {
            "op": values["p_op"],
            "periods": _parse_integer(values["p_periods"]),
            unit: _parse_number(values["p_value"]),
        }
    elif kind == "feed_health":
        params = {"condition": values["p_condition"], "level": _parse_number(values["p_level"])}
    elif kind == "events":
        params = {
            "category": values["p_category"],
            "type": values["p_type"],
            "min_severity": values["p_min_severity"],
            "count": _parse_integer(values["p_count"]),
            "window_minutes": _parse_integer(values["p_window_minutes"]),
        }
    params = {name: value for name, value in params.items() if value not in (None, "")}
    definition = {
        **{name: values[name] for name in TEXT_FIELDS if name != "for_minutes"},
        "description": values["description"],
        "for_minutes": _parse_integer(values["for_minutes"]) if values["for_minutes"] else 0,
        "params": params,
        "enabled": values["enabled"],
    }
    if kind not in rules.INDICATOR_KINDS:
        definition["indicator"] = ""
    if kind != "feed_health":
        definition["feed"] = ""
    else:
        definition["subject"] = ""
    return values, definition


def _field_id(problem_field: str) -> str:
    if problem_field in ("params.pct", "params.abs"):
        return "p_value"
    if problem_field.startswith("params."):
        name = f"p_{problem_field.removeprefix('params.')}"
        return name if name in PARAM_FIELDS else "params"
    return problem_field if problem_field in (*TEXT_FIELDS, "description", "enabled") else "params"


def _show_problems(form: RuleForm, exc: rules.RuleInvalid, lang: str) -> None:
    for problem in exc.problems:
        form.add(_field_id(problem.field), problem.message_vi if lang == "vi" else problem.message_en, lang)


def _choices(session: Session, lang: str) -> dict[str, Any]:
    domains = list(session.scalars(select(Domain).order_by(Domain.sort_order, Domain.code)))
    indicators = list(session.scalars(select(Indicator).order_by(Indicator.code)))
    subjects = list(session.scalars(select(Subject).where(Subject.kind.in_(("province", "commune")))))
    subjects.sort(key=lambda s: (s.kind != "province", fold(_name(s, lang)), s.code))
    agency_order = {"province": 0, "department": 1, "unit": 2, "commune": 3}
    agencies = sorted(
        session.scalars(select(Agency)), key=lambda a: (agency_order.get(a.kind, 9), fold(_name(a, lang)), a.code)
    )
    return {
        "indicator_groups": [
            {
                "name": _name(domain, lang),
                "items": [(i.code, _name(i, lang)) for i in indicators if i.code.startswith(f"{domain.code}.")],
            }
            for domain in domains
        ],
        "feeds": [(f.code, f.name or f.code) for f in session.scalars(select(Feed).order_by(Feed.code))],
        "subjects": [(s.code, _name(s, lang)) for s in subjects],
        "agencies": [(a.code, _name(a, lang)) for a in agencies],
        "categories": [
            (c.code, _name(c, lang)) for c in session.scalars(select(IncidentCategory).order_by(IncidentCategory.code))
        ],
    }


def _form_context(
    request: Request, form: RuleForm, *, rule_code: str = "", rule_out: dict[str, Any] | None = None
) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        choices = _choices(session, lang)
    return {
        "form": form,
        "editing": bool(rule_code),
        "rule_code": rule_code,
        "rule": rule_out,
        "kinds": RULE_KINDS,
        "operators": rules.OPERATORS,
        "conditions": rules.FEED_CONDITIONS,
        "event_categories": EVENT_CATEGORIES,
        "severities": SEVERITIES,
        "incident_modes": INCIDENT_MODES,
        "can_manage": True,
        **choices,
    }


def _rules_context(request: Request, principal: Principal) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        visible = rules.visible_rules(session, principal)
        items = rules.rules_out(session, visible)
    for item in items:
        item["name"] = item["name_vi"] if lang == "vi" else item["name_en"]
        item["kind_label"] = translate(f"alerts.kind.{item['kind']}", lang)
        item["severity_label"] = translate(f"alerts.severity.{item['severity']}", lang)
        item["what"] = (
            item["indicator"]
            or item["feed"]
            or (item["params"].get("category", "") if item["kind"] == "events" else "")
        )
    return {"rules": items, "can_manage": principal.can("manage_alerts"), "notice": _notice(request)}


@router.get("/alerts/rules")
async def rules_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The alert rules the user may see."""
    return render(request, "alerts/rules.html", await run_in_threadpool(_rules_context, request, principal))


@router.get("/alerts/rules/new")
async def new_rule_page(request: Request, principal: Principal = Depends(require_page("manage_alerts"))) -> Response:
    """The form that creates a rule (admins, operators)."""
    context = await run_in_threadpool(_form_context, request, RuleForm(values=_blank()))
    return render(request, "alerts/rule_form.html", context)


@router.post("/alerts/rules/new")
async def create_rule(request: Request, principal: Principal = Depends(require_page("manage_alerts"))) -> Response:
    """Create the rule the form describes; the form again, with what is wrong, when it cannot be created."""
    app_parts = parts(request)
    lang = language(request)
    raw = await request.form()
    values, definition = _read_form(raw)
    form = RuleForm(values=values)

    async def again(status: int) -> Response:
        context = await run_in_threadpool(_form_context, request, form)
        return render(request, "alerts/rule_form.html", context, status_code=status)

    if not form_csrf_ok(request, raw):
        form.notice = translate("login.csrf", lang)
        return await again(403)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> str:
        with app_parts.db.writing() as session:
            return rules.create_rule(session, actor, moment, definition).code

    try:
        code = await run_in_threadpool(run)
    except rules.RuleInvalid as exc:
        _show_problems(form, exc, lang)
        return await again(422)
    except rules.RuleExists:
        form.add("code", translate("alerts.rule_error.exists", lang, code=values["code"]), lang)
        return await again(409)
    return RedirectResponse(f"/alerts/rules/{quote(code)}?done=created", status_code=303)


def _rule_state(request: Request, principal: Principal, code: str) -> dict[str, Any] | None:
    lang = language(request)
    with parts(request).db.reading() as session:
        try:
            rule = rules.get_rule(session, code, principal)
        except rules.RuleNotFound:
            return None
        out = rules.rule_out(session, rule)
    out["kind_label"] = translate(f"alerts.kind.{out['kind']}", lang)
    out["severity_label"] = translate(f"alerts.severity.{out['severity']}", lang)
    out["name"] = out["name_vi"] if lang == "vi" else out["name_en"]
    return out


@router.get("/alerts/rules/{code}")
async def rule_page(request: Request, code: str, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """One rule: its definition; for admins and operators the form that changes it and the delete button."""
    out = await run_in_threadpool(_rule_state, request, principal, code)
    if out is None:
        raise _not_found()
    form = RuleForm(values=_values_of(out))
    form.notice = ""
    context = await run_in_threadpool(lambda: _form_context(request, form, rule_code=code, rule_out=out))
    context["can_manage"] = principal.can("manage_alerts")
    context["done"] = _notice(request)
    return render(request, "alerts/rule_form.html", context)


@router.post("/alerts/rules/{code}")
async def edit_rule(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_alerts"))
) -> Response:
    """Save the form's changes to a rule; the form again with what is wrong when they cannot be saved."""
    app_parts = parts(request)
    lang = language(request)
    out = await run_in_threadpool(_rule_state, request, principal, code)
    if out is None:
        raise _not_found()
    raw = await request.form()
    values, definition = _read_form(raw)
    values["code"] = code
    definition.pop("code", None)
    form = RuleForm(values=values)

    async def again(status: int) -> Response:
        context = await run_in_threadpool(lambda: _form_context(request, form, rule_code=code, rule_out=out))
        return render(request, "alerts/rule_form.html", context, status_code=status)

    if not form_csrf_ok(request, raw):
        form.notice = translate("login.csrf", lang)
        return await again(403)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> bool:
        with app_parts.db.writing() as session:
            return rules.update_rule(session, actor, moment, code, definition)

    try:
        changed = await run_in_threadpool(run)
    except rules.RuleNotFound as exc:
        raise _not_found() from exc
    except rules.RuleInvalid as exc:
        _show_problems(form, exc, lang)
        return await again(422)
    return RedirectResponse(f"/alerts/rules/{quote(code)}?done={'saved' if changed else 'unchanged'}", status_code=303)


@router.post("/alerts/rules/{code}/delete")
async def delete_rule(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_alerts"))
) -> Response:
    """Delete a rule and its alerts."""
    app_parts = parts(request)
    raw = await request.form()
    if not form_csrf_ok(request, raw):
        raise HTTPException(403)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> None:
        with app_parts.db.writing() as session:
            rules.delete_rule(session, actor, moment, code)

    try:
        await run_in_threadpool(run)
    except rules.RuleNotFound as exc:
        raise _not_found() from exc
    return RedirectResponse("/alerts/rules?done=deleted", status_code=303)
