"""The incidents pages: the board, a new incident, one incident with its actions, "my work", the operator's inbox.

Everything works without JavaScript: plain forms, each with its CSRF token, checked here; a refused form comes back
with the error next to it and what was typed (422; 403 for a form without its token or a forbidden action, 409 for
a move the status does not allow); a done one redirects back to the page, which says what happened. The rules are
the incidents service's: these routes parse, call one service function, and shape the page. Another agency's
incident answers the same 404 page as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import RedirectResponse, Response

from cityops.accounts.models import Agency, User
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, agency_subtree
from cityops.alerts import service as alerts
from cityops.alerts.models import FIRING, Alert
from cityops.geo.models import Subject
from cityops.i18n import catalog, fold, format_moment, translate
from cityops.incidents import attachments as files
from cityops.incidents import service
from cityops.incidents.api import CONFLICTS, FIELDS, FORBIDDEN
from cityops.incidents.models import (
    ASSIGNED,
    CLOSED,
    IN_PROGRESS,
    NEW,
    REJECTED,
    RESOLVED,
    SEVERITIES,
    STATUSES,
    Incident,
)
from cityops.notifications.models import DEAD, Delivery
from cityops.web.deps import client_ip, language, parts
from cityops.web.pages import form_csrf_ok, form_text, render, require_page

router = APIRouter(include_in_schema=False)
RECENT_DAYS = 14  # closed and rejected incidents stay on the board this long
RECENT_LIMIT = 20
INBOX_LIMIT = 50
MAX_ID = 2**31 - 1
AGENCY_ORDER = {"province": 0, "department": 1, "unit": 2, "commune": 3}
# Where a quick form may send the user back to (the inbox's assign and close buttons).
BACKS = ("/inbox",)


# --- small helpers ---------------------------------------------------------------------------------------


def _name(item: Any, lang: str) -> str:
    return str(item.name_vi if lang == "vi" else item.name_en or item.name_vi)


def _t(key: str, lang: str, **params: Any) -> str:
    return translate(f"incidents_ui.{key}", lang, **params)


def _label(prefix: str, value: str, lang: str) -> str:
    key = f"{prefix}.{value}"
    return translate(key, lang) if key in catalog(lang) else value


def _span(minutes: int, lang: str) -> str:
    """A length of time as people say it: minutes under an hour, hours under two days, then days."""
    minutes = max(minutes, 1)
    if minutes < 60:
        return _t("span.minutes", lang, n=minutes)
    if minutes < 48 * 60:
        return _t("span.hours", lang, n=minutes // 60)
    return _t("span.days", lang, n=minutes // (24 * 60))


def due_of(deadline: str | datetime | None, now: datetime, lang: str, *, open_: bool) -> dict[str, Any]:
    """The deadline as shown: "27/11/2026 14:00" and "còn 3 giờ" / "quá hạn 2 giờ" (only while open)."""
    if deadline is None:
        return {"at": "", "text": "", "overdue": False}
    moment = datetime.fromisoformat(deadline) if isinstance(deadline, str) else deadline
    seconds = (moment - now).total_seconds()
    overdue = open_ and seconds < 0
    if not open_:
        text = ""
    elif overdue:
        text = _t("due.over", lang, span=_span(int(-seconds // 60), lang))
    else:
        text = _t("due.left", lang, span=_span(int(seconds // 60), lang))
    return {"at": format_moment(moment, lang), "text": text, "overdue": overdue}


def _decorate(items: list[dict[str, Any]], now: datetime, lang: str) -> list[dict[str, Any]]:
    for item in items:
        item["due"] = due_of(item["deadline_at"], now, lang, open_=item["status"] in (NEW, ASSIGNED, IN_PROGRESS))
        item["domain_label"] = _label("incidents.domain", item["domain"], lang) if item["domain"] else ""
    return items


def _agencies(session: Session, principal: Principal, lang: str, *, seen: bool = False) -> list[dict[str, str]]:
    """The agencies a user may choose: every one for the center, their own subtree for an agency user. With
    `seen`, those whose incidents the user may see (a board filter): every one for province-wide roles too."""
    query = select(Agency)
    if not (principal.can("manage_incidents") or (seen and principal.province_wide)):
        query = query.where(Agency.id.in_(sorted(principal.agency_ids) or [0]))
    found = sorted(session.scalars(query), key=lambda a: (AGENCY_ORDER.get(a.kind, 9), fold(_name(a, lang)), a.code))
    return [{"code": a.code, "name": _name(a, lang)} for a in found]


def _not_found(request: Request, incident_id: int | str) -> Response:
    return render(request, "incidents/not_found.html", {"number": str(incident_id)[:20]}, status_code=404)


def _status_of(exc: service.IncidentError) -> int:
    if exc.code in FORBIDDEN or exc.code == "may_not_work":
        return 403
    if exc.code in CONFLICTS:
        return 409
    return 422


def _message(exc: service.IncidentError, lang: str) -> str:
    return exc.message_en if lang == "en" else exc.message_vi


# --- the board ---------------------------------------------------------------------------------------------


def _domains(session: Session, lang: str) -> list[dict[str, str]]:
    codes = {category.domain for category in service.list_categories(session) if category.domain}
    codes |= {code for code in session.scalars(select(Incident.domain).distinct()) if code}
    shown = [{"code": code, "name": _label("incidents.domain", code, lang)} for code in codes]
    return sorted(shown, key=lambda d: fold(d["name"]))


def _board_context(request: Request, principal: Principal) -> tuple[dict[str, Any], int]:
    lang = language(request)
    app_parts = parts(request)
    now = app_parts.clock()
    query = request.query_params
    filters = {
        "agency": form_text(query.get("agency"), 64),
        "domain": form_text(query.get("domain"), 32),
        "severity": form_text(query.get("severity"), 16),
        "overdue": query.get("overdue") == "1",
    }
    error, status = "", 200
    columns: dict[str, list[dict[str, Any]]] = {one: [] for one in STATUSES}
    with app_parts.db.reading() as session:
        agencies = _agencies(session, principal, lang, seen=True)
        domains = _domains(session, lang)
        counts = service.counts_by_status(session, principal)
        try:
            columns = service.board_by_status(
                session,
                principal,
                now,
                lang,
                agency_code=filters["agency"] or None,
                domain=filters["domain"] or None,
                severity=filters["severity"] or None,
                overdue=True if filters["overdue"] else None,
            )
        except service.IncidentError as exc:
            error, status = _message(exc, lang), 422
    since = now - timedelta(days=RECENT_DAYS)
    shown = []
    for one in STATUSES:
        items = columns[one]
        if one in (CLOSED, REJECTED):
            items = [item for item in items if datetime.fromisoformat(item["updated_at"]) >= since]
            items.sort(key=lambda item: item["updated_at"], reverse=True)
            items = items[:RECENT_LIMIT]
        shown.append(
            {
                "status": one,
                "title": _t(f"board.column.{one}", lang),
                "recent": one in (CLOSED, REJECTED),
                "items": _decorate(items, now, lang),
                "total": counts[one],
            }
        )
    return {
        "columns": shown,
        "filters": filters,
        "filtered": any(filters.values()),
        "agencies": agencies,
        "domains": domains,
        "severities": [{"code": s, "name": translate(f"incidents.severity.{s}", lang)} for s in SEVERITIES],
        "can_create": principal.can("handle_incidents"),
        "error": error,
        "recent_days": RECENT_DAYS,
    }, status


@router.get("/incidents")
async def board_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The board: the incidents the user may see by status, filtered by agency, domain, severity, overdue."""
    context, status = await run_in_threadpool(_board_context, request, principal)
    return render(request, "incidents/board.html", context, status_code=status)


