"""Incidents: the rules of their life — who may see and do what, the moves of their status, their trail.

Every change is written to the incident's trail (`IncidentEvent`: who, what, when, details) and to the audit log
(`accounts.service.audit`) in the same transaction, and tells the people concerned (`notifications.notify`).

Who may do what:
- `manage_incidents` (operators, admins): everything, on every incident, in every agency.
- `handle_incidents` (officers, handlers): work on the incidents their agency subtree owns or that are assigned to
  them — status, comments, checklist, attachments, links, merges; officers also assign within their agency.
  They change the title and description, not the severity or the deadline (the center sets those).
- `read_data` (leaders, everyone logged in): read what they may see. Province-wide roles see every incident; an
  agency user sees its subtree's and those assigned to them; any other incident is "not found" to them.

Status moves: new → assigned (by assigning) → in_progress → resolved → closed; new may start at once
(→ in_progress); resolved or closed → reopened (back to in_progress); new, assigned or in_progress → rejected,
with a reason. Anything else is refused with the reason in Vietnamese and English.

Functions for pages (each takes the principal and answers only what it may see):
`board` / `board_by_status` (filters agency, domain, severity, category, overdue, assigned to me), `detail` (one
incident with everything), `my_work`, `overdue_by_agency`, `summaries` (the list shape), `list_categories`;
and one function per action: `create_incident`, `create_from_alert`, `create_from_report`, `update_incident`,
`change_status`, `assign`, `add_comment`, `set_task`, `add_attachment`, `attachment_file`, `link`, `merge`.
Errors are `IncidentError` (a code, its parameters, the message in both languages).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from cityops import live
from cityops.accounts.models import Agency, User
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, agency_subtree, audit
from cityops.alerts.models import Alert, AlertRule
from cityops.geo.models import Subject
from cityops.i18n import both, format_moment, format_number
from cityops.incidents import attachments as files
from cityops.incidents.models import (
    ASSIGNED,
    CLOSED,
    IN_PROGRESS,
    NEW,
    OPEN_STATUSES,
    REJECTED,
    RESOLVED,
    SEVERITIES,
    STATUSES,
    Incident,
    IncidentAttachment,
    IncidentCategory,
    IncidentComment,
    IncidentEvent,
    IncidentLink,
    IncidentTask,
    incident_assignees,
)
from cityops.notifications.service import agency_users, notify

REOPENED = "reopened"  # not a status: the move from resolved or closed back to in_progress
# Where each status may go (by `change_status`; `assign` moves new → assigned).
MOVES: dict[str, tuple[str, ...]] = {
    NEW: (IN_PROGRESS, REJECTED),
    ASSIGNED: (IN_PROGRESS, REJECTED),
    IN_PROGRESS: (RESOLVED, REJECTED),
    RESOLVED: (CLOSED, REOPENED),
    CLOSED: (REOPENED,),
    REJECTED: (),
}
# Hours allowed when an incident has no category.
DEFAULT_HOURS = {"low": 72.0, "medium": 24.0, "high": 8.0, "critical": 4.0}
ALERT_SEVERITY = {"info": "low", "warning": "medium", "critical": "high"}
# The agency that owns an incident when neither the alert, the category nor the caller names one.
FALLBACK_AGENCY = "trung_tam_giam_sat_dieu_hanh"
MAX_TITLE, MAX_TEXT = 255, 20_000
MAX_BOARD = 1000


class IncidentError(ValueError):
    """An incident request that cannot be done: a code, its parameters, the message in Vietnamese and English."""

    def __init__(self, code: str, /, **params: Any) -> None:
        self.code = code
        self.params = params
        self.message_vi, self.message_en = both(f"incidents.error.{code}", **params)
        super().__init__(self.message_en)


# --- who may see and do what ------------------------------------------------------------------------


def _assignee_ids(session: Session, incident_id: int) -> set[int]:
    return set(
        session.scalars(select(incident_assignees.c.user_id).where(incident_assignees.c.incident_id == incident_id))
    )


def _sees_all(principal: Principal) -> bool:
    return principal.province_wide or principal.can("manage_incidents")


def may_see(session: Session, principal: Principal, incident: Incident) -> bool:
    """Province-wide roles see every incident; others their agency subtree's and those assigned to them."""
    if _sees_all(principal) or incident.agency_id in principal.agency_ids:
        return True
    return principal.user_id is not None and principal.user_id in _assignee_ids(session, incident.id)


def may_work(session: Session, principal: Principal, incident: Incident) -> bool:
    """Whether the principal may change the incident (status, comments, checklist, attachments, links)."""
    if principal.can("manage_incidents"):
        return True
    if not principal.can("handle_incidents"):
        return False
    if incident.agency_id in principal.agency_ids:
        return True
    return principal.user_id is not None and principal.user_id in _assignee_ids(session, incident.id)


def may_assign(principal: Principal, incident: Incident) -> bool:
    """Operators assign anywhere; an agency's officer within the agency's subtree, on its own incidents."""
    if principal.can("manage_incidents"):
        return True
    return (
        principal.role == "officer" and principal.can("handle_incidents") and incident.agency_id in principal.agency_ids
    )


def _visible(principal: Principal) -> ColumnElement[bool]:
    if _sees_all(principal):
        return true()
    mine = select(incident_assignees.c.incident_id).where(incident_assignees.c.user_id == (principal.user_id or 0))
    return or_(Incident.agency_id.in_(sorted(principal.agency_ids)), Incident.id.in_(mine))


def get_visible(session: Session, principal: Principal, incident_id: int) -> Incident:
    """The incident if the principal may see it; IncidentError("not_found") otherwise (whether it exists is
    not told)."""
    incident = session.get(Incident, incident_id)
    if incident is None or not may_see(session, principal, incident):
        raise IncidentError("not_found", id=incident_id)
    return incident


