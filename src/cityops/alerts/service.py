"""The rules of alerts: their life (pending → firing → resolved), acknowledgement, silences, who sees them, events.

One alert per key, however many workers try: a rule's alert for a subject is `rule:<rule id>:subject:<id>` (or
`…:feed:<id>`, `…:all`), a feed's lateness alert `feed_late:<feed id>`. Every change of state is one conditional
UPDATE (or an INSERT … ON CONFLICT DO NOTHING) that only one caller can win; only the winner writes the history row
and tells people, so nothing is said twice.

- `raise_condition` (the condition holds): new or resolved → *pending* (started_at); pending for the rule's "for"
  minutes → *firing* (fired_at, fire_count + 1; notify; an incident when the rule says auto). With "for" 0 it fires
  at once.
- `clear_condition` (it no longer holds): pending or firing → *resolved*. A pending alert that never fired just ends,
  resolved without a word to anyone.
- `fire` / `resolve`: the same for alerts that have no rule (feed lateness): they fire at once.

Acknowledging marks who and when, once per firing. A silence (until a moment, with a reason) keeps a firing from
being told; it ends when it expires, when someone lifts it, or when the alert resolves — an alert that fires again
after resolving is told again, and must be acknowledged again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityops import live
from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import SYSTEM, Actor, audit
from cityops.alerts.models import (
    EVENT_CATEGORIES,
    FIRING,
    PENDING,
    RESOLVED,
    SEVERITIES,
    Alert,
    AlertEvent,
    AlertRule,
    Event,
)
from cityops.alerts.rules import mark_all_due
from cityops.geo.models import Subject
from cityops.i18n import both, format_moment
from cityops.incidents.models import IncidentCategory
from cityops.notifications import service as notifications

log = logging.getLogger(__name__)
ACTIVE = (PENDING, FIRING)
MAX_SILENCE = timedelta(days=30)
MAX_REASON = 1000
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


class AlertNotFound(LookupError):
    """No alert with this id that the caller may see."""


class AlertConflict(ValueError):
    """An action that does not fit the alert's state: code `not_active` or `already_acknowledged`."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# What a new episode starts without: the marks of the previous firing.
_FRESH = {
    "resolved_at": None,
    "acknowledged_at": None,
    "acknowledged_by": "",
    "silenced_until": None,
    "silence_reason": "",
    "silenced_by": "",
}


# --- alerts without a rule (feed lateness) ---------------------------------------------------------------------