# --- a new incident ----------------------------------------------------------------------------------------

NEW_FIELDS = ("title", "description", "category", "severity", "subject", "place_text", "agency")
# The form's field for each field the service names in an error.
FORM_FIELD = {"latitude": "place_text"}


@dataclass
class IncidentForm:
    """A form as shown: what was typed, and what is wrong with it."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    notice: str = ""


def _new_context(request: Request, principal: Principal, form: IncidentForm) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        agencies = _agencies(session, principal, lang)
        names = {a.id: _name(a, lang) for a in session.scalars(select(Agency))}
        categories = [
            {
                "code": c.code,
                "name": _name(c, lang),
                "domain": _label("incidents.domain", c.domain, lang) if c.domain else "",
                "agency": names.get(c.agency_id or 0, ""),
                "hours": [
                    {
                        "severity": translate(f"incidents.severity.{s}", lang),
                        "hours": service.hours_for(c, s),
                    }
                    for s in SEVERITIES
                ],
            }
            for c in service.list_categories(session)
        ]
        subjects = list(session.scalars(select(Subject).where(Subject.kind.in_(("province", "commune")))))
    subjects.sort(key=lambda s: (s.kind != "province", fold(_name(s, lang)), s.code))
    return {
        "form": form,
        "agencies": agencies,
        "categories": categories,
        "subjects": [{"code": s.code, "name": _name(s, lang)} for s in subjects],
        "severities": [{"code": s, "name": translate(f"incidents.severity.{s}", lang)} for s in SEVERITIES],
        "center": principal.can("manage_incidents"),
    }


def _own_agency_code(request: Request, principal: Principal) -> str:
    if principal.can("manage_incidents") or principal.agency_id is None:
        return ""
    with parts(request).db.reading() as session:
        return session.scalar(select(Agency.code).where(Agency.id == principal.agency_id)) or ""


@router.get("/incidents/new")
async def new_page(request: Request, principal: Principal = Depends(require_page("handle_incidents"))) -> Response:
    """The form that opens an incident by hand."""
    values = dict.fromkeys(NEW_FIELDS, "")
    values.update(severity="medium", agency=await run_in_threadpool(_own_agency_code, request, principal))
    context = await run_in_threadpool(_new_context, request, principal, IncidentForm(values))
    return render(request, "incidents/new.html", context)


@router.post("/incidents/new")
async def create_page(request: Request, principal: Principal = Depends(require_page("handle_incidents"))) -> Response:
    """Open the incident; its page, or the form again with what is wrong and what was typed."""
    app_parts = parts(request)
    lang = language(request)
    raw = await request.form()
    values = {name: form_text(raw.get(name), 20_000 if name == "description" else 255) for name in NEW_FIELDS}
    form = IncidentForm(values)

    async def again(status: int) -> Response:
        context = await run_in_threadpool(_new_context, request, principal, form)
        return render(request, "incidents/new.html", context, status_code=status)

    if not form_csrf_ok(request, raw):
        form.notice = translate("login.csrf", lang)
        return await again(403)
    if not values["title"]:
        form.errors["title"] = translate("incidents.error.title_required", lang)
    if values["severity"] not in SEVERITIES:
        form.errors["severity"] = _t("form.choose_severity", lang)
    if form.errors:
        return await again(422)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> int:
        with app_parts.db.writing() as session:
            return service.create_incident(
                session,
                principal,
                actor,
                moment,
                title=values["title"],
                description=values["description"],
                category_code=values["category"] or None,
                severity=values["severity"],
                agency_code=values["agency"] or None,
                subject_code=values["subject"] or None,
                place_text=values["place_text"],
            ).id

    try:
        number = await run_in_threadpool(run)
    except service.IncidentError as exc:
        where = "agency" if exc.code == "may_not_create" else FIELDS.get(exc.code, "")
        where = FORM_FIELD.get(where, where)
        if where in NEW_FIELDS:
            form.errors[where] = _message(exc, lang)
        else:
            form.notice = _message(exc, lang)
        return await again(422)
    return RedirectResponse(f"/incidents/{number}?done=created", status_code=303)


# --- one incident ------------------------------------------------------------------------------------------


def _trail_text(event: dict[str, Any], lang: str, agencies: dict[str, str], tasks: dict[int, str]) -> str:
    """What one entry of the trail did, in the reader's language."""
    action, details = event["action"], event["details"] or {}

    def status(code: Any) -> str:
        return _label("incidents.status", str(code), lang)

    def agency(code: Any) -> str:
        return agencies.get(str(code), str(code or "—"))

    if action == "created":
        return _t(
            "trail.created",
            lang,
            source=_label("incidents.source", str(details.get("source", "")), lang),
            severity=_label("incidents.severity", str(details.get("severity", "")), lang),
            agency=agency(details.get("agency")),
            deadline=format_moment(details.get("deadline_at"), lang),
        )
    if action == "assigned":
        names = ", ".join(details.get("assignees") or []) or "—"
        return _t("trail.assigned", lang, agency=agency(details.get("agency")), assignees=names)
    if action in ("status", "rejected", "reopened"):
        text = _t("trail.moved", lang, before=status(details.get("from")), after=status(details.get("to")))
        if details.get("reason"):
            text += " — " + _t("trail.reason", lang, reason=details["reason"])
        return text
    if action == "comment":
        return str(details.get("excerpt", ""))
    if action in ("task_done", "task_undone"):
        return tasks.get(int(details.get("task_id") or 0), str(details.get("text", "")))
    if action == "attachment":
        return str(details.get("filename", ""))
    if action == "linked":
        return _t("trail.linked", lang, number=details.get("to", "?"))
    if action == "merged":
        return _t("trail.merged", lang, number=details.get("into", "?"))
    if action == "merged_from":
        return _t("trail.merged_from", lang, number=details.get("duplicate", "?"), title=details.get("title", ""))
    if action == "escalated":
        return _t("trail.escalated", lang, stage=details.get("stage", "?"))
    if action == "updated":
        parts_: list[str] = []
        if "title" in details:
            parts_.append(_t("trail.updated_title", lang, title=details["title"][-1]))
        if "description" in details:
            parts_.append(_t("trail.updated_description", lang))
        if "severity" in details:
            parts_.append(
                _t(
                    "trail.updated_severity",
                    lang,
                    before=_label("incidents.severity", details["severity"][0], lang),
                    after=_label("incidents.severity", details["severity"][-1], lang),
                )
            )
        if "deadline_at" in details:
            parts_.append(_t("trail.updated_deadline", lang, deadline=format_moment(details["deadline_at"][-1], lang)))
        return "; ".join(parts_)
    return ""


