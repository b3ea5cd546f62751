"""Feed pages: the list of feeds, one feed with its settings and run log, and the form that creates or edits one.

Everything works without JavaScript: plain forms with a CSRF token, errors next to their field in the reader's
language, a redirect on success. A secret is never written into a page: a set one shows as "set", its input stays
empty, and an empty input keeps the stored value.
"""

from __future__ import annotations

import json
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
from cityops.accounts.service import AccountError, Actor
from cityops.catalog.models import Domain, Indicator
from cityops.connectors import kinds
from cityops.feeds import service
from cityops.feeds.api import run_now
from cityops.feeds.cadence import CadenceError, parse_cadence
from cityops.feeds.models import COVERAGES, Feed
from cityops.feeds.schemas import ERROR_FIELDS, MAX_SETTINGS_DEPTH
from cityops.geo.models import Subject
from cityops.i18n import catalog, fold, translate
from cityops.web.deps import client_ip, language, parts
from cityops.web.pages import form_csrf_ok, form_text, render, require_page
from cityops.web.problems import Problem

router = APIRouter(include_in_schema=False)
RUN_LOG_SIZE = 50
MAX_SETTINGS_TEXT = 20_000
CADENCE_KINDS = ("none", "interval", "daily", "monthly", "quarterly", "yearly", "school_year", "text")
CADENCE_FIELDS = (
    "cadence_every",
    "cadence_unit",
    "cadence_time",
    "cadence_month_day",
    "cadence_quarter_day",
    "cadence_year_date",
    "cadence_school_date",
    "cadence_text",
)
# The field each kind of cadence needs filled in.
CADENCE_FIELD_OF = {
    "interval": "cadence_every",
    "daily": "cadence_time",
    "monthly": "cadence_month_day",
    "quarterly": "cadence_quarter_day",
    "yearly": "cadence_year_date",
    "school_year": "cadence_school_date",
    "text": "cadence_text",
}
_TIME = re.compile(r"([01]?[0-9]|2[0-3])[:h]([0-5][0-9])", re.ASCII)
_DAY_MONTH = re.compile(r"([0-3]?[0-9])/([01]?[0-9])", re.ASCII)
_INTEGER = re.compile(r"[0-9]{1,7}", re.ASCII)


def _label(prefix: str, value: str, lang: str) -> str:
    """A translated label of a value (a kind, a status …), or the value itself when it has none."""
    key = f"{prefix}.{value}"
    return translate(key, lang) if key in catalog(lang) else value


def _name(item: Any, lang: str) -> str:
    return str(item.name_vi if lang == "vi" else item.name_en or item.name_vi)


def _not_found() -> HTTPException:
    return HTTPException(404)


# --- the list ---------------------------------------------------------------------------------------------


def _list_context(request: Request, principal: Principal) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        feeds = service.visible_feeds(session, principal)
        last = service.last_runs(session, [feed.id for feed in feeds])
        rows = [service.feed_out(session, feed, lang, last.get(feed.id)) for feed in feeds]
    for row in rows:
        row["kind_label"] = _label("feeds.kind", row["kind"], lang)
        if row["last_run"]:
            row["last_run"]["status_label"] = _label("feeds.status", row["last_run"]["status"], lang)
    return {"feeds": rows, "can_manage": principal.can("manage_feeds")}