def fire(
    session: Session,
    key: str,
    now: datetime,
    *,
    kind: str,
    title_vi: str,
    title_en: str,
    severity: str = "warning",
    agency_id: int | None = None,
    feed_id: int | None = None,
    subject_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Make the alert with this key fire; True only for the one caller that turned it on (new or re-fired)."""
    values = {
        "kind": kind,
        "severity": severity,
        "agency_id": agency_id,
        "feed_id": feed_id,
        "subject_id": subject_id,
        "title_vi": title_vi,
        "title_en": title_en,
        "details": details or {},
        "updated_at": now,
    }
    created = session.execute(
        _insert(session)(Alert)
        .values(key=key, state=FIRING, started_at=now, fired_at=now, fire_count=1, **values)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Alert.id)
    ).scalar()
    if created is None:
        created = session.execute(
            update(Alert)
            .where(Alert.key == key, Alert.state == RESOLVED)
            .values(state=FIRING, started_at=now, fired_at=now, fire_count=Alert.fire_count + 1, **_FRESH, **values)
            .returning(Alert.id)
        ).scalar()
    if created is None:  # already firing: keep what it says current, nothing new to tell anyone
        session.execute(
            update(Alert)
            .where(Alert.key == key, Alert.state == FIRING)
            .values(title_vi=title_vi, title_en=title_en, details=values["details"], updated_at=now)
        )
        return False
    session.add(AlertEvent(alert_id=created, event="fired", at=now, details=details or {}))
    session.flush()
    live.alert_changed(session, created)
    _fired(session, now, created, None)
    return True


def resolve(session: Session, key: str, now: datetime, details: dict[str, Any] | None = None) -> bool:
    """Resolve the alert with this key if it is firing; True only for the caller that resolved it."""
    resolved = session.execute(
        update(Alert)
        .where(Alert.key == key, Alert.state == FIRING)
        .values(state=RESOLVED, resolved_at=now, updated_at=now, silenced_until=None, silence_reason="", silenced_by="")
        .returning(Alert.id)
    ).scalar()
    if resolved is None:
        return False
    session.add(AlertEvent(alert_id=resolved, event="resolved", at=now, details=details or {}))
    session.flush()
    live.alert_changed(session, resolved)
    return True


# --- alerts of rules ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A rule's condition holding for one subject (or feed, or the whole): what the alert will say."""

    key: str
    title_vi: str
    title_en: str
    subject_id: int | None = None
    feed_id: int | None = None
    agency_id: int | None = None
    details: dict[str, Any] | None = None


def rule_key(rule_id: int, *, subject_id: int | None = None, feed_id: int | None = None) -> str:
    """The key of a rule's alert for a subject, a feed, or the whole."""
    if feed_id is not None:
        return f"rule:{rule_id}:feed:{feed_id}"
    if subject_id is not None:
        return f"rule:{rule_id}:subject:{subject_id}"
    return f"rule:{rule_id}:all"


def raise_condition(session: Session, now: datetime, rule: AlertRule, finding: Finding) -> str | None:
    """The rule's condition holds for this finding: start (pending) or fire its alert. What changed, if anything:
    "pending", "fired" (possibly both at once: "fired"), or None."""
    values = {
        "kind": rule.kind,
        "rule_id": rule.id,
        "severity": rule.severity,
        "agency_id": finding.agency_id,
        "feed_id": finding.feed_id,
        "subject_id": finding.subject_id,
        "title_vi": finding.title_vi,
        "title_en": finding.title_en,
        "details": finding.details or {},
        "updated_at": now,
    }
    changed: str | None = None
    started = session.execute(
        _insert(session)(Alert)
        .values(key=finding.key, state=PENDING, started_at=now, fire_count=0, **values)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Alert.id)
    ).scalar()
    if started is None:
        started = session.execute(
            update(Alert)
            .where(Alert.key == finding.key, Alert.state == RESOLVED)
            .values(state=PENDING, started_at=now, fired_at=None, **_FRESH, **values)
            .returning(Alert.id)
        ).scalar()
    if started is not None:
        changed = "pending"
        if rule.for_minutes:
            session.add(AlertEvent(alert_id=started, event="pending", at=now, details=finding.details or {}))
    else:
        session.execute(
            update(Alert)
            .where(Alert.key == finding.key, Alert.state.in_(ACTIVE))
            .values(
                title_vi=finding.title_vi,
                title_en=finding.title_en,
                details=finding.details or {},
                severity=rule.severity,
                agency_id=finding.agency_id,
                updated_at=now,
            )
        )
    fired = session.execute(
        update(Alert)
        .where(
            Alert.key == finding.key,
            Alert.state == PENDING,
            Alert.started_at <= now - timedelta(minutes=rule.for_minutes),
        )
        .values(state=FIRING, fired_at=now, fire_count=Alert.fire_count + 1, updated_at=now)
        .returning(Alert.id)
    ).scalar()
    if fired is not None:
        session.add(AlertEvent(alert_id=fired, event="fired", at=now, details=finding.details or {}))
        session.flush()
        _fired(session, now, fired, rule)
        changed = "fired"
    session.flush()
    live.alert_changed(session, fired or started)
    return changed