def _workable(session: Session, principal: Principal, incident_id: int) -> Incident:
    incident = get_visible(session, principal, incident_id)
    if not may_work(session, principal, incident):
        raise IncidentError("may_not_work", id=incident_id)
    return incident


# --- small helpers ----------------------------------------------------------------------------------


def _trail(session: Session, incident_id: int, now: datetime, actor: str, action: str, **details: Any) -> int:
    event = IncidentEvent(incident_id=incident_id, at=now, actor=actor, action=action, details=details)
    session.add(event)
    session.flush()
    return event.id


def _record(session: Session, actor: Actor, now: datetime, incident: Incident, action: str, **details: Any) -> int:
    """One change: the trail entry and the audit entry, with the same details; the trail entry's id."""
    incident.updated_at = now
    event_id = _trail(session, incident.id, now, actor.label, action, **details)
    audit(session, actor, f"incident.{action}", "incident", incident.id, now, details)
    live.incident_changed(session, incident)
    return event_id


def _text(value: str | None, limit: int) -> str:
    return (value or "").replace("\x00", "").strip()[:limit]


def _category(session: Session, code: str | None) -> IncidentCategory | None:
    if not code:
        return None
    category = session.scalar(select(IncidentCategory).where(IncidentCategory.code == code))
    if category is None:
        raise IncidentError("unknown_category", category=code[:64])
    return category


def _agency_by_code(session: Session, code: str) -> Agency:
    agency = session.scalar(select(Agency).where(Agency.code == code))
    if agency is None:
        raise IncidentError("unknown_agency", agency=code[:64])
    return agency


def _check_severity(severity: str) -> str:
    if severity not in SEVERITIES:
        raise IncidentError("invalid_severity", severity=severity[:20], allowed=", ".join(SEVERITIES))
    return severity


def hours_for(category: IncidentCategory | None, severity: str) -> float:
    """The hours allowed to resolve an incident of this category and severity."""
    if category is not None:
        hours = (category.deadline_hours or {}).get(severity)
        if hours:
            return float(hours)
    return DEFAULT_HOURS[severity]


def _label(kind: str, code: str) -> tuple[str, str]:
    return both(f"incidents.{kind}.{code}")


def incident_params(session: Session, incident: Incident, **extra: Any) -> dict[str, Any]:
    """The parameters of an incident's notification templates: id, title, agency_vi/en, severity_vi/en,
    deadline (dd/mm/yyyy hh:mm, local time), and any extra."""
    agency = session.get(Agency, incident.agency_id)
    severity_vi, severity_en = _label("severity", incident.severity)
    return {
        "id": incident.id,
        "title": incident.title,
        "agency_vi": agency.name_vi if agency else "",
        "agency_en": (agency.name_en or agency.name_vi) if agency else "",
        "severity_vi": severity_vi,
        "severity_en": severity_en,
        "deadline": format_moment(incident.deadline_at, "vi") if incident.deadline_at else "—",
        **extra,
    }


def link_of(incident_id: int) -> str:
    """The page of an incident (the link of its notifications)."""
    return f"/incidents/{incident_id}"


def _user_ids_by_name(session: Session, names: Iterable[str]) -> set[int]:
    wanted = [name for name in names if name]
    if not wanted:
        return set()
    return set(session.scalars(select(User.id).where(User.username.in_(wanted))))


# --- creating ---------------------------------------------------------------------------------------


def _subject(session: Session, code: str | None) -> Subject | None:
    if not code:
        return None
    subject = session.scalar(select(Subject).where(Subject.code == code))
    if subject is None:
        raise IncidentError("unknown_subject", subject=code[:64])
    return subject


def _check_point(latitude: float | None, longitude: float | None) -> None:
    if (latitude is None) != (longitude is None):
        raise IncidentError("invalid_point")
    if latitude is not None and longitude is not None and not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise IncidentError("invalid_point")


def _new_incident(
    session: Session,
    actor: Actor,
    now: datetime,
    *,
    title: str,
    description: str,
    category: IncidentCategory | None,
    severity: str,
    agency_id: int,
    domain: str = "",
    subject: Subject | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    place_text: str = "",
    source: str = "manual",
    alert_id: int | None = None,
    source_ref: str = "",
) -> Incident:
    title = _text(title, MAX_TITLE)
    if not title:
        raise IncidentError("title_required")
    _check_severity(severity)
    _check_point(latitude, longitude)
    incident = Incident(
        title=title,
        description=_text(description, MAX_TEXT),
        domain=_text(domain, 32) or (category.domain if category else ""),
        category_id=category.id if category else None,
        severity=severity,
        subject_id=subject.id if subject else None,
        latitude=latitude if latitude is not None else (subject.latitude if subject else None),
        longitude=longitude if longitude is not None else (subject.longitude if subject else None),
        place_text=_text(place_text, 255) or (subject.name_vi if subject else ""),
        agency_id=agency_id,
        status=NEW,
        deadline_at=now + timedelta(hours=hours_for(category, severity)),
        source=source,
        alert_id=alert_id,
        source_ref=_text(source_ref, 128),
        created_by=actor.label,
        created_at=now,
        updated_at=now,
        escalation_stage=0,
    )
    session.add(incident)
    session.flush()
    return incident


