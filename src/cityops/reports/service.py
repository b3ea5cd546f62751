"""Making, keeping, scheduling and delivering reports (issue 9, points 4–5).

A report is made once per template, scope and period however many workers try: `claim` inserts its
`report_runs` row in a transaction of its own and the unique key refuses the second. The maker then reads the
figures (`content`), stores them as JSON in the row, writes the files under `<data dir>/reports` (Vietnamese) and
marks the row done, or failed with the reason. Deliveries go into the notifications outbox (`notification_deliveries`,
sent by `notifications.delivery`), once: the worker that sets `delivered_at` is the one that queues them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityops.accounts.models import User
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.clock import LOCAL_TZ, Clock
from cityops.db.engine import Database
from cityops.i18n import format_moment, format_number, format_period, translate
from cityops.notifications.models import PENDING, Delivery
from cityops.reports import content as contents
from cityops.reports import files
from cityops.reports.models import ReportRun, ReportSubscription
from cityops.reports.templates import BRIEF, Template, last_closed, local_date, period_label, templates
from cityops.settings import Settings

log = logging.getLogger(__name__)
WEB_TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
MAX_LIST = 200
STUCK_AFTER = timedelta(minutes=30)  # a run still "making" after this was left by a worker that died: made again


class ReportError(ValueError):
    """A refused request about reports: a problem code and its parameters."""

    def __init__(self, code: str, /, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(code)


def reports_dir(settings: Settings) -> Path:
    return settings.data_dir / "reports"


def template_of(code: str) -> Template:
    found = templates().get(code)
    if found is None:
        raise ReportError("report_unknown_template", template=code[:64], allowed=", ".join(templates()))
    return found


# --- making ---------------------------------------------------------------------------------------------------


def claim(
    db: Database,
    now: datetime,
    *,
    template: str,
    scope: str,
    period_kind: str,
    first: date,
    last: date,
    made_by: str,
    actor: Actor | None = None,
) -> int | None:
    """Insert the run (state making); its id, or None when this template, scope and period exists already (made or
    being made). A failed run, or one left "making" for STUCK_AFTER by a worker that died, is replaced."""
    try:
        with db.writing() as session:
            session.execute(
                delete(ReportRun).where(
                    ReportRun.template == template,
                    ReportRun.scope == scope,
                    ReportRun.period_start == first,
                    ReportRun.period_end == last,
                    or_(
                        ReportRun.state == "failed",
                        and_(ReportRun.state == "making", ReportRun.made_at < now - STUCK_AFTER),
                    ),
                )
            )
            run = ReportRun(
                template=template,
                scope=scope,
                period_kind=period_kind,
                period_start=first,
                period_end=last,
                state="making",
                content={},
                made_by=made_by,
                made_at=now,
            )
            session.add(run)
            session.flush()
            if actor is not None:
                audit(
                    session, actor, "report.make", "report", run.id, now, {"template": template, "period": str(first)}
                )
            return run.id
    except IntegrityError:
        return None


def _relative(template: str, scope: str, first: date, last: date, suffix: str) -> str:
    safe = re.sub(r"[^a-z0-9_]", "_", f"{template}_{scope}".lower())
    return f"{first.year}/{safe}_{first:%Y%m%d}_{last:%Y%m%d}.{suffix}"


def _finish(db: Database, settings: Settings, run_id: int, build: Any, now: datetime, *, xlsx: bool) -> bool:
    """Read the content, write the files, mark the run done (or failed with the reason)."""
    try:
        with db.reading() as session:
            run = session.get(ReportRun, run_id)
            assert run is not None
            template, scope, first, last = run.template, run.scope, run.period_start, run.period_end
            content = build(session)
        base = reports_dir(settings)
        pdf_path = _relative(template, scope, first, last, "pdf")
        xlsx_path = _relative(template, scope, first, last, "xlsx") if xlsx else ""
        pdf = files.pdf_bytes(content, settings.report_font, "vi")
        (base / pdf_path).parent.mkdir(parents=True, exist_ok=True)
        (base / pdf_path).write_bytes(pdf)
        if xlsx_path:
            (base / xlsx_path).write_bytes(files.xlsx_bytes(content, "vi"))
        with db.writing() as session:
            session.execute(
                update(ReportRun)
                .where(ReportRun.id == run_id)
                .values(state="done", content=content, pdf_path=pdf_path, xlsx_path=xlsx_path, error="")
            )
        return True
    except Exception as exc:
        log.exception("report %s could not be made", run_id)
        with db.writing() as session:
            session.execute(
                update(ReportRun).where(ReportRun.id == run_id).values(state="failed", error=str(exc)[:2000])
            )
        return False


def make_brief(db: Database, settings: Settings, now: datetime, day: date, *, made_by: str = "scheduler") -> int | None:
    """Make the daily brief of a local day once; the run's id, or None when it exists already."""
    run_id = claim(db, now, template=BRIEF, scope="province", period_kind="day", first=day, last=day, made_by=made_by)
    if run_id is not None:
        _finish(db, settings, run_id, lambda session: contents.brief(session, now, day), now, xlsx=False)
    return run_id