@router.get("/feeds")
async def feeds_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The feeds the user may see: agency, kind, cadence in words, the last run, links to health and upload."""
    return render(request, "feeds.html", await run_in_threadpool(_list_context, request, principal))


# --- the form: new and edit ---------------------------------------------------------------------------------


@dataclass
class FeedForm:
    """The form as shown: its entries as text, and what is wrong with them."""

    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[tuple[str, str, str]] = field(default_factory=list)  # (field id, label, message)
    notice: str = ""
    retype_secrets: bool = False

    def add(self, field_id: str, message: str, lang: str) -> None:
        self.errors.setdefault(field_id, []).append(message)
        self.summary.append((field_id, _field_label(field_id, lang), message))


def _field_label(field_id: str, lang: str) -> str:
    if field_id.startswith("secret_"):
        return translate("feeds.form.secret_label", lang, name=field_id.removeprefix("secret_"))
    return translate(f"feeds.form.{field_id}", lang)


def _cadence_values(text: str) -> dict[str, str]:
    """The cadence fields that show a stored cadence."""
    values = dict.fromkeys(CADENCE_FIELDS, "")
    values.update(cadence_kind="none", cadence_unit="minutes")
    if not text:
        return values
    try:
        cadence = parse_cadence(text)
    except CadenceError:
        values.update(cadence_kind="text", cadence_text=text)
        return values
    if cadence.kind == "interval":
        hours = cadence.seconds % 3600 == 0
        values.update(
            cadence_kind="interval",
            cadence_every=str(cadence.seconds // (3600 if hours else 60)),
            cadence_unit="hours" if hours else "minutes",
        )
    elif cadence.kind == "day":
        values.update(cadence_kind="daily", cadence_time=f"{cadence.hour:02d}:{cadence.minute:02d}")
    elif cadence.kind == "month":
        values.update(cadence_kind="monthly", cadence_month_day=str(cadence.day))
    elif cadence.kind == "quarter":
        values.update(cadence_kind="quarterly", cadence_quarter_day=str(cadence.day))
    elif cadence.kind == "year":
        values.update(cadence_kind="yearly", cadence_year_date=f"{cadence.day:02d}/{cadence.month:02d}")
    else:
        values.update(cadence_kind="school_year", cadence_school_date=f"{cadence.day:02d}/{cadence.month:02d}")
    return values


def _blank_values(kind: str) -> dict[str, Any]:
    return {
        "code": "",
        "name": "",
        "description": "",
        "agency": "",
        "kind": kind,
        "indicators": [],
        "coverage": "province",
        "subjects": [],
        "grace_minutes": "0",
        "poll_seconds": "0",
        "settings": "{}",
        **_cadence_values(""),
    }


def _values_of(session: Session, feed: Feed) -> dict[str, Any]:
    agency = session.scalar(select(Agency.code).where(Agency.id == feed.agency_id)) or ""
    return {
        "code": feed.code,
        "name": feed.name,
        "description": feed.description,
        "agency": agency,
        "kind": feed.kind,
        "indicators": service.feed_indicator_codes(session, feed.id),
        "coverage": feed.coverage,
        "subjects": list(feed.subject_codes or []),
        "grace_minutes": str(feed.grace_minutes),
        "poll_seconds": str(feed.poll_seconds),
        # The plain settings only: the secrets are kept apart, encrypted, and never written into the page.
        "settings": json.dumps(feed.settings or {}, ensure_ascii=False, indent=2),
        **_cadence_values(feed.cadence),
    }


def _choices(session: Session, lang: str) -> dict[str, Any]:
    """What the form's selects offer: agencies, indicators by subsystem, the province and its communes."""
    agency_order = {"province": 0, "department": 1, "unit": 2, "commune": 3}
    agencies = sorted(
        session.scalars(select(Agency)), key=lambda a: (agency_order.get(a.kind, 9), fold(_name(a, lang)), a.code)
    )
    domains = list(session.scalars(select(Domain).order_by(Domain.sort_order, Domain.code)))
    indicators = list(session.scalars(select(Indicator).order_by(Indicator.code)))
    groups = [
        {
            "name": _name(domain, lang),
            "items": [
                {"code": i.code, "name": _name(i, lang)} for i in indicators if i.code.startswith(f"{domain.code}.")
            ],
        }
        for domain in domains
    ]
    subjects = list(session.scalars(select(Subject).where(Subject.kind.in_(("province", "commune")))))
    subjects.sort(key=lambda s: (s.kind != "province", fold(_name(s, lang)), s.code))
    return {
        "agencies": [{"code": a.code, "name": _name(a, lang)} for a in agencies],
        "indicator_groups": [group for group in groups if group["items"]],
        "subjects": [{"code": s.code, "name": _name(s, lang)} for s in subjects],
    }