def clear_condition(session: Session, now: datetime, key: str, details: dict[str, Any] | None = None) -> bool:
    """The condition no longer holds: resolve the alert (pending or firing); True for the caller that did."""
    row = session.execute(
        update(Alert)
        .where(Alert.key == key, Alert.state.in_(ACTIVE))
        .values(state=RESOLVED, resolved_at=now, updated_at=now, silenced_until=None, silence_reason="", silenced_by="")
        .returning(Alert.id, Alert.fired_at)
    ).first()
    if row is None:
        return False
    session.add(
        AlertEvent(
            alert_id=row.id, event="resolved", at=now, details={**(details or {}), "fired": row.fired_at is not None}
        )
    )
    session.flush()
    live.alert_changed(session, row.id)
    return True


def active_keys(session: Session, rule_id: int) -> list[str]:
    """The keys of a rule's alerts that are pending or firing."""
    return list(session.scalars(select(Alert.key).where(Alert.rule_id == rule_id, Alert.state.in_(ACTIVE))))


def apply_findings(session: Session, now: datetime, rule: AlertRule, findings: Iterable[Finding]) -> dict[str, int]:
    """A rule's evaluation: raise what holds, resolve the rule's alerts that no longer do. Counts of changes."""
    counts = {"pending": 0, "fired": 0, "resolved": 0}
    holding: set[str] = set()
    for finding in findings:
        holding.add(finding.key)
        changed = raise_condition(session, now, rule, finding)
        if changed:
            counts[changed] += 1
    for key in active_keys(session, rule.id):
        if key not in holding and clear_condition(session, now, key):
            counts["resolved"] += 1
    return counts


def recipients(session: Session, agency_id: int | None) -> list[int]:
    """Who is told of an alert: the users of the agency it addresses, and the center's operators."""
    users = set(notifications.operators(session))
    if agency_id is not None:
        users.update(notifications.agency_users(session, agency_id))
    return sorted(users)


def _fired(session: Session, now: datetime, alert_id: int, rule: AlertRule | None) -> None:
    """What follows a firing: tell people (unless silenced), and make the incident when the rule says auto."""
    alert = session.get(Alert, alert_id)
    assert alert is not None
    session.refresh(alert)
    silenced = alert.silenced_until is not None and alert.silenced_until > now
    if silenced:
        session.add(AlertEvent(alert_id=alert.id, event="not_notified", at=now, details={"silenced": True}))
    else:
        severity_vi, severity_en = both(f"alerts.severity.{alert.severity}")
        notifications.notify(
            session,
            now,
            user_ids=recipients(session, alert.agency_id),
            kind="alert.fired",
            key=f"alert:{alert.id}:fired:{alert.fire_count}",
            params={
                "title_vi": alert.title_vi,
                "title_en": alert.title_en,
                "severity_vi": severity_vi,
                "severity_en": severity_en,
                "since": format_moment(alert.started_at, "vi"),
            },
            link=f"/alerts/{alert.id}",
        )
    if rule is not None and rule.incident_mode == "auto" and alert.incident_id is None:
        category = (
            session.scalar(select(IncidentCategory.code).where(IncidentCategory.id == rule.incident_category_id))
            if rule.incident_category_id is not None
            else None
        )
        make_incident(session, SYSTEM, now, alert.id, category_code=category)


def make_incident(
    session: Session, actor: Actor, now: datetime, alert_id: int, *, category_code: str | None = None
) -> int | None:
    """The incident of an alert (made once by the incidents service); its id, or None when it could not be made."""
    from cityops.incidents import service as incidents  # incidents reads alerts; import when needed

    before = session.scalar(select(Alert.incident_id).where(Alert.id == alert_id))
    if before is not None:
        return before
    savepoint = session.begin_nested()
    try:
        incident = incidents.create_from_alert(session, actor, now, alert_id, category_code=category_code)
        savepoint.commit()
    except Exception:  # an incident that cannot be made must not stop the alert from firing
        savepoint.rollback()
        log.exception("alert %s: the incident could not be made", alert_id)
        session.add(AlertEvent(alert_id=alert_id, event="incident_failed", at=now, actor=actor.label))
        session.flush()
        return None
    incident_id = getattr(incident, "id", incident)
    if not isinstance(incident_id, int):
        return None
    session.execute(
        update(Alert).where(Alert.id == alert_id, Alert.incident_id.is_(None)).values(incident_id=incident_id)
    )
    session.add(
        AlertEvent(alert_id=alert_id, event="incident", at=now, actor=actor.label, details={"incident": incident_id})
    )
    session.flush()
    return incident_id