def make_report(
    db: Database,
    settings: Settings,
    now: datetime,
    template_code: str,
    first: date,
    last: date,
    *,
    made_by: str = "scheduler",
    actor: Actor | None = None,
) -> int | None:
    """Make a periodic report once; the run's id, or None when it exists already."""
    template = template_of(template_code)
    run_id = claim(
        db,
        now,
        template=template.code,
        scope=template.scope,
        period_kind=template.period,
        first=first,
        last=last,
        made_by=made_by,
        actor=actor,
    )
    if run_id is not None:
        _finish(
            db,
            settings,
            run_id,
            lambda session: contents.periodic(session, template, first, last, now),
            now,
            xlsx=True,
        )
    return run_id


# --- the schedule ---------------------------------------------------------------------------------------------


def brief_due(settings: Settings, now: datetime) -> date | None:
    """Today's local date once the brief time has passed."""
    local = now.astimezone(LOCAL_TZ)
    hours, minutes = (int(part) for part in settings.brief_time.split(":"))
    return local.date() if local.time() >= time(hours, minutes) else None


def _exists(session: Session, template: str, scope: str, first: date, last: date, now: datetime) -> bool:
    """Whether this report is made or being made; a failed or stuck one counts as absent after STUCK_AFTER (so the
    schedule tries it again, at most that often)."""
    run = session.scalars(
        select(ReportRun).where(
            ReportRun.template == template,
            ReportRun.scope == scope,
            ReportRun.period_start == first,
            ReportRun.period_end == last,
        )
    ).first()
    return run is not None and (run.state == "done" or run.made_at >= now - STUCK_AFTER)


def scheduled(db: Database, clock: Clock, settings: Settings | None) -> str:
    """One step of the schedule (each worker tick): make at most one due report — today's brief once its time has
    come, else a template's last closed period — and queue the e-mails of done runs not delivered yet. What was
    made ("" for nothing)."""
    if settings is None:
        return ""
    try:
        return _scheduled(db, clock, settings)
    except Exception:  # the reports must not stop the worker's other work; the next tick tries again
        log.exception("reports: the scheduled step failed")
        return ""


def _scheduled(db: Database, clock: Clock, settings: Settings) -> str:
    now = clock()
    made = ""
    day = brief_due(settings, now)
    with db.reading() as session:
        due: list[tuple[str, date, date]] = []
        if day is not None and not _exists(session, BRIEF, "province", day, day, now):
            due.append((BRIEF, day, day))
        today = local_date(now)
        for template in templates().values():
            first, last = last_closed(template.period, today)
            if not _exists(session, template.code, template.scope, first, last, now):
                due.append((template.code, first, last))
    for code, first, last in due[:1]:
        run_id = (
            make_brief(db, settings, now, first) if code == BRIEF else make_report(db, settings, now, code, first, last)
        )
        if run_id is not None:
            made = f"{code}:{first.isoformat()}"
    deliver_all(db, settings, clock())
    return made