def _form_context(
    request: Request, form: FeedForm, *, feed_code: str = "", secrets_set: list[str] | None = None
) -> dict[str, Any]:
    lang = language(request)
    kind = form.values["kind"]
    with parts(request).db.reading() as session:
        choices = _choices(session, lang)
    return {
        "form": form,
        "editing": bool(feed_code),
        "feed_code": feed_code,
        "kinds": [{"code": code, "name": _label("feeds.kind", code, lang)} for code in kinds()],
        "kind_label": _label("feeds.kind", kind, lang),
        "scheduled": service.is_scheduled(kind),
        "secret_names": service.secret_fields_of(kind),
        "secrets_set": secrets_set or [],
        "coverages": COVERAGES,
        "cadence_kinds": CADENCE_KINDS,
        **choices,
    }


def _integer(form: FeedForm, field_id: str, text: str, lang: str) -> int:
    if not text:
        return 0
    if not _INTEGER.fullmatch(text):
        form.add(field_id, translate("feeds.form.not_integer", lang, text=text[:20]), lang)
        return 0
    return int(text)


def _compose_cadence(form: FeedForm, values: dict[str, Any], lang: str) -> str:
    """The cadence text the chosen kind and its fields say; an error on the cadence when they say nothing."""
    kind = values["cadence_kind"]

    def wrong(message_id: str, **params: Any) -> str:
        form.add("cadence", translate(message_id, lang, **params), lang)
        return ""

    if kind == "none":
        return ""
    own_field = CADENCE_FIELD_OF.get(kind)
    if own_field and not values[own_field]:
        return wrong("feeds.form.cadence_value_empty", choice=translate(f"feeds.form.cadence.{kind}", lang))
    if kind == "interval":
        every, unit = values["cadence_every"], values["cadence_unit"]
        if not _INTEGER.fullmatch(every) or int(every) == 0 or unit not in ("minutes", "hours"):
            return wrong("feeds.form.cadence_every")
        text = f"every {int(every)} {unit}"
    elif kind == "daily":
        match = _TIME.fullmatch(values["cadence_time"])
        if not match:
            return wrong("feeds.form.cadence_time", text=values["cadence_time"][:10])
        text = f"daily by {int(match[1]):02d}:{match[2]}"
    elif kind in ("monthly", "quarterly"):
        day = values["cadence_month_day" if kind == "monthly" else "cadence_quarter_day"]
        if not _INTEGER.fullmatch(day) or not 1 <= int(day) <= 31:
            return wrong("feeds.form.cadence_day", text=day[:10])
        text = f"{kind} by day {int(day)}"
    elif kind in ("yearly", "school_year"):
        date_text = values["cadence_year_date" if kind == "yearly" else "cadence_school_date"]
        match = _DAY_MONTH.fullmatch(date_text)
        if not match:
            return wrong("feeds.form.cadence_date", text=date_text[:10])
        prefix = "yearly" if kind == "yearly" else "each school year"
        text = f"{prefix} by {int(match[1]):02d}/{int(match[2]):02d}"
    elif kind == "text":
        text = values["cadence_text"]
    else:
        return wrong("feeds.form.cadence_kind")
    try:
        return parse_cadence(text).text
    except CadenceError:
        if kind == "interval":
            return wrong("feeds.form.cadence_interval")
        if kind in ("yearly", "school_year"):
            return wrong("feeds.form.cadence_date", text=text.rsplit(" ", 1)[-1])
        return wrong("feeds.error.invalid_cadence", cadence=text[:60])


@dataclass
class Entered:
    """The form's entries, read and checked: what the service is asked to store."""

    code: str = ""
    agency: str = ""
    name: str = ""
    description: str = ""
    indicators: list[str] = field(default_factory=list)
    coverage: str = "province"
    subjects: list[str] = field(default_factory=list)
    cadence: str = ""
    grace_minutes: int = 0
    poll_seconds: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    secrets_typed: bool = False