def _finish_new(session: Session, actor: Actor, now: datetime, incident: Incident) -> Incident:
    """The checklist from the category's SOP, the trail and audit entries, and the owner agency told."""
    category = session.get(IncidentCategory, incident.category_id) if incident.category_id else None
    for position, step in enumerate((category.sop if category else None) or []):
        session.add(
            IncidentTask(
                incident_id=incident.id,
                position=position,
                text_vi=str(step.get("vi", ""))[:2000],
                text_en=str(step.get("en", ""))[:2000],
                done_by="",
            )
        )
    agency = session.get(Agency, incident.agency_id)
    _record(
        session,
        actor,
        now,
        incident,
        "created",
        title=incident.title,
        source=incident.source,
        severity=incident.severity,
        category=category.code if category else None,
        agency=agency.code if agency else None,
        deadline_at=incident.deadline_at.isoformat() if incident.deadline_at else None,
        alert_id=incident.alert_id,
        source_ref=incident.source_ref,
    )
    notify(
        session,
        now,
        user_ids=set(agency_users(session, incident.agency_id)) - {actor.user_id},
        kind="incident.assigned",  # the owner agency is given a new incident
        key=f"incident:{incident.id}:created",
        params=incident_params(session, incident, actor=actor.label),
        link=link_of(incident.id),
    )
    return incident


def create_incident(
    session: Session,
    principal: Principal,
    actor: Actor,
    now: datetime,
    *,
    title: str,
    description: str = "",
    category_code: str | None = None,
    severity: str = "medium",
    agency_code: str | None = None,
    domain: str = "",
    subject_code: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    place_text: str = "",
) -> Incident:
    """Open an incident by hand. Its owner is the agency given, else the category's; its deadline is now plus the
    category's hours for the severity; its checklist is the category's SOP. An agency user opens incidents for
    their own agency subtree only."""
    category = _category(session, category_code)
    _check_severity(severity)
    if agency_code:
        agency_id: int | None = _agency_by_code(session, agency_code).id
    elif category is not None and category.agency_id is not None:
        agency_id = category.agency_id
    elif not principal.can("manage_incidents") and principal.agency_id is not None:
        agency_id = principal.agency_id
    else:
        agency_id = None
    if agency_id is None:
        raise IncidentError("agency_required")
    if not principal.can("manage_incidents") and agency_id not in principal.agency_ids:
        raise IncidentError("may_not_create")
    incident = _new_incident(
        session,
        actor,
        now,
        title=title,
        description=description,
        category=category,
        severity=severity,
        agency_id=agency_id,
        domain=domain,
        subject=_subject(session, subject_code),
        latitude=latitude,
        longitude=longitude,
        place_text=place_text,
    )
    return _finish_new(session, actor, now, incident)


def _fallback_agency(session: Session) -> int:
    found = session.scalar(select(Agency.id).where(Agency.code == FALLBACK_AGENCY))
    if found is None:
        found = session.scalar(select(Agency.id).where(Agency.parent_id.is_(None)).order_by(Agency.id))
    if found is None:
        raise IncidentError("agency_required")
    return found


def create_from_alert(
    session: Session, actor: Actor, now: datetime, alert_id: int, *, category_code: str | None = None
) -> Incident:
    """The incident for this alert, made once: a second call (even by another worker at the same moment)
    returns the same incident.

    Title from the alert; severity mapped (info → low, warning → medium, critical → high); category the one
    given, else the alert rule's, else `du_lieu` for a feed's alert; owner the alert's agency, else the
    category's. Sets `Alert.incident_id` (one conditional UPDATE decides which caller made it) and tells the
    owner agency's users. The caller checks that the actor may do this.
    """
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise IncidentError("alert_not_found", id=alert_id)
    if alert.incident_id is not None:
        existing = session.get(Incident, alert.incident_id)
        if existing is not None:
            return existing
    category = _category(session, category_code)
    if category is None and alert.rule_id is not None:
        rule_category = session.scalar(select(AlertRule.incident_category_id).where(AlertRule.id == alert.rule_id))
        category = session.get(IncidentCategory, rule_category) if rule_category else None
    if category is None and (alert.feed_id is not None or alert.kind.startswith("feed_")):
        category = session.scalar(select(IncidentCategory).where(IncidentCategory.code == "du_lieu"))
    agency_id = alert.agency_id or (category.agency_id if category else None) or _fallback_agency(session)
    subject = session.get(Subject, alert.subject_id) if alert.subject_id else None
    description = "\n".join(
        part for part in (alert.title_vi, alert.title_en if alert.title_en != alert.title_vi else "") if part
    )
    incident = _new_incident(
        session,
        actor,
        now,
        title=alert.title_vi or alert.title_en or alert.key,
        description=description,
        category=category,
        severity=ALERT_SEVERITY.get(alert.severity, "medium"),
        agency_id=agency_id,
        subject=subject,
        source="alert",
        alert_id=alert.id,
        source_ref=alert.key,
    )
    won = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.incident_id.is_(None))
        .values(incident_id=incident.id)
        .execution_options(synchronize_session=False)
    )
    if not getattr(won, "rowcount", 0):
        # Another caller made it first: drop ours (nothing else was written yet) and answer theirs.
        session.execute(delete(Incident).where(Incident.id == incident.id))
        session.expunge(incident)
        winner = session.scalar(select(Alert.incident_id).where(Alert.id == alert.id))
        found = session.get(Incident, winner) if winner is not None else None
        if found is None:
            raise IncidentError("alert_not_found", id=alert_id)
        return found
    session.refresh(alert)
    return _finish_new(session, actor, now, incident)