# --- delivery -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    user_id: int
    email: str
    language: str


def recipients(session: Session, template: str, scope: str) -> list[Reader]:
    """Who receives a made report by e-mail: its subscribers (active, with an address, allowed to read it) and,
    for the daily brief, every active leader with an address."""
    subscribed = select(ReportSubscription.user_id).where(
        ReportSubscription.template == template, ReportSubscription.scope == scope
    )
    query = select(User).where(User.is_active.is_(True), User.email != "", User.id.in_(subscribed))
    users = list(session.scalars(query))
    if template == BRIEF:
        users += list(
            session.scalars(select(User).where(User.is_active.is_(True), User.email != "", User.role == "leader"))
        )
    seen: dict[int, Reader] = {}
    for user in users:
        if user.id in seen or not contents.may_read(Principal(role=user.role, label=user.username), scope):
            continue
        seen[user.id] = Reader(user.id, user.email, "en" if user.language == "en" else "vi")
    return sorted(seen.values(), key=lambda reader: reader.user_id)


def deliver_all(db: Database, settings: Settings, now: datetime) -> int:
    """Queue the e-mails of every done run not delivered yet; how many e-mails were queued."""
    with db.reading() as session:
        waiting = list(
            session.scalars(
                select(ReportRun.id).where(ReportRun.state == "done", ReportRun.delivered_at.is_(None)).limit(20)
            )
        )
    return sum(deliver(db, settings, run_id, now) for run_id in waiting)


def deliver(db: Database, settings: Settings, run_id: int, now: datetime) -> int:
    """Queue one e-mail per recipient of a done run, once (the transaction that marks it delivered queues them)."""
    with db.writing() as session:
        marked = session.execute(
            update(ReportRun)
            .where(ReportRun.id == run_id, ReportRun.state == "done", ReportRun.delivered_at.is_(None))
            .values(delivered_at=now)
            .execution_options(synchronize_session=False)
        )
        if not int(getattr(marked, "rowcount", 0) or 0):
            return 0
        run = session.get(ReportRun, run_id)
        assert run is not None
        queued = 0
        for reader in recipients(session, run.template, run.scope):
            key = f"email:{reader.email}:report:{run.id}"[:255]
            if session.scalar(select(Delivery.id).where(Delivery.key == key)) is not None:
                continue
            session.add(
                Delivery(
                    key=key,
                    channel="email",
                    target=reader.email,
                    payload=email_payload(run, reader.language, settings.public_url.rstrip("/")),
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            queued += 1
        return queued


def link_of(run: ReportRun) -> str:
    return f"/brief/{run.period_start.isoformat()}" if run.template == BRIEF else f"/reports?template={run.template}"


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(WEB_TEMPLATES)), autoescape=select_autoescape(["html"]))


def render_context(content: dict[str, Any], language: str) -> dict[str, Any]:
    """What the brief's page and e-mail templates are given to say the content in a language."""
    return {
        "c": content,
        "lang": language,
        "t": lambda key, **params: translate(key, language, **params),
        "tx": lambda value: files.text_of(value, language),
        "number": lambda value: format_number(value, language, digits=1),
        "moment": lambda value: format_moment(value, language),
        "period": lambda kind, key: format_period(kind, key, language),
    }