def _candidates(session: Session, agency_code: str | None) -> list[str]:
    """The users an incident of this agency may be given to: its subtree's active officers and handlers."""
    agency_id = session.scalar(select(Agency.id).where(Agency.code == (agency_code or "")))
    if agency_id is None:
        return []
    return list(
        session.scalars(
            select(User.username)
            .where(
                User.agency_id.in_(sorted(agency_subtree(session, agency_id))),
                User.role.in_(("officer", "handler")),
                User.is_active.is_(True),
            )
            .order_by(User.username)
        )
    )


def _detail_context(request: Request, principal: Principal, incident_id: int) -> dict[str, Any] | None:
    lang = language(request)
    app_parts = parts(request)
    now = app_parts.clock()
    if not 0 < incident_id <= MAX_ID:
        return None
    with app_parts.db.reading() as session:
        try:
            item = service.detail(session, principal, now, incident_id, lang)
        except service.IncidentError:
            return None
        names = {a.code: _name(a, lang) for a in session.scalars(select(Agency))}
        choices = _agencies(session, principal, lang) if item["can"]["assign"] else []
        candidates = _candidates(session, item["agency"]) if item["can"]["assign"] else []
        alert_title = ""
        if item["alert_id"] is not None:
            alert = session.get(Alert, item["alert_id"])
            if alert is not None:
                alert_title = (alert.title_en if lang == "en" else "") or alert.title_vi or alert.key
    _decorate([item], now, lang)
    tasks = {task["id"]: task["text"] for task in item["tasks"]}
    for event in item["events"]:
        event["text"] = _trail_text(event, lang, names, tasks)
    for task in item["tasks"]:
        task["done_moment"] = format_moment(task["done_at"], lang) if task["done_at"] else ""
    moves = item["can"]["moves"]
    return {
        "item": item,
        "alert_title": alert_title,
        "agencies": choices,
        "candidates": sorted(set(candidates) | set(item["assignees"])),
        "moves": moves,
        "open": item["status"] in (NEW, ASSIGNED, IN_PROGRESS),
        "errors": {},
        "typed": {},
        "notice": _t(f"done.{request.query_params.get('done')}", lang)
        if f"incidents_ui.done.{request.query_params.get('done')}" in catalog(lang)
        else "",
        "error": "",
        "max_mb": max(1, app_parts.settings.max_attachment_bytes // 1_000_000),
    }


@router.get("/incidents/{incident_id:int}")
async def incident_page(
    request: Request, incident_id: int, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """One incident with everything: header, checklist, comments, files, links, actions, trail."""
    context = await run_in_threadpool(_detail_context, request, principal, incident_id)
    if context is None:
        return _not_found(request, incident_id)
    return render(request, "incidents/detail.html", context)


def _back(raw: FormData, principal: Principal) -> str:
    back = form_text(raw.get("back"), 20)
    return back if back in BACKS and principal.can("handle_alerts") else ""


async def _refused(
    request: Request,
    principal: Principal,
    incident_id: int,
    raw: FormData,
    form_id: str,
    message: str,
    status: int,
) -> Response:
    """The page the form came from again: the message at the form that was sent, what was typed kept."""
    typed = {name: form_text(value, 20_000) for name, value in raw.multi_items() if isinstance(value, str)}
    typed.pop("csrf_token", None)
    if _back(raw, principal):
        inbox = await run_in_threadpool(_inbox_context, request, principal)
        inbox.update(error=message, error_incident=incident_id, typed=typed)
        return render(request, "incidents/inbox.html", inbox, status_code=status)
    context = await run_in_threadpool(_detail_context, request, principal, incident_id)
    if context is None:
        return _not_found(request, incident_id)
    item = context["item"]
    shown = {"comment", "attachment", "link", "merge"} if item["can"]["work"] else set()
    shown |= {"assign"} if item["can"]["assign"] else set()
    shown |= {f"status-{move}" for move in context["moves"]}
    if item["can"]["work"] and context["open"]:
        shown |= {f"task-{task['id']}" for task in item["tasks"]}
    if form_id in shown:
        context.update(errors={form_id: message}, typed=typed)
    else:  # the form is not on the page (any more): the message at the top
        context.update(error=message, typed=typed)
    return render(request, "incidents/detail.html", context, status_code=status)


async def _act(
    request: Request,
    principal: Principal,
    incident_id: int,
    form_id: str,
    change: Callable[[Session, Actor, datetime, FormData], Any],
    *,
    done: str,
    anchor: str = "",
    raw: FormData | None = None,
    check: Callable[[FormData, str], str] | None = None,
    undo: Callable[[], None] | None = None,
) -> Response:
    """Check the token, make one change in a writing transaction; back to the page, or the form again."""
    app_parts = parts(request)
    lang = language(request)
    if raw is None:
        raw = await request.form()
    if not 0 < incident_id <= MAX_ID:
        return _not_found(request, incident_id)
    if not form_csrf_ok(request, raw):
        return await _refused(request, principal, incident_id, raw, form_id, translate("login.csrf", lang), 403)
    if check is not None:
        problem = check(raw, lang)
        if problem:
            return await _refused(request, principal, incident_id, raw, form_id, problem, 422)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> None:
        try:
            with app_parts.db.writing() as session:
                change(session, actor, moment, raw)
        except Exception:
            if undo is not None:
                undo()  # what the change left outside the database (a stored file)
            raise

    try:
        await run_in_threadpool(run)
    except service.IncidentError as exc:
        if exc.code == "not_found":
            return _not_found(request, incident_id)
        return await _refused(request, principal, incident_id, raw, form_id, _message(exc, lang), _status_of(exc))
    back = _back(raw, principal)
    if back:
        return RedirectResponse(f"{back}?done={done}&incident={incident_id}", status_code=303)
    return RedirectResponse(f"/incidents/{incident_id}?done={done}{anchor}", status_code=303)


@router.post("/incidents/{incident_id:int}/status")
async def status_action(
    request: Request, incident_id: int, principal: Principal = Depends(require_page("handle_incidents"))
) -> Response:
    """Start, resolve (with a resolution), close, reopen or reject (with a required reason)."""
    raw = await request.form()
    wanted = form_text(raw.get("status"), 20)

    def check(form: FormData, lang: str) -> str:
        if wanted == REJECTED and not form_text(form.get("reason"), 20_000):
            return translate("incidents.error.reason_required", lang)
        return ""

    def change(session: Session, actor: Actor, moment: datetime, form: FormData) -> None:
        service.change_status(
            session, principal, actor, moment, incident_id, status=wanted, reason=form_text(form.get("reason"), 20_000)
        )

    done = wanted if wanted in (IN_PROGRESS, RESOLVED, CLOSED, REJECTED, service.REOPENED) else "status"
    return await _act(request, principal, incident_id, f"status-{wanted}", change, done=done, raw=raw, check=check)


@router.post("/incidents/{incident_id:int}/assign")
async def assign_action(
    request: Request, incident_id: int, principal: Principal = Depends(require_page("handle_incidents"))
) -> Response:
    """Give the incident to an agency and to assignees of that agency (replacing the assignees)."""

    def change(session: Session, actor: Actor, moment: datetime, form: FormData) -> None:
        names = [form_text(value, 64) for value in form.getlist("assignees")]
        names += [name.strip()[:64] for name in form_text(form.get("others"), 2000).replace(";", ",").split(",")]
        service.assign(
            session,
            principal,
            actor,
            moment,
            incident_id,
            agency_code=form_text(form.get("agency"), 64) or None,
            usernames=[name for name in names if name][:50],
        )

    return await _act(request, principal, incident_id, "assign", change, done="assigned")


@router.post("/incidents/{incident_id:int}/tasks/{task_id:int}")
async def task_action(
    request: Request,
    incident_id: int,
    task_id: int,
    principal: Principal = Depends(require_page("handle_incidents")),
) -> Response:
    """Tick (done=1) or untick (done=0) one step of the checklist."""

    def change(session: Session, actor: Actor, moment: datetime, form: FormData) -> None:
        if not 0 < task_id < 2**63:
            raise service.IncidentError("task_not_found", task=task_id)
        service.set_task(session, principal, actor, moment, incident_id, task_id, done=form.get("done") == "1")

    return await _act(
        request, principal, incident_id, f"task-{task_id}", change, done="task", anchor=f"#task-{task_id}"
    )


@router.post("/incidents/{incident_id:int}/comments")
async def comment_action(
    request: Request, incident_id: int, principal: Principal = Depends(require_page("handle_incidents"))
) -> Response:
    """Add a comment."""

    def check(form: FormData, lang: str) -> str:
        return "" if form_text(form.get("body"), 20_000) else translate("incidents.error.comment_empty", lang)

    def change(session: Session, actor: Actor, moment: datetime, form: FormData) -> None:
        service.add_comment(session, principal, actor, moment, incident_id, body=form_text(form.get("body"), 20_000))

    return await _act(
        request, principal, incident_id, "comment", change, done="comment", anchor="#comments", check=check
    )


def _number(text: str) -> int | None:
    text = text.strip().lstrip("#")
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) < 11 and 0 < int(text) <= MAX_ID else None


@router.post("/incidents/{incident_id:int}/link")
async def link_action(
    request: Request, incident_id: int, principal: Principal = Depends(require_page("handle_incidents"))
) -> Response:
    """Link this incident to another one (number) as related."""

    def check(form: FormData, lang: str) -> str:
        return "" if _number(form_text(form.get("to"), 20)) else _t("form.number", lang)

    def change(session: Session, actor: Actor, moment: datetime, form: FormData) -> None:
        service.link(session, principal, actor, moment, incident_id, to_id=_number(form_text(form.get("to"), 20)) or 0)

    return await _act(request, principal, incident_id, "link", change, done="linked", anchor="#links", check=check)


@router.post("/incidents/{incident_id:int}/merge")
async def merge_action(
    request: Request, incident_id: int, principal: Principal = Depends(require_page("handle_incidents"))
) -> Response:
    """Merge this incident (a duplicate) into another one (number)."""

    def check(form: FormData, lang: str) -> str:
        return "" if _number(form_text(form.get("into"), 20)) else _t("form.number", lang)

    def change(session: Session, actor: Actor, moment: datetime, form: FormData) -> None:
        into = _number(form_text(form.get("into"), 20)) or 0
        service.merge(session, principal, actor, moment, incident_id, into_id=into)

    return await _act(request, principal, incident_id, "merge", change, done="merged", anchor="#links", check=check)


@router.post("/incidents/{incident_id:int}/attachments")
async def attach_action(
    request: Request, incident_id: int, principal: Principal = Depends(require_page("handle_incidents"))
) -> Response:
    """Attach one file (the form's `file`), judged by its content; nothing is stored when refused."""
    app_parts = parts(request)
    limit = app_parts.settings.max_attachment_bytes
    content, filename = b"", ""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=5) as form:
            upload = form.get("file")
            if isinstance(upload, UploadFile):
                content = await upload.read(limit + 1)
                filename = upload.filename or ""
            raw = FormData([(name, value) for name, value in form.multi_items() if isinstance(value, str)])
    else:
        raw = await request.form()
    directory = app_parts.settings.data_dir / "attachments"

    def check(form: FormData, lang: str) -> str:
        return "" if filename else translate("incidents.error.attachment_missing", lang)

    stored: list[str] = []

    def change(session: Session, actor: Actor, moment: datetime, form: FormData) -> None:
        attachment = service.add_attachment(
            session,
            principal,
            actor,
            moment,
            incident_id,
            filename=filename,
            content=content,
            directory=directory,
            max_bytes=limit,
        )
        stored.append(attachment.storage_key)

    def undo() -> None:
        for key in stored:
            files.remove(directory, key)

    return await _act(
        request,
        principal,
        incident_id,
        "attachment",
        change,
        done="attachment",
        anchor="#attachments",
        raw=raw,
        check=check,
        undo=undo,
    )