def _no_nul(value: Any, depth: int = 0) -> bool:
    if depth > MAX_SETTINGS_DEPTH:
        return False
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all("\x00" not in str(key) and _no_nul(item, depth + 1) for key, item in value.items())
    if isinstance(value, list):
        return all(_no_nul(item, depth + 1) for item in value)
    return True


def _read_form(raw: FormData, kind: str, lang: str, *, editing: bool) -> tuple[Entered, FeedForm]:
    """Read the posted form; the form as it came back, with every entry that cannot be used."""
    text = {name: form_text(raw.get(name), 255) for name in ("code", "agency", "name", "grace_minutes", "poll_seconds")}
    values: dict[str, Any] = {
        **_blank_values(kind),
        **text,
        "description": form_text(raw.get("description"), 5000),
        "indicators": [form_text(v, 80) for v in raw.getlist("indicators") if form_text(v, 80)][:500],
        "coverage": form_text(raw.get("coverage"), 16) or "province",
        "subjects": [form_text(v, 40) for v in raw.getlist("subjects") if form_text(v, 40)][:5000],
        "settings": raw.get("settings") if isinstance(raw.get("settings"), str) else "",
        "cadence_kind": form_text(raw.get("cadence_kind"), 20) or "none",
        **{name: form_text(raw.get(name), 64) for name in CADENCE_FIELDS},
    }
    values["cadence_unit"] = values["cadence_unit"] or "minutes"
    shown = FeedForm(values=values)
    entered = Entered(
        code=values["code"],
        agency=values["agency"],
        name=values["name"],
        description=values["description"],
        indicators=values["indicators"],
        coverage=values["coverage"],
        subjects=values["subjects"],
    )
    if not editing:
        if not entered.code:
            shown.add("code", translate("feeds.form.required", lang), lang)
        if not entered.agency:
            shown.add("agency", translate("feeds.form.required", lang), lang)
    entered.cadence = _compose_cadence(shown, values, lang)
    entered.grace_minutes = _integer(shown, "grace_minutes", values["grace_minutes"], lang)
    entered.poll_seconds = _integer(shown, "poll_seconds", values["poll_seconds"], lang)
    settings_text = values["settings"].strip()
    if len(settings_text) > MAX_SETTINGS_TEXT:
        shown.add("settings", translate("feeds.form.settings_too_long", lang, limit=MAX_SETTINGS_TEXT), lang)
    elif settings_text:
        try:
            settings = json.loads(settings_text)
        except ValueError as exc:
            where = {"line": getattr(exc, "lineno", 1), "column": getattr(exc, "colno", 1)}
            shown.add("settings", translate("feeds.form.settings_json", lang, **where), lang)
        else:
            if not isinstance(settings, dict):
                shown.add("settings", translate("feeds.form.settings_object", lang), lang)
            elif not _no_nul(settings):
                shown.add("settings", translate("feeds.form.settings_nul", lang), lang)
            else:
                entered.settings = settings
    for name in service.secret_fields_of(kind):
        typed = raw.get(f"secret_{name}")
        if isinstance(typed, str) and typed:
            if "\x00" in typed or len(typed) > 4096:
                shown.add(f"secret_{name}", translate("feeds.form.secret_bad", lang), lang)
                continue
            entered.settings[name] = typed
            entered.secrets_typed = True
    return entered, shown


def _service_error(shown: FeedForm, exc: service.FeedError | AccountError, lang: str, secrets: list[str]) -> None:
    """Show a refusal of the service next to the field it is about."""
    if isinstance(exc, AccountError):
        shown.add("agency", translate("feeds.form.unknown_agency", lang, agency=shown.values["agency"][:64]), lang)
        return
    message = exc.message_vi if lang == "vi" else exc.message_en
    field_id = ERROR_FIELDS.get(exc.code, "")
    if field_id == "settings" and str(exc.params.get("field", "")) in secrets:
        field_id = f"secret_{exc.params['field']}"
    if field_id:
        shown.add(field_id, message, lang)
    else:
        shown.notice = message