# --- reading --------------------------------------------------------------------------------------------------


def firing(session: Session, *, agency_ids: Iterable[int] | None = None, kind: str | None = None) -> list[Alert]:
    """The alerts firing now, newest first; only those addressed to the given agencies when given."""
    query = select(Alert).where(Alert.state == FIRING)
    if agency_ids is not None:
        query = query.where(Alert.agency_id.in_(list(agency_ids)))
    if kind is not None:
        query = query.where(Alert.kind == kind)
    return list(session.scalars(query.order_by(Alert.started_at.desc(), Alert.id.desc())))


def events(session: Session, key: str) -> list[AlertEvent]:
    """The history of the alert with this key, oldest first."""
    return list(
        session.scalars(
            select(AlertEvent)
            .join(Alert, Alert.id == AlertEvent.alert_id)
            .where(Alert.key == key)
            .order_by(AlertEvent.id)
        )
    )


STATE_FILTERS = ("active", "firing", "pending", "resolved", "all")


def list_alerts(
    session: Session,
    principal: Principal,
    *,
    state: str = "all",
    severity: str = "",
    kind: str = "",
    rule_code: str = "",
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[Alert], int]:
    """The alerts the principal may see: firing first, then pending, then resolved; worst first; newest first."""
    query = select(Alert)
    if not principal.province_wide:
        query = query.where(Alert.agency_id.in_(sorted(principal.agency_ids) or [0]))
    if state == "active":
        query = query.where(Alert.state.in_(ACTIVE))
    elif state in (FIRING, PENDING, RESOLVED):
        query = query.where(Alert.state == state)
    if severity:
        query = query.where(Alert.severity == severity)
    if kind:
        query = query.where(Alert.kind == kind)
    if rule_code:
        query = query.where(Alert.rule_id.in_(select(AlertRule.id).where(AlertRule.code == rule_code)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = (
        case((Alert.state == FIRING, 0), (Alert.state == PENDING, 1), else_=2),
        case(*((Alert.severity == name, rank) for name, rank in SEVERITY_RANK.items()), else_=3),
        Alert.updated_at.desc(),
        Alert.id.desc(),
    )
    return list(session.scalars(query.order_by(*order).limit(limit).offset(offset))), int(total)


def get_alert(session: Session, principal: Principal, alert_id: int) -> Alert:
    """One alert the principal may see, or AlertNotFound (another agency's alert is as if it did not exist)."""
    alert = session.get(Alert, alert_id) if 0 < alert_id < 2**63 else None
    if alert is None or not may_see(principal, alert):
        raise AlertNotFound(alert_id)
    return alert


def may_see(principal: Principal, alert: Alert) -> bool:
    """Province-wide roles see every alert; an agency the alerts addressed to its subtree."""
    return principal.province_wide or (alert.agency_id is not None and alert.agency_id in principal.agency_ids)


def history(session: Session, alert_id: int) -> list[AlertEvent]:
    """What happened to an alert, oldest first."""
    return list(session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)))