def brief_text(content: dict[str, Any], language: str, link: str) -> str:
    """The brief as plain text (the e-mail's text part)."""
    t = lambda key, **params: translate(key, language, **params)  # noqa: E731
    tx = lambda value: files.text_of(value, language)  # noqa: E731
    n = lambda value: format_number(value, language, digits=1)  # noqa: E731
    lines = [files.title_of(content, language)[1], ""]
    lines.append(t("reports.brief.changes") + f" ({len(content['changes'])})")
    for row in content["changes"]:
        lines.append(f"- {tx(row['name'])}: {n(row['previous'])} → {n(row['value'])} {tx(row['unit'])}")
    lines.append("")
    lines.append(t("reports.brief.off_target") + f" ({len(content['off_target'])})")
    for row in content["off_target"]:
        lines.append(f"- {tx(row['name'])} ({tx(row['subject_name'])}): {tx(row['status_text'])}")
    lines.append("")
    lines.append(t("reports.brief.anomalies") + f" ({len(content['anomalies'])})")
    for row in content["anomalies"]:
        lines.append(f"- {tx(row['name'])} ({tx(row['subject_name'])}): {n(row['value'])} — {tx(row['kind_text'])}")
    lines.append("")
    lines.append(t("reports.brief.overdue_incidents") + f" ({len(content['overdue_incidents'])})")
    for row in content["overdue_incidents"]:
        lines.append(f"- #{row['id']} {row['title']} — {tx(row['agency'])}")
    lines.append("")
    lines.append(t("reports.brief.feeds") + f" ({len(content['feeds'])})")
    for row in content["feeds"]:
        lines.append(f"- {row['name']} — {tx(row['agency'])}")
    citizen = content["citizen"]
    lines.append("")
    lines.append(
        t(
            "reports.brief.citizen_line",
            yesterday=citizen["yesterday"],
            open=citizen["open"],
            overdue=citizen["overdue"],
        )
    )
    return "\n".join(lines)  # the outbox adds the link to the page (absolute) and the footer