# --- my work -----------------------------------------------------------------------------------------------


def _my_work_context(request: Request, principal: Principal) -> dict[str, Any]:
    lang = language(request)
    app_parts = parts(request)
    now = app_parts.clock()
    with app_parts.db.reading() as session:
        items = service.my_work(session, principal, now, lang)
        groups = service.overdue_by_agency(session, principal, now, lang) if principal.agency_ids else []
        agency = session.get(Agency, principal.agency_id) if principal.agency_id else None
    _decorate(items, now, lang)
    items.sort(key=lambda item: (not item["due"]["overdue"], item["deadline_at"] or "9999", item["id"]))
    for group in groups:
        _decorate(group["items"], now, lang)
    return {
        "items": items,
        "mine": sum(1 for item in items if item["mine"]),
        "groups": groups,
        "agency_name": _name(agency, lang) if agency else "",
        "notice": _notice(request, lang),
        "error": "",
        "error_incident": 0,
        "typed": {},
    }


def _notice(request: Request, lang: str) -> str:
    done = request.query_params.get("done", "")
    number = request.query_params.get("incident", "")
    if f"incidents_ui.done.{done}" not in catalog(lang) or not (number.isascii() and number.isdigit()):
        return ""
    return _t("done.numbered", lang, number=number[:10], what=_t(f"done.{done}", lang))