def alerts_out(session: Session, alerts: list[Alert], now: datetime) -> list[dict[str, Any]]:
    """Alerts for the API and pages: what, how bad, since when, acknowledged by whom, silenced until when."""
    rule_ids = {a.rule_id for a in alerts if a.rule_id is not None}
    rules = {r.id: r for r in session.scalars(select(AlertRule).where(AlertRule.id.in_(sorted(rule_ids) or [0])))}
    subject_ids = sorted({a.subject_id for a in alerts if a.subject_id is not None})
    subjects = {s.id: s for s in session.scalars(select(Subject).where(Subject.id.in_(subject_ids or [0])))}
    agency_ids = sorted({a.agency_id for a in alerts if a.agency_id is not None})
    agencies = {a.id: a for a in session.scalars(select(Agency).where(Agency.id.in_(agency_ids or [0])))}
    out = []
    for alert in alerts:
        rule = rules.get(alert.rule_id or 0)
        subject = subjects.get(alert.subject_id or 0)
        agency = agencies.get(alert.agency_id or 0)
        silenced = alert.silenced_until is not None and alert.silenced_until > now
        out.append(
            {
                "id": alert.id,
                "key": alert.key,
                "kind": alert.kind,
                "state": alert.state,
                "severity": alert.severity,
                "title_vi": alert.title_vi,
                "title_en": alert.title_en,
                "rule": rule.code if rule else None,
                "rule_name_vi": rule.name_vi if rule else "",
                "rule_name_en": rule.name_en if rule else "",
                "incident_mode": rule.incident_mode if rule else "none",
                "subject": subject.code if subject else None,
                "subject_name_vi": subject.name_vi if subject else "",
                "subject_name_en": subject.name_en if subject else "",
                "agency": agency.code if agency else None,
                "agency_name_vi": agency.name_vi if agency else "",
                "agency_name_en": agency.name_en if agency else "",
                "details": alert.details or {},
                "started_at": alert.started_at.isoformat(),
                "fired_at": alert.fired_at.isoformat() if alert.fired_at else None,
                "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
                "updated_at": alert.updated_at.isoformat(),
                "fire_count": alert.fire_count,
                "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
                "acknowledged_by": alert.acknowledged_by or None,
                "silenced_until": alert.silenced_until.isoformat() if silenced and alert.silenced_until else None,
                "silence_reason": alert.silence_reason if silenced else "",
                "silenced_by": alert.silenced_by if silenced else "",
                "incident_id": alert.incident_id,
            }
        )
    return out


def history_out(entries: list[AlertEvent]) -> list[dict[str, Any]]:
    """An alert's history for the API."""
    return [
        {"event": e.event, "at": e.at.isoformat(), "actor": e.actor or None, "details": e.details or {}}
        for e in entries
    ]


# --- acknowledging and silencing ------------------------------------------------------------------------------


def acknowledge(session: Session, actor: Actor, principal: Principal, now: datetime, alert_id: int) -> Alert:
    """Mark an active alert acknowledged (who, when): once per firing."""
    alert = get_alert(session, principal, alert_id)
    done = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.state.in_(ACTIVE), Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=actor.label, updated_at=now)
        .returning(Alert.id)
    ).scalar()
    session.refresh(alert)
    if not done:
        if alert.state not in ACTIVE:
            raise AlertConflict("not_active", alert=alert.id)
        raise AlertConflict(
            "already_acknowledged",
            alert=alert.id,
            who=alert.acknowledged_by,
            at=format_moment(alert.acknowledged_at, "vi"),
        )
    session.add(AlertEvent(alert_id=alert.id, event="acknowledged", at=now, actor=actor.label))
    audit(session, actor, "alert.acknowledge", "alert", alert.id, now, {"key": alert.key})
    session.flush()
    live.alert_changed(session, alert.id)
    return alert


def silence(
    session: Session,
    actor: Actor,
    principal: Principal,
    now: datetime,
    alert_id: int,
    *,
    until: datetime,
    reason: str,
) -> Alert:
    """Silence an active alert until a moment (at most 30 days ahead), with a reason: it is not told while silenced."""
    alert = get_alert(session, principal, alert_id)
    reason = reason.replace("\x00", "").strip()[:MAX_REASON]
    if alert.state not in ACTIVE:
        raise AlertConflict("not_active", alert=alert.id)
    session.execute(
        update(Alert)
        .where(Alert.id == alert.id)
        .values(silenced_until=until, silence_reason=reason, silenced_by=actor.label, updated_at=now)
    )
    session.refresh(alert)
    details = {"until": until.isoformat(), "reason": reason}
    session.add(AlertEvent(alert_id=alert.id, event="silenced", at=now, actor=actor.label, details=details))
    audit(session, actor, "alert.silence", "alert", alert.id, now, {"key": alert.key, **details})
    session.flush()
    live.alert_changed(session, alert.id)
    return alert