def create_from_report(
    session: Session,
    actor: Actor,
    now: datetime,
    *,
    source_ref: str,
    title: str,
    description: str = "",
    category_code: str | None = "phan_anh_kien_nghi",
    severity: str = "medium",
    agency_code: str | None = None,
    subject_code: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    place_text: str = "",
) -> Incident:
    """The incident for a citizen's report (source `citizen`, its id in `source_ref`): made once per report — a
    second call with the same `source_ref` returns the first incident. Owner: the agency given, else the
    category's. The caller checks that the actor may do this."""
    reference = _text(source_ref, 128)
    if not reference:
        raise IncidentError("source_ref_required")
    existing = session.scalar(
        select(Incident).where(Incident.source == "citizen", Incident.source_ref == reference).order_by(Incident.id)
    )
    if existing is not None:
        return existing
    category = _category(session, category_code)
    if agency_code:
        agency_id = _agency_by_code(session, agency_code).id
    else:
        agency_id = (category.agency_id if category else None) or _fallback_agency(session)
    incident = _new_incident(
        session,
        actor,
        now,
        title=title,
        description=description,
        category=category,
        severity=severity,
        agency_id=agency_id,
        subject=_subject(session, subject_code),
        latitude=latitude,
        longitude=longitude,
        place_text=place_text,
        source="citizen",
        source_ref=reference,
    )
    return _finish_new(session, actor, now, incident)


# --- changing ---------------------------------------------------------------------------------------

UPDATABLE = ("title", "description", "severity", "deadline_at")


def update_incident(
    session: Session, principal: Principal, actor: Actor, now: datetime, incident_id: int, changes: dict[str, Any]
) -> Incident:
    """Change the title, description, severity or deadline. Severity and deadline are the center's
    (`manage_incidents`); a new severity without a new deadline moves the deadline to creation + the category's
    hours for it. A new deadline starts escalation again."""
    incident = _workable(session, principal, incident_id)
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise IncidentError("not_updatable", field=unknown[0][:40])
    if ({"severity", "deadline_at"} & set(changes)) and not principal.can("manage_incidents"):
        raise IncidentError("may_not_reschedule")
    recorded: dict[str, Any] = {}
    if "title" in changes:
        title = _text(changes["title"], MAX_TITLE)
        if not title:
            raise IncidentError("title_required")
        if title != incident.title:
            recorded["title"] = [incident.title, title]
            incident.title = title
    if "description" in changes:
        description = _text(changes["description"], MAX_TEXT)
        if description != incident.description:
            recorded["description"] = True
            incident.description = description
    deadline = incident.deadline_at
    if "severity" in changes:
        severity = _check_severity(str(changes["severity"] or ""))
        if severity != incident.severity:
            recorded["severity"] = [incident.severity, severity]
            incident.severity = severity
            category = session.get(IncidentCategory, incident.category_id) if incident.category_id else None
            deadline = incident.created_at + timedelta(hours=hours_for(category, severity))
    if changes.get("deadline_at") is not None:
        deadline = changes["deadline_at"]
        if deadline.tzinfo is None:
            raise IncidentError("invalid_deadline")
        if deadline <= incident.created_at:
            raise IncidentError("deadline_before_creation")
    if deadline != incident.deadline_at and deadline is not None:
        recorded["deadline_at"] = [
            incident.deadline_at.isoformat() if incident.deadline_at else None,
            deadline.isoformat(),
        ]
        incident.deadline_at = deadline
        incident.escalation_stage = 0
    if recorded:
        _record(session, actor, now, incident, "updated", **recorded)
    return incident


def change_status(
    session: Session,
    principal: Principal,
    actor: Actor,
    now: datetime,
    incident_id: int,
    *,
    status: str,
    reason: str = "",
) -> Incident:
    """Move an incident (see MOVES); `reopened` (or in_progress from resolved/closed) reopens it. A rejection
    needs a reason; a resolution may carry one (kept as the resolution). Resolving, closing and rejecting tell
    the creator and the owner agency's heads."""
    incident = _workable(session, principal, incident_id)
    if status not in (*STATUSES, REOPENED):
        raise IncidentError("invalid_status", status=status[:20], allowed=", ".join((*STATUSES, REOPENED)))
    before = incident.status
    target = REOPENED if status == IN_PROGRESS and before in (RESOLVED, CLOSED) else status
    if target == ASSIGNED and before in (NEW, ASSIGNED):
        raise IncidentError("use_assign")
    if target not in MOVES.get(before, ()):
        from_vi, from_en = _label("status", before)
        to_vi, to_en = _label("status", IN_PROGRESS if target == REOPENED else target)
        raise IncidentError("bad_move", from_vi=from_vi, from_en=from_en, to_vi=to_vi, to_en=to_en)
    text = _text(reason, MAX_TEXT)
    if target == REJECTED and not text:
        raise IncidentError("reason_required")
    if incident.merged_into_id is not None and target == REOPENED:
        raise IncidentError("merged_stays_closed", into=incident.merged_into_id)
    details: dict[str, Any] = {"from": before, "to": IN_PROGRESS if target == REOPENED else target}
    if text:
        details["reason"] = text
    if target == REOPENED:
        incident.status = IN_PROGRESS
        incident.resolved_at = incident.closed_at = None
        _record(session, actor, now, incident, REOPENED, **details)
        _tell_report(session, incident, now)
        return incident
    incident.status = target
    if target == RESOLVED:
        incident.resolved_at = now
        incident.resolution = text or incident.resolution
    elif target == CLOSED:
        incident.closed_at = now
    elif target == REJECTED:
        incident.reject_reason = text
        incident.closed_at = now
    event_id = _record(session, actor, now, incident, "rejected" if target == REJECTED else "status", **details)
    if target in (RESOLVED, CLOSED, REJECTED):
        told = _user_ids_by_name(session, [incident.created_by]) | set(
            agency_users(session, incident.agency_id, heads_only=True)
        )
        status_vi, status_en = _label("status", target)
        notify(
            session,
            now,
            user_ids=told - {actor.user_id},
            kind="incident.status",
            key=f"incident:{incident.id}:status:{event_id}",
            params=incident_params(
                session, incident, status_vi=status_vi, status_en=status_en, actor=actor.label, reason=text or "—"
            ),
            link=link_of(incident.id),
        )
    _tell_report(session, incident, now)
    return incident