def email_payload(run: ReportRun, language: str, base: str = "") -> dict[str, Any]:
    """What the outbox sends: subject, text and HTML in the reader's language, the files attached."""
    content = run.content or {}
    title, period = files.title_of(content, language)
    link = link_of(run)
    attachments = []
    stem = f"{run.template}_{run.period_start:%Y%m%d}"
    if run.pdf_path:
        attachments.append({"path": run.pdf_path, "filename": f"{stem}.pdf", "type": "application/pdf"})
    if run.xlsx_path:
        attachments.append(
            {
                "path": run.xlsx_path,
                "filename": f"{stem}.xlsx",
                "type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            }
        )
    if run.template == BRIEF:
        text = brief_text(content, language, link)
        html = (
            _environment()
            .get_template("reports/email_brief.html")
            .render(**render_context(content, language), base=base)
        )
    else:
        text = translate("reports.email.periodic", language, title=title, period=period)
        html = ""
    return {
        "kind": "report",
        "language": language,
        "subject": f"{title} — {period}",
        "text": text,
        "html": html,
        "link": link,
        "attachments": attachments,
    }


# --- reading --------------------------------------------------------------------------------------------------


def list_runs(
    session: Session, principal: Principal, *, template: str = "", period_kind: str = "", limit: int = 50
) -> list[ReportRun]:
    """Made reports the principal may read, newest period first."""
    query = select(ReportRun)
    if template:
        query = query.where(ReportRun.template == template)
    if period_kind:
        query = query.where(ReportRun.period_kind == period_kind)
    if not principal.province_wide:
        query = query.where(ReportRun.scope != "province")
    query = query.order_by(ReportRun.period_start.desc(), ReportRun.template, ReportRun.id.desc())
    return list(session.scalars(query.limit(max(1, min(limit, MAX_LIST)))))


def get_run(session: Session, principal: Principal, run_id: int) -> ReportRun:
    run = session.get(ReportRun, run_id)
    if run is None or not contents.may_read(principal, run.scope):
        raise ReportError("report_not_found", id=run_id)
    return run


def brief_of(session: Session, principal: Principal, day: date | None) -> ReportRun:
    """The brief of a day (the newest done one when no day is given)."""
    if not principal.province_wide:
        raise ReportError("report_not_found", id=BRIEF)
    query = select(ReportRun).where(ReportRun.template == BRIEF, ReportRun.state == "done")
    if day is not None:
        query = query.where(ReportRun.period_start == day)
    run = session.scalars(query.order_by(ReportRun.period_start.desc()).limit(1)).first()
    if run is None:
        raise ReportError("report_brief_missing", day=day.strftime("%d/%m/%Y") if day else "—")
    return run


def file_of(settings: Settings, run: ReportRun, kind: str, language: str) -> tuple[bytes, str, str]:
    """A made report's file (bytes, media type, file name): the stored Vietnamese one, or made again in English."""
    if run.state != "done":
        raise ReportError("report_not_ready", id=run.id)
    stem = f"{run.template}_{run.period_start:%Y%m%d}" + ("_en" if language == "en" else "")
    if kind == "pdf":
        media = "application/pdf"
        stored = run.pdf_path
    elif kind == "xlsx" and run.xlsx_path:
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        stored = run.xlsx_path
    else:
        raise ReportError("report_no_file", kind=kind[:8])
    if language == "en":
        data = (
            files.pdf_bytes(run.content, settings.report_font, "en")
            if kind == "pdf"
            else files.xlsx_bytes(run.content, "en")
        )
        return data, media, f"{stem}.{kind}"
    path = reports_dir(settings) / stored
    if not path.is_file():
        data = files.pdf_bytes(run.content, settings.report_font) if kind == "pdf" else files.xlsx_bytes(run.content)
    else:
        data = path.read_bytes()
    return data, media, f"{stem}.{kind}"


def run_out(run: ReportRun, language: str = "vi") -> dict[str, Any]:
    """A made report in the API."""
    if run.template == BRIEF:
        name = translate("reports.brief.title", language)
    else:
        known = templates().get(run.template)
        name = known.name(language) if known else run.template
    return {
        "id": run.id,
        "template": run.template,
        "name": name,
        "scope": run.scope,
        "period_kind": run.period_kind,
        "period_start": run.period_start.isoformat(),
        "period_end": run.period_end.isoformat(),
        "period": period_label(run.period_kind, run.period_start, run.period_end, language),
        "state": run.state,
        "error": run.error if run.state == "failed" else "",
        "made_by": run.made_by,
        "made_at": run.made_at.isoformat(),
        "delivered_at": run.delivered_at.isoformat() if run.delivered_at else None,
        "files": {
            kind: f"/api/v1/reports/{run.id}/{kind}"
            for kind, path in (("pdf", run.pdf_path), ("xlsx", run.xlsx_path))
            if path and run.state == "done"
        },
        "link": link_of(run),
    }


# --- subscriptions --------------------------------------------------------------------------------------------


def subscriptions_of(session: Session, user_id: int) -> set[tuple[str, str]]:
    return {
        (template, scope)
        for template, scope in session.execute(
            select(ReportSubscription.template, ReportSubscription.scope).where(ReportSubscription.user_id == user_id)
        )
    }


def set_subscription(
    session: Session, principal: Principal, actor: Actor, now: datetime, template: str, subscribed: bool
) -> bool:
    """Subscribe the principal (a user) to a template, or not; whether anything changed."""
    if principal.user_id is None:
        raise ReportError("report_subscription_user")
    scope = "province" if template == BRIEF else template_of(template).scope
    if not contents.may_read(principal, scope):
        raise ReportError("report_not_found", id=template[:64])
    existing = session.scalars(
        select(ReportSubscription).where(
            ReportSubscription.user_id == principal.user_id,
            ReportSubscription.template == template,
            ReportSubscription.scope == scope,
        )
    ).first()
    if subscribed and existing is None:
        session.add(ReportSubscription(user_id=principal.user_id, template=template, scope=scope, created_at=now))
    elif not subscribed and existing is not None:
        session.delete(existing)
    else:
        return False
    audit(session, actor, "report.subscribe" if subscribed else "report.unsubscribe", "report_template", template, now)
    return True


def periods_for(template: Template, today: date, count: int = 8) -> list[tuple[date, date]]:
    """The closed periods of a template, newest first (what the page offers to make)."""
    out = []
    end = today
    for _ in range(count):
        first, last = last_closed(template.period, end)
        out.append((first, last))
        end = first
    return out