def _kind_asked(request: Request) -> str:
    asked = form_text(request.query_params.get("kind"), 32)
    return asked if asked in kinds() else "push"


@router.get("/feeds/new")
async def new_feed_page(request: Request, principal: Principal = Depends(require_page("manage_feeds"))) -> Response:
    """The form that creates a feed (admins, operators), for the kind chosen at its top."""
    form = FeedForm(values=_blank_values(_kind_asked(request)))
    return render(request, "feed_form.html", await run_in_threadpool(_form_context, request, form))


@router.post("/feeds/new")
async def create_feed(request: Request, principal: Principal = Depends(require_page("manage_feeds"))) -> Response:
    """Create the feed the form describes; the form again, with what is wrong, when it cannot be created."""
    app_parts = parts(request)
    lang = language(request)
    raw = await request.form()
    kind = form_text(raw.get("kind"), 32)
    kind = kind if kind in kinds() else "push"
    entered, shown = _read_form(raw, kind, lang, editing=False)
    shown.retype_secrets = entered.secrets_typed

    async def again(status: int) -> Response:
        context = await run_in_threadpool(_form_context, request, shown)
        return render(request, "feed_form.html", context, status_code=status)

    if not form_csrf_ok(request, raw):
        shown.errors, shown.summary = {}, []
        shown.notice = translate("login.csrf", lang)
        return await again(403)
    if shown.errors:
        return await again(422)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> str:
        with app_parts.db.writing() as session:
            feed = service.create_feed(
                session,
                actor,
                moment,
                code=entered.code,
                agency_code=entered.agency,
                indicator_codes=entered.indicators,
                name=entered.name,
                kind=kind,
                description=entered.description,
                settings=entered.settings,
                secret_key=app_parts.settings.resolved_secret_key,
                cadence=entered.cadence,
                grace_minutes=entered.grace_minutes,
                coverage=entered.coverage,
                subject_codes=entered.subjects,
                poll_seconds=entered.poll_seconds,
            )
            return feed.code

    try:
        code = await run_in_threadpool(run)
    except (service.FeedError, AccountError) as exc:
        _service_error(shown, exc, lang, service.secret_fields_of(kind))
        return await again(409 if isinstance(exc, service.FeedError) and exc.code == "exists" else 422)
    return RedirectResponse(f"/feeds/{quote(code)}?created=1", status_code=303)


def _edit_state(request: Request, principal: Principal, code: str) -> tuple[dict[str, Any], list[str]] | None:
    with parts(request).db.reading() as session:
        try:
            feed = service.visible_feed(session, principal, code)
        except service.FeedError:
            return None
        return _values_of(session, feed), sorted(feed.secret_names or [])


@router.get("/feeds/{code}/edit")
async def edit_feed_page(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_feeds"))
) -> Response:
    """The form that changes a feed (admins, operators); agency and kind stay as they are."""
    state = await run_in_threadpool(_edit_state, request, principal, code)
    if state is None:
        raise _not_found()
    values, secrets_set = state
    context = await run_in_threadpool(
        lambda: _form_context(request, FeedForm(values=values), feed_code=code, secrets_set=secrets_set)
    )
    return render(request, "feed_form.html", context)


def _changes(session: Session, feed: Feed, entered: Entered, scheduled: bool) -> dict[str, Any]:
    """What the form changes, so that the audit log records only that."""
    changes: dict[str, Any] = {}
    for name in ("name", "description"):
        if getattr(entered, name) != getattr(feed, name):
            changes[name] = getattr(entered, name)
    if sorted(set(entered.indicators)) != service.feed_indicator_codes(session, feed.id):
        changes["indicator_codes"] = sorted(set(entered.indicators))
    if entered.secrets_typed or entered.settings != (feed.settings or {}):
        changes["settings"] = entered.settings
    if entered.cadence != feed.cadence:
        changes["cadence"] = entered.cadence
    if entered.grace_minutes != feed.grace_minutes:
        changes["grace_minutes"] = entered.grace_minutes
    if entered.coverage != feed.coverage:
        changes["coverage"] = entered.coverage
    if sorted(set(entered.subjects)) != list(feed.subject_codes or []):
        changes["subject_codes"] = sorted(set(entered.subjects))
    if scheduled and entered.poll_seconds != feed.poll_seconds:
        changes["poll_seconds"] = entered.poll_seconds
    return changes