@router.get("/my-work")
async def my_work_page(request: Request, principal: Principal = Depends(require_page("handle_incidents"))) -> Response:
    """An agency handler's open incidents (theirs and their agency's), overdue first; the agency's overdue list."""
    return render(request, "incidents/my_work.html", await run_in_threadpool(_my_work_context, request, principal))


# --- the operator's inbox ----------------------------------------------------------------------------------


def _inbox_context(request: Request, principal: Principal) -> dict[str, Any]:
    lang = language(request)
    app_parts = parts(request)
    now = app_parts.clock()
    with app_parts.db.reading() as session:
        waiting = [
            alert
            for alert in session.scalars(
                select(Alert).where(
                    Alert.state == FIRING,
                    Alert.acknowledged_at.is_(None),
                    or_(Alert.silenced_until.is_(None), Alert.silenced_until <= now),
                )
            )
            if alerts.may_see(principal, alert)
        ]
        waiting.sort(key=lambda a: (alerts.SEVERITY_RANK.get(a.severity, 9), -(a.fired_at or a.started_at).timestamp()))
        agency_names = {
            a.id: _name(a, lang)
            for a in session.scalars(select(Agency).where(Agency.id.in_({a.agency_id or 0 for a in waiting} or {0})))
        }
        firing = [
            {
                "id": a.id,
                "title": (a.title_en if lang == "en" else "") or a.title_vi or a.key,
                "severity": a.severity,
                "severity_label": _label("incidents_ui.alert_severity", a.severity, lang),
                "since": format_moment(a.fired_at or a.started_at, lang),
                "agency_name": agency_names.get(a.agency_id or 0, ""),
                "incident_id": a.incident_id,
            }
            for a in waiting[:INBOX_LIMIT]
        ]

        def listed(**filters: Any) -> list[dict[str, Any]]:
            found = service.board(session, principal, now, limit=INBOX_LIMIT, **filters)
            return _decorate(service.summaries(session, found, now, lang), now, lang)

        unassigned = listed(status=NEW)
        resolved = listed(status=RESOLVED)
        overdue = listed(overdue=True)
        dead = int(session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == DEAD)) or 0)
        agencies = _agencies(session, principal, lang) if unassigned else []
    return {
        "firing": firing,
        "firing_more": max(0, len(waiting) - INBOX_LIMIT),
        "unassigned": unassigned,
        "resolved": resolved,
        "overdue": overdue,
        "dead": dead,
        "can_see_deliveries": principal.can("manage_notifications"),
        "agencies": agencies,
        "notice": _notice(request, lang),
        "error": "",
        "error_incident": 0,
        "typed": {},
    }


@router.get("/inbox")
async def inbox_page(request: Request, principal: Principal = Depends(require_page("handle_alerts"))) -> Response:
    """What needs a decision now: firing alerts nobody took, new incidents, resolved ones to close, overdue ones,
    dead notification deliveries."""
    return render(request, "incidents/inbox.html", await run_in_threadpool(_inbox_context, request, principal))