def _tell_report(session: Session, incident: Incident, now: datetime) -> None:
    """A citizen's incident: its report gets the public answer (or is opened again)."""
    if incident.source == "citizen":
        from cityops.feedback.service import on_incident_status  # feedback.service imports this module

        on_incident_status(session, incident, now)


def assign(
    session: Session,
    principal: Principal,
    actor: Actor,
    now: datetime,
    incident_id: int,
    *,
    agency_code: str | None = None,
    usernames: Sequence[str] = (),
) -> Incident:
    """Give an open incident to an agency (the same one when none is given) and to assignees, who must belong to
    that agency's subtree. A new incident becomes assigned. The new assignees are told (`incident.assigned`); with
    no assignee, the agency's users are told."""
    incident = get_visible(session, principal, incident_id)
    if not may_assign(principal, incident):
        raise IncidentError("may_not_assign")
    if incident.status not in OPEN_STATUSES:
        status_vi, status_en = _label("status", incident.status)
        raise IncidentError("not_open", status_vi=status_vi, status_en=status_en)
    agency = _agency_by_code(session, agency_code) if agency_code else session.get(Agency, incident.agency_id)
    if agency is None:
        raise IncidentError("agency_required")
    if not principal.can("manage_incidents") and agency.id not in principal.agency_ids:
        raise IncidentError("may_not_assign_outside", agency=agency.code)
    names = sorted({name.strip() for name in usernames if name and name.strip()})
    users = {user.username: user for user in session.scalars(select(User).where(User.username.in_(names)))}
    missing = [name for name in names if name not in users or not users[name].is_active]
    if missing:
        raise IncidentError("unknown_user", user=missing[0][:64])
    subtree = agency_subtree(session, agency.id)
    outside = [name for name in names if users[name].agency_id not in subtree]
    if outside:
        raise IncidentError("assignee_outside", user=outside[0][:64], agency=agency.code)
    before_ids = _assignee_ids(session, incident.id)
    before_agency = session.get(Agency, incident.agency_id)
    after_ids = {user.id for user in users.values()}
    session.execute(delete(incident_assignees).where(incident_assignees.c.incident_id == incident.id))
    if after_ids:
        session.execute(
            insert(incident_assignees), [{"incident_id": incident.id, "user_id": user_id} for user_id in after_ids]
        )
    incident.agency_id = agency.id
    before_status = incident.status
    if incident.status == NEW:
        incident.status = ASSIGNED
    event_id = _record(
        session,
        actor,
        now,
        incident,
        "assigned",
        agency=agency.code,
        before_agency=before_agency.code if before_agency else None,
        assignees=names,
        status=[before_status, incident.status],
    )
    told = (after_ids - before_ids) if after_ids else set(agency_users(session, agency.id))
    notify(
        session,
        now,
        user_ids=told - {actor.user_id},
        kind="incident.assigned",
        key=f"incident:{incident.id}:assigned:{event_id}",
        params=incident_params(session, incident, actor=actor.label),
        link=link_of(incident.id),
    )
    return incident


def add_comment(
    session: Session, principal: Principal, actor: Actor, now: datetime, incident_id: int, *, body: str
) -> IncidentComment:
    """Add a comment (also on a closed incident); the assignees are told (`incident.comment`)."""
    incident = _workable(session, principal, incident_id)
    text = _text(body, MAX_TEXT)
    if not text:
        raise IncidentError("comment_empty")
    comment = IncidentComment(
        incident_id=incident.id, author=actor.label, author_user_id=actor.user_id, body=text, created_at=now
    )
    session.add(comment)
    session.flush()
    _record(session, actor, now, incident, "comment", comment_id=comment.id, excerpt=text[:200])
    notify(
        session,
        now,
        user_ids=_assignee_ids(session, incident.id) - {actor.user_id},
        kind="incident.comment",
        key=f"incident:{incident.id}:comment:{comment.id}",
        params=incident_params(session, incident, actor=actor.label, excerpt=text[:200]),
        link=link_of(incident.id),
    )
    return comment


def set_task(
    session: Session,
    principal: Principal,
    actor: Actor,
    now: datetime,
    incident_id: int,
    task_id: int,
    *,
    done: bool,
) -> IncidentTask:
    """Tick or untick a step of the checklist of an open incident."""
    incident = _workable(session, principal, incident_id)
    task = session.get(IncidentTask, task_id)
    if task is None or task.incident_id != incident.id:
        raise IncidentError("task_not_found", task=task_id)
    if incident.status not in OPEN_STATUSES:
        status_vi, status_en = _label("status", incident.status)
        raise IncidentError("not_open", status_vi=status_vi, status_en=status_en)
    if (task.done_at is not None) == done:
        return task
    task.done_at, task.done_by = (now, actor.label) if done else (None, "")
    _record(session, actor, now, incident, "task_done" if done else "task_undone", task_id=task.id, text=task.text_vi)
    return task