@router.post("/feeds/{code}/edit")
async def edit_feed(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_feeds"))
) -> Response:
    """Save the form's changes to a feed; a secret input left empty keeps the stored secret."""
    app_parts = parts(request)
    lang = language(request)
    state = await run_in_threadpool(_edit_state, request, principal, code)
    if state is None:
        raise _not_found()
    stored, secrets_set = state
    kind = stored["kind"]
    raw = await request.form()
    entered, shown = _read_form(raw, kind, lang, editing=True)
    shown.values.update(code=code, agency=stored["agency"], kind=kind)
    shown.retype_secrets = entered.secrets_typed
    scheduled = service.is_scheduled(kind)

    async def again(status: int) -> Response:
        context = await run_in_threadpool(
            lambda: _form_context(request, shown, feed_code=code, secrets_set=secrets_set)
        )
        return render(request, "feed_form.html", context, status_code=status)

    if not form_csrf_ok(request, raw):
        shown.errors, shown.summary = {}, []
        shown.notice = translate("login.csrf", lang)
        return await again(403)
    if shown.errors:
        return await again(422)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> bool:
        with app_parts.db.writing() as session:
            feed = service.visible_feed(session, principal, code)
            changes = _changes(session, feed, entered, scheduled)
            if not changes:
                return False
            service.update_feed(
                session, actor, moment, code, changes, secret_key=app_parts.settings.resolved_secret_key
            )
            return True

    try:
        changed = await run_in_threadpool(run)
    except service.FeedError as exc:
        if exc.code == "unknown_feed":
            raise _not_found() from exc
        _service_error(shown, exc, lang, service.secret_fields_of(kind))
        return await again(422)
    return RedirectResponse(f"/feeds/{quote(code)}?{'saved' if changed else 'unchanged'}=1", status_code=303)


# --- one feed ---------------------------------------------------------------------------------------------


def _detail_context(request: Request, principal: Principal, code: str) -> dict[str, Any] | None:
    lang = language(request)
    with parts(request).db.reading() as session:
        try:
            feed = service.visible_feed(session, principal, code)
        except service.FeedError:
            return None
        last = service.last_runs(session, [feed.id]).get(feed.id)
        out = service.feed_out(session, feed, lang, last)
        indicators = session.execute(
            select(Indicator.code, Indicator.name_vi, Indicator.name_en)
            .where(Indicator.code.in_(out["indicators"]))
            .order_by(Indicator.code)
        ).all()
        subjects = list(session.scalars(select(Subject).where(Subject.code.in_(out["subjects"]))))
        runs = service.recent_runs(session, feed.id, RUN_LOG_SIZE)
        plain_settings = dict(feed.settings or {})
    subjects.sort(key=lambda s: (fold(_name(s, lang)), s.code))
    secret_names = service.secret_fields_of(feed.kind) or out["secrets_set"]
    return {
        "feed": out,
        "kind_label": _label("feeds.kind", out["kind"], lang),
        "coverage_label": _label("feeds.coverage", out["coverage"], lang),
        "settings_text": json.dumps(plain_settings, ensure_ascii=False, indent=2) if plain_settings else "",
        "secrets": [{"name": name, "set": name in out["secrets_set"]} for name in secret_names],
        "indicators": [
            {"code": code_, "name": name_vi if lang == "vi" else name_en or name_vi}
            for code_, name_vi, name_en in indicators
        ],
        "subjects": [{"code": s.code, "name": _name(s, lang)} for s in subjects],
        "runs": [
            {
                "id": run.id,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "trigger": _label("feeds.trigger", run.trigger, lang),
                "status": run.status,
                "status_label": _label("feeds.status", run.status, lang),
                "attempts": run.attempts,
                "received": run.received,
                "accepted": run.accepted,
                "rejected": run.rejected,
                "error_code": run.error_code,
                "message": run.message_vi if lang == "vi" else run.message_en or run.message_vi,
                "retryable": run.retryable,
            }
            for run in runs
        ],
        "can_manage": principal.can("manage_feeds"),
        "notice": "",
        "error": "",
    }