def unsilence(session: Session, actor: Actor, principal: Principal, now: datetime, alert_id: int) -> Alert:
    """Lift an alert's silence (nothing to do when it is not silenced)."""
    alert = get_alert(session, principal, alert_id)
    done = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.silenced_until.is_not(None), Alert.silenced_until > now)
        .values(silenced_until=None, silence_reason="", silenced_by="", updated_at=now)
        .returning(Alert.id)
    ).scalar()
    session.refresh(alert)
    if done:
        session.add(AlertEvent(alert_id=alert.id, event="unsilenced", at=now, actor=actor.label))
        audit(session, actor, "alert.unsilence", "alert", alert.id, now, {"key": alert.key})
        session.flush()
        live.alert_changed(session, alert.id)
    return alert


def silence_until(now: datetime, *, minutes: int | None, until: datetime | None) -> datetime | None:
    """The end of a silence asked for by minutes or by a moment; None when it is not in (now, now + 30 days]."""
    if (minutes is None) == (until is None):
        return None
    end = now + timedelta(minutes=minutes) if minutes is not None else until
    assert end is not None
    if end.tzinfo is None or end <= now or end > now + MAX_SILENCE:
        return None
    return end


# --- events -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventProblem:
    """Why one reported event was not kept."""

    code: str
    field: str
    params: dict[str, Any]

    def out(self, index: int) -> dict[str, Any]:
        message_vi, message_en = both(f"alerts.event_error.{self.code}", **self.params)
        return {
            "index": index,
            "code": self.code,
            "field": self.field,
            "message_vi": message_vi,
            "message_en": message_en,
        }


class EventInvalid(ValueError):
    def __init__(self, problem: EventProblem) -> None:
        super().__init__(problem.code)
        self.problem = problem


EVENT_FIELDS = frozenset(
    {"category", "type", "severity", "source", "title", "subject", "agency", "details", "occurred_at"}
)
FUTURE_TOLERANCE = timedelta(minutes=5)