def add_attachment(
    session: Session,
    principal: Principal,
    actor: Actor,
    now: datetime,
    incident_id: int,
    *,
    filename: str,
    content: bytes,
    directory: Path,
    max_bytes: int,
) -> IncidentAttachment:
    """Attach a file: PDF, JPEG, PNG, WebP, DOCX, XLSX or plain text, judged by its content and its name alike,
    at most `max_bytes`. The bytes go under `directory` with a generated name; nothing is written when refused.
    (A caller whose transaction fails afterwards removes the file: `attachments.remove`.)"""
    incident = _workable(session, principal, incident_id)
    name = files.clean_filename(filename)
    if not content:
        raise IncidentError("attachment_empty")
    if len(content) > max_bytes:
        raise IncidentError(
            "attachment_too_large", limit_vi=format_number(max_bytes, "vi"), limit_en=format_number(max_bytes, "en")
        )
    kind_code = files.sniff(content)
    extension = files.extension_of(name)
    if kind_code is None:
        raise IncidentError("attachment_type", name=name, allowed=", ".join(files.ALLOWED_EXTENSIONS))
    kind = files.KINDS[kind_code]
    if extension not in kind.extensions:
        raise IncidentError("attachment_mismatch", name=name, kind=kind.label)
    attachment = IncidentAttachment(
        incident_id=incident.id,
        filename=name,
        content_type=kind.content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        storage_key="",
        uploaded_by=actor.label,
        uploaded_at=now,
    )
    attachment.storage_key = files.store(directory, incident.id, content)
    try:
        session.add(attachment)
        session.flush()
    except Exception:
        files.remove(directory, attachment.storage_key)
        raise
    _record(
        session,
        actor,
        now,
        incident,
        "attachment",
        attachment_id=attachment.id,
        filename=name,
        size=len(content),
        content_type=kind.content_type,
        sha256=attachment.sha256,
    )
    return attachment


def attachment_file(
    session: Session, principal: Principal, incident_id: int, attachment_id: int, directory: Path
) -> tuple[IncidentAttachment, Path]:
    """An attachment of an incident the principal may see, and where its bytes are."""
    incident = get_visible(session, principal, incident_id)
    attachment = session.get(IncidentAttachment, attachment_id)
    if attachment is None or attachment.incident_id != incident.id:
        raise IncidentError("attachment_not_found", id=attachment_id)
    path = files.path_of(directory, attachment.storage_key)
    if path is None:
        raise IncidentError("attachment_not_found", id=attachment_id)
    return attachment, path


def _linked(session: Session, one: int, other: int) -> IncidentLink | None:
    return session.scalar(
        select(IncidentLink).where(
            or_(
                (IncidentLink.from_id == one) & (IncidentLink.to_id == other),
                (IncidentLink.from_id == other) & (IncidentLink.to_id == one),
            )
        )
    )


def link(
    session: Session,
    principal: Principal,
    actor: Actor,
    now: datetime,
    incident_id: int,
    *,
    to_id: int,
    kind: str = "related",
) -> IncidentLink:
    """Link two incidents as related (a duplicate link is made by `merge`). Both must be visible, the first
    workable; two incidents are linked once."""
    if kind != "related":
        raise IncidentError("link_kind", kind=kind[:20], allowed="related")
    incident = _workable(session, principal, incident_id)
    if to_id == incident.id:
        raise IncidentError("link_self")
    other = get_visible(session, principal, to_id)
    if _linked(session, incident.id, other.id) is not None:
        raise IncidentError("link_exists", id=incident.id, other=other.id)
    created = IncidentLink(from_id=incident.id, to_id=other.id, kind=kind, created_by=actor.label, created_at=now)
    session.add(created)
    session.flush()
    _record(session, actor, now, incident, "linked", to=other.id, kind=kind)
    _trail(session, other.id, now, actor.label, "linked", to=incident.id, kind=kind)
    return created


def merge(
    session: Session, principal: Principal, actor: Actor, now: datetime, incident_id: int, *, into_id: int
) -> Incident:
    """Merge a duplicate into another incident: the duplicate is closed with `merged_into_id` and a `duplicate`
    link; its comments, checklist and files stay readable on it; the trail of both says so. Merging into itself,
    into an incident already merged away, or in a cycle is refused. Both must be workable by the principal."""
    duplicate = _workable(session, principal, incident_id)
    if into_id == duplicate.id:
        raise IncidentError("merge_self")
    target = _workable(session, principal, into_id)
    if duplicate.merged_into_id is not None:
        raise IncidentError("merge_already", id=duplicate.id, into=duplicate.merged_into_id)
    seen, current = {duplicate.id}, target
    while current.merged_into_id is not None:
        if current.merged_into_id in seen:
            raise IncidentError("merge_cycle", id=duplicate.id, into=target.id)
        seen.add(current.id)
        following = session.get(Incident, current.merged_into_id)
        if following is None:
            break
        current = following
    if current.id != target.id:
        raise IncidentError("merge_target_merged", into=target.id, final=current.id)
    if target.status in (CLOSED, REJECTED):
        status_vi, status_en = _label("status", target.status)
        raise IncidentError("merge_target_closed", into=target.id, status_vi=status_vi, status_en=status_en)
    existing = _linked(session, duplicate.id, target.id)
    if existing is not None:
        session.delete(existing)
        session.flush()
    session.add(
        IncidentLink(from_id=duplicate.id, to_id=target.id, kind="duplicate", created_by=actor.label, created_at=now)
    )
    before = duplicate.status
    duplicate.status = CLOSED
    duplicate.closed_at = now
    duplicate.merged_into_id = target.id
    _record(session, actor, now, duplicate, "merged", into=target.id, status=[before, CLOSED])
    _record(session, actor, now, target, "merged_from", duplicate=duplicate.id, title=duplicate.title)
    return duplicate


# --- reading ----------------------------------------------------------------------------------------


def list_categories(session: Session) -> list[IncidentCategory]:
    """Every category, by code."""
    return list(session.scalars(select(IncidentCategory).order_by(IncidentCategory.code)))


def category_out(category: IncidentCategory, agencies: dict[int, Agency], language: str = "vi") -> dict[str, Any]:
    """The API shape of a category."""
    agency = agencies.get(category.agency_id) if category.agency_id else None
    return {
        "code": category.code,
        "name_vi": category.name_vi,
        "name_en": category.name_en,
        "name": category.name_en if language == "en" else category.name_vi,
        "domain": category.domain,
        "agency": agency.code if agency else None,
        "deadline_hours": {severity: (category.deadline_hours or {}).get(severity) for severity in SEVERITIES},
        "sop": [
            {"vi": step.get("vi", ""), "en": step.get("en", ""), "text": step.get(language, step.get("vi", ""))}
            for step in category.sop or []
        ],
    }