def _outcome(request: Request, context: dict[str, Any]) -> None:
    """What the last action did, said at the top of the page it redirected to."""
    lang = language(request)
    params = request.query_params
    for flag in ("created", "saved", "unchanged", "paused", "resumed"):
        if params.get(flag) == "1":
            context["notice"] = translate(f"feeds.notice.{flag}", lang)
    ran = params.get("ran", "")
    if ran.isascii() and ran.isdigit() and len(ran) < 19:
        run = next((run for run in context["runs"] if run["id"] == int(ran)), None)
        if run is not None:
            message = translate(
                "feeds.notice.ran",
                lang,
                status=run["status_label"],
                received=run["received"],
                accepted=run["accepted"],
                rejected=run["rejected"],
            )
            if run["status"] == "failed":
                context["error"] = f"{message} {run['message']}".strip()
            else:
                context["notice"] = message


@router.get("/feeds/{code}")
async def feed_page(request: Request, code: str, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """One feed: its settings (secrets only as set or not), indicators, subjects, schedule and run log."""
    context = await run_in_threadpool(_detail_context, request, principal, code)
    if context is None:
        raise _not_found()
    _outcome(request, context)
    return render(request, "feed.html", context)


async def _action(request: Request, principal: Principal, code: str, action: str) -> Response:
    """Pause, resume or run a feed from its page; back to the page, which says what happened."""
    app_parts = parts(request)
    lang = language(request)
    raw = await request.form()
    if not form_csrf_ok(request, raw):
        context = await run_in_threadpool(_detail_context, request, principal, code)
        if context is None:
            raise _not_found()
        context["error"] = translate("login.csrf", lang)
        return render(request, "feed.html", context, status_code=403)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def change(paused: bool) -> None:
        with app_parts.db.writing() as session:
            service.visible_feed(session, principal, code)
            service.update_feed(session, actor, moment, code, {"paused": paused})

    try:
        if action == "run":
            result = await run_in_threadpool(run_now, request, principal, code)
            target = f"/feeds/{quote(code)}?ran={result['id']}#runs"
        else:
            await run_in_threadpool(change, action == "pause")
            target = f"/feeds/{quote(code)}?{'paused' if action == 'pause' else 'resumed'}=1"
    except service.FeedError as exc:
        raise _not_found() from exc
    except Problem as exc:
        if exc.status == 404:
            raise _not_found() from exc
        context = await run_in_threadpool(_detail_context, request, principal, code)
        if context is None:
            raise _not_found() from exc
        context["error"] = exc.body(lang)["detail"]
        return render(request, "feed.html", context, status_code=exc.status)
    return RedirectResponse(target, status_code=303)


@router.post("/feeds/{code}/pause")
async def pause_feed(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_feeds"))
) -> Response:
    """Pause a feed (admins, operators)."""
    return await _action(request, principal, code, "pause")


@router.post("/feeds/{code}/resume")
async def resume_feed(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_feeds"))
) -> Response:
    """Resume a paused feed (admins, operators)."""
    return await _action(request, principal, code, "resume")


@router.post("/feeds/{code}/run")
async def run_feed_page(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_feeds"))
) -> Response:
    """Run a scheduled feed's pull now (admins, operators) and show the run."""
    return await _action(request, principal, code, "run")