def record_event(
    session: Session,
    now: datetime,
    *,
    category: str,
    type: str,
    severity: str = "info",
    source: str = "",
    title: str = "",
    subject_id: int | None = None,
    agency_id: int | None = None,
    details: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Keep one event (a security event, a camera offline, a citizen report …) and make the event rules due."""
    if category not in EVENT_CATEGORIES:
        raise EventInvalid(
            EventProblem(
                "bad_category", "category", {"category": str(category)[:40], "allowed": ", ".join(EVENT_CATEGORIES)}
            )
        )
    if severity not in SEVERITIES:
        raise EventInvalid(
            EventProblem("bad_severity", "severity", {"severity": str(severity)[:40], "allowed": ", ".join(SEVERITIES)})
        )
    event = Event(
        category=category,
        type=type,
        severity=severity,
        source=source,
        title=title,
        subject_id=subject_id,
        agency_id=agency_id,
        details=details or {},
        occurred_at=occurred_at or now,
        received_at=now,
    )
    session.add(event)
    session.flush()
    mark_all_due(session, now, kind="events")
    return event


def _event_text(item: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = item.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or "\x00" in value or len(value) > limit:
        raise EventInvalid(EventProblem("bad_text", name, {"field": name, "limit": limit}))
    if required and not value.strip():
        raise EventInvalid(EventProblem("missing", name, {"field": name}))
    return value.strip()


def _event_values(session: Session, principal: Principal, now: datetime, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise EventInvalid(EventProblem("not_object", "", {}))
    unknown = sorted(set(item) - EVENT_FIELDS)
    if unknown:
        raise EventInvalid(EventProblem("unknown_field", str(unknown[0])[:40], {"field": str(unknown[0])[:40]}))
    category = _event_text(item, "category", 16, required=True)
    if category not in EVENT_CATEGORIES:
        raise EventInvalid(
            EventProblem(
                "bad_category", "category", {"category": category[:40], "allowed": ", ".join(EVENT_CATEGORIES)}
            )
        )
    event_type = _event_text(item, "type", 64, required=True)
    severity = _event_text(item, "severity", 16) or "info"
    if severity not in SEVERITIES:
        raise EventInvalid(
            EventProblem("bad_severity", "severity", {"severity": severity[:40], "allowed": ", ".join(SEVERITIES)})
        )
    source = _event_text(item, "source", 64) or principal.label[:64]
    title = _event_text(item, "title", 1000)
    subject_id = None
    subject_code = _event_text(item, "subject", 64)
    if subject_code:
        subject_id = session.scalar(select(Subject.id).where(Subject.code == subject_code))
        if subject_id is None:
            raise EventInvalid(EventProblem("unknown_subject", "subject", {"subject": subject_code}))
    agency_id = principal.agency_id
    agency_code = _event_text(item, "agency", 64)
    if agency_code:
        agency_id = session.scalar(select(Agency.id).where(Agency.code == agency_code))
        if agency_id is None or not (principal.province_wide or agency_id in principal.agency_ids):
            raise EventInvalid(EventProblem("unknown_agency", "agency", {"agency": agency_code}))
    details = item.get("details") or {}
    if not isinstance(details, dict) or len(repr(details)) > 10_000 or "\x00" in repr(details):
        raise EventInvalid(EventProblem("bad_details", "details", {}))
    occurred_at = now
    raw_moment = item.get("occurred_at")
    if raw_moment not in (None, ""):
        try:
            if not isinstance(raw_moment, str):
                raise ValueError
            occurred_at = datetime.fromisoformat(raw_moment)
        except ValueError:
            raise EventInvalid(EventProblem("bad_moment", "occurred_at", {"text": str(raw_moment)[:40]})) from None
        if occurred_at.tzinfo is None:
            raise EventInvalid(EventProblem("moment_without_offset", "occurred_at", {"text": raw_moment[:40]}))
        if occurred_at > now + FUTURE_TOLERANCE:
            raise EventInvalid(EventProblem("moment_in_future", "occurred_at", {"text": raw_moment[:40]}))
    return {
        "category": category,
        "type": event_type,
        "severity": severity,
        "source": source,
        "title": title,
        "subject_id": subject_id,
        "agency_id": agency_id,
        "details": details,
        "occurred_at": occurred_at,
    }


def record_events(session: Session, principal: Principal, now: datetime, items: list[Any]) -> dict[str, Any]:
    """Keep every good event of a list; say why each bad one was not kept. The answer of POST /api/v1/events."""
    kept: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            values = _event_values(session, principal, now, item)
        except EventInvalid as exc:
            rejected.append(exc.problem.out(index))
            continue
        event = record_event(session, now, **values)
        kept.append({"index": index, "id": event.id})
    return {"accepted": len(kept), "rejected": rejected, "items": kept}


def count_events(
    session: Session,
    *,
    category: str,
    event_type: str,
    min_severity: str,
    start: datetime,
    end: datetime,
    subject_id: int | None,
) -> int:
    """How many events of a category (and type) at or above a severity occurred in [start, end]."""
    wanted = SEVERITIES[SEVERITIES.index(min_severity) :] if min_severity in SEVERITIES else SEVERITIES
    query = (
        select(func.count())
        .select_from(Event)
        .where(
            Event.category == category,
            Event.severity.in_(wanted),
            Event.occurred_at >= start,
            Event.occurred_at <= end,
        )
    )
    if event_type:
        query = query.where(Event.type == event_type)
    if subject_id is not None:
        query = query.where(Event.subject_id == subject_id)
    return int(session.scalar(query) or 0)


def silenced_now(alert: Alert, now: datetime) -> bool:
    """Whether the alert is silenced at this moment."""
    return alert.silenced_until is not None and alert.silenced_until > now