def is_overdue(incident: Incident, now: datetime) -> bool:
    """Open and past its deadline."""
    return incident.status in OPEN_STATUSES and incident.deadline_at is not None and incident.deadline_at < now


def board(
    session: Session,
    principal: Principal,
    now: datetime,
    *,
    status: str | Sequence[str] | None = None,
    agency_code: str | None = None,
    domain: str | None = None,
    severity: str | None = None,
    category_code: str | None = None,
    overdue: bool | None = None,
    assigned_to_me: bool = False,
    open_only: bool = False,
    limit: int = MAX_BOARD,
) -> list[Incident]:
    """The incidents the principal may see, by deadline (soonest first), filtered: status (one or several),
    agency (and its subtree), domain, severity, category, overdue (open and past the deadline) or not, assigned
    to the principal, open only."""
    query = select(Incident).where(_visible(principal))
    statuses = [status] if isinstance(status, str) else list(status or [])
    for one in statuses:
        if one not in STATUSES:
            raise IncidentError("invalid_status", status=one[:20], allowed=", ".join(STATUSES))
    if statuses:
        query = query.where(Incident.status.in_(statuses))
    if open_only:
        query = query.where(Incident.status.in_(OPEN_STATUSES))
    if agency_code:
        query = query.where(
            Incident.agency_id.in_(sorted(agency_subtree(session, _agency_by_code(session, agency_code).id)))
        )
    if domain:
        query = query.where(Incident.domain == domain)
    if severity:
        query = query.where(Incident.severity == _check_severity(severity))
    if category_code:
        category = _category(session, category_code)
        query = query.where(Incident.category_id == (category.id if category else None))
    late = Incident.status.in_(OPEN_STATUSES) & Incident.deadline_at.is_not(None) & (Incident.deadline_at < now)
    if overdue is True:
        query = query.where(late)
    elif overdue is False:
        query = query.where(~late)
    if assigned_to_me:
        query = query.where(
            Incident.id.in_(
                select(incident_assignees.c.incident_id).where(incident_assignees.c.user_id == (principal.user_id or 0))
            )
        )
    order = (Incident.deadline_at.is_(None), Incident.deadline_at, Incident.id)
    return list(session.scalars(query.order_by(*order).limit(max(1, min(limit, MAX_BOARD)))))


def board_by_status(
    session: Session, principal: Principal, now: datetime, language: str = "vi", **filters: Any
) -> dict[str, list[dict[str, Any]]]:
    """The board: for each status (in order), the summaries of its incidents (same filters as `board`)."""
    columns: dict[str, list[dict[str, Any]]] = {status: [] for status in STATUSES}
    for item in summaries(session, board(session, principal, now, **filters), now, language):
        columns[item["status"]].append(item)
    return columns


def summaries(
    session: Session, incidents: Sequence[Incident], now: datetime, language: str = "vi"
) -> list[dict[str, Any]]:
    """The list shape of incidents: codes and names of their agency and category, assignees, overdue."""
    ids = [incident.id for incident in incidents]
    agency_ids = {incident.agency_id for incident in incidents}
    agencies = {a.id: a for a in session.scalars(select(Agency).where(Agency.id.in_(agency_ids)))} if ids else {}
    category_ids = {incident.category_id for incident in incidents if incident.category_id}
    categories = (
        {c.id: c for c in session.scalars(select(IncidentCategory).where(IncidentCategory.id.in_(category_ids)))}
        if category_ids
        else {}
    )
    assignees: dict[int, list[str]] = {}
    if ids:
        for incident_id, username in session.execute(
            select(incident_assignees.c.incident_id, User.username)
            .join(User, User.id == incident_assignees.c.user_id)
            .where(incident_assignees.c.incident_id.in_(ids))
            .order_by(User.username)
        ):
            assignees.setdefault(incident_id, []).append(username)
    english = language == "en"
    items = []
    for incident in incidents:
        agency = agencies.get(incident.agency_id)
        category = categories.get(incident.category_id) if incident.category_id else None
        items.append(
            {
                "id": incident.id,
                "title": incident.title,
                "status": incident.status,
                "status_label": _label("status", incident.status)[1 if english else 0],
                "severity": incident.severity,
                "severity_label": _label("severity", incident.severity)[1 if english else 0],
                "domain": incident.domain,
                "category": category.code if category else None,
                "category_name": (category.name_en if english else category.name_vi) if category else "",
                "agency": agency.code if agency else None,
                "agency_name": ((agency.name_en or agency.name_vi) if english else agency.name_vi) if agency else "",
                "assignees": assignees.get(incident.id, []),
                "deadline_at": incident.deadline_at.isoformat() if incident.deadline_at else None,
                "overdue": is_overdue(incident, now),
                "escalation_stage": incident.escalation_stage,
                "source": incident.source,
                "source_ref": incident.source_ref,
                "alert_id": incident.alert_id,
                "merged_into_id": incident.merged_into_id,
                "created_by": incident.created_by,
                "created_at": incident.created_at.isoformat(),
                "updated_at": incident.updated_at.isoformat(),
                "link": link_of(incident.id),
            }
        )
    return items


def detail(
    session: Session, principal: Principal, now: datetime, incident_id: int, language: str = "vi"
) -> dict[str, Any]:
    """One incident with everything its page shows: the summary, description and place, checklist, comments,
    attachments, links (to incidents the principal may see), incidents merged into it, the trail, and what the
    principal may do (`can`: work, assign, manage, and the status moves open to them)."""
    incident = get_visible(session, principal, incident_id)
    english = language == "en"
    (item,) = summaries(session, [incident], now, language)
    subject = session.get(Subject, incident.subject_id) if incident.subject_id else None
    tasks = session.scalars(
        select(IncidentTask)
        .where(IncidentTask.incident_id == incident.id)
        .order_by(IncidentTask.position, IncidentTask.id)
    )
    comments = session.scalars(
        select(IncidentComment).where(IncidentComment.incident_id == incident.id).order_by(IncidentComment.id)
    )
    stored = session.scalars(
        select(IncidentAttachment).where(IncidentAttachment.incident_id == incident.id).order_by(IncidentAttachment.id)
    )
    links = []
    for row in session.scalars(
        select(IncidentLink)
        .where(or_(IncidentLink.from_id == incident.id, IncidentLink.to_id == incident.id))
        .order_by(IncidentLink.id)
    ):
        other_id = row.to_id if row.from_id == incident.id else row.from_id
        other = session.get(Incident, other_id)
        if other is None or not may_see(session, principal, other):
            continue
        links.append(
            {
                "id": row.id,
                "kind": row.kind,
                "direction": "to" if row.from_id == incident.id else "from",
                "incident": {"id": other.id, "title": other.title, "status": other.status, "link": link_of(other.id)},
                "created_by": row.created_by,
                "created_at": row.created_at.isoformat(),
            }
        )
    duplicates = [
        {"id": other.id, "title": other.title, "link": link_of(other.id)}
        for other in session.scalars(
            select(Incident).where(Incident.merged_into_id == incident.id).order_by(Incident.id)
        )
        if may_see(session, principal, other)
    ]
    events = session.scalars(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident.id).order_by(IncidentEvent.id)
    )
    workable = may_work(session, principal, incident)
    moves = [move for move in MOVES.get(incident.status, ()) if workable]
    if incident.merged_into_id is not None:
        moves = [move for move in moves if move != REOPENED]
    return {
        **item,
        "description": incident.description,
        "subject": subject.code if subject else None,
        "subject_name": ((subject.name_en or subject.name_vi) if english else subject.name_vi) if subject else "",
        "latitude": incident.latitude,
        "longitude": incident.longitude,
        "place_text": incident.place_text,
        "reject_reason": incident.reject_reason,
        "resolution": incident.resolution,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "closed_at": incident.closed_at.isoformat() if incident.closed_at else None,
        "tasks": [
            {
                "id": task.id,
                "position": task.position,
                "text_vi": task.text_vi,
                "text_en": task.text_en,
                "text": (task.text_en or task.text_vi) if english else task.text_vi,
                "done": task.done_at is not None,
                "done_at": task.done_at.isoformat() if task.done_at else None,
                "done_by": task.done_by,
            }
            for task in tasks
        ],
        "comments": [
            {"id": c.id, "author": c.author, "body": c.body, "created_at": c.created_at.isoformat()} for c in comments
        ],
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "uploaded_by": a.uploaded_by,
                "uploaded_at": a.uploaded_at.isoformat(),
                "url": f"/api/v1/incidents/{incident.id}/attachments/{a.id}",
            }
            for a in stored
        ],
        "links": links,
        "duplicates": duplicates,
        "events": [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "action_label": both(f"incidents.action.{e.action}")[1 if english else 0],
                "details": e.details,
            }
            for e in events
        ],
        "can": {
            "work": workable,
            "assign": may_assign(principal, incident) and incident.status in OPEN_STATUSES,
            "manage": principal.can("manage_incidents"),
            "moves": moves,
        },
    }


def my_work(session: Session, principal: Principal, now: datetime, language: str = "vi") -> list[dict[str, Any]]:
    """The open incidents assigned to the principal or owned by their agency subtree, by deadline; each marks
    whether it is assigned to the principal (`mine`)."""
    mine = select(incident_assignees.c.incident_id).where(incident_assignees.c.user_id == (principal.user_id or 0))
    query = select(Incident).where(Incident.status.in_(OPEN_STATUSES))
    if principal.agency_ids:
        query = query.where(or_(Incident.id.in_(mine), Incident.agency_id.in_(sorted(principal.agency_ids))))
    else:
        query = query.where(Incident.id.in_(mine))
    incidents = list(
        session.scalars(
            query.order_by(Incident.deadline_at.is_(None), Incident.deadline_at, Incident.id).limit(MAX_BOARD)
        )
    )
    own = set(session.scalars(mine)) if principal.user_id else set()
    items = summaries(session, incidents, now, language)
    for item in items:
        item["mine"] = item["id"] in own
    return items


def overdue_by_agency(
    session: Session, principal: Principal, now: datetime, language: str = "vi"
) -> list[dict[str, Any]]:
    """The overdue open incidents the principal may see, grouped by owner agency (the agency with the most
    first): [{agency, agency_name, count, items}]."""
    items = summaries(session, board(session, principal, now, overdue=True), now, language)
    groups: dict[str, dict[str, Any]] = {}
    for item in items:
        group = groups.setdefault(
            item["agency"] or "", {"agency": item["agency"], "agency_name": item["agency_name"], "items": []}
        )
        group["items"].append(item)
    result = sorted(groups.values(), key=lambda group: (-len(group["items"]), group["agency"] or ""))
    for group in result:
        group["count"] = len(group["items"])
    return result


def counts_by_status(session: Session, principal: Principal) -> dict[str, int]:
    """How many incidents the principal may see, per status."""
    found: dict[str, int] = {
        status: count
        for status, count in session.execute(
            select(Incident.status, func.count()).where(_visible(principal)).group_by(Incident.status)
        )
    }
    return {status: int(found.get(status, 0)) for status in STATUSES}
