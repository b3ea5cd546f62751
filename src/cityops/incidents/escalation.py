"""Escalation of open incidents whose deadline approaches or has passed (run by the worker every tick).

Stages, measured against the time the incident was allowed (deadline − creation):
1. **deadline approaching** — a quarter of the allowed time or less is left → the handlers are told
   (`incident.deadline_soon`): the assignees, or the owner agency's users when there are none;
2. **overdue** — the deadline has passed → the handlers and the owner agency's heads (`incident.overdue`);
3. **escalated** — overdue by half the allowed time, or by 24 hours, whichever comes first → the center's
   operators and admins (`incident.escalated`).

An incident is raised from the stage it was seen at to the stage it has reached by one conditional UPDATE
(`WHERE escalation_stage = <seen>`): of two workers at the same moment, one wins and the other changes nothing,
so no one is told twice (the notification keys, which name the deadline, are a second guard). Each stage passed
gets a trail entry and an audit entry. A stage overtaken in the same step (a worker that was down) is recorded
but its message not sent: "deadline approaching" is not sent for an incident already overdue.
Moving the deadline (PATCH) starts escalation again from stage 0.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cityops.accounts.service import SYSTEM, audit
from cityops.clock import Clock
from cityops.db.engine import Database
from cityops.incidents.models import OPEN_STATUSES, Incident, IncidentEvent, incident_assignees
from cityops.incidents.service import incident_params, link_of
from cityops.notifications.service import agency_users, notify, operators

log = logging.getLogger(__name__)
APPROACH_FRACTION = 0.25  # stage 1 when this share of the allowed time is left
ESCALATE_FRACTION = 0.5  # stage 3 when overdue by this share of the allowed time …
ESCALATE_MAX = timedelta(hours=24)  # … or by this long, whichever comes first
LAST_STAGE = 3
KINDS = {1: "incident.deadline_soon", 2: "incident.overdue", 3: "incident.escalated"}


def stage_reached(created_at: datetime, deadline_at: datetime, now: datetime) -> int:
    """The escalation stage an open incident has reached at `now` (0 to 3)."""
    allowed = max(deadline_at - created_at, timedelta(minutes=1))
    if now >= deadline_at + min(allowed * ESCALATE_FRACTION, ESCALATE_MAX):
        return 3
    if now >= deadline_at:
        return 2
    if now >= deadline_at - allowed * APPROACH_FRACTION:
        return 1
    return 0


def _handlers(session: Session, incident: Incident) -> set[int]:
    assigned = set(
        session.scalars(select(incident_assignees.c.user_id).where(incident_assignees.c.incident_id == incident.id))
    )
    return assigned or set(agency_users(session, incident.agency_id))


def _recipients(session: Session, incident: Incident, stage: int) -> set[int]:
    if stage == 1:
        return _handlers(session, incident)
    if stage == 2:
        return _handlers(session, incident) | set(agency_users(session, incident.agency_id, heads_only=True))
    return set(operators(session))


def raise_stage(session: Session, incident_id: int, seen: int, target: int, now: datetime) -> int:
    """Raise one incident from stage `seen` to `target` if no one else did; the stages taken (0 when another
    worker was first or the incident was closed meanwhile)."""
    won = session.execute(
        update(Incident)
        .where(
            Incident.id == incident_id,
            Incident.escalation_stage == seen,
            Incident.status.in_(OPEN_STATUSES),
        )
        .values(escalation_stage=target)
        .execution_options(synchronize_session=False)
    )
    if not getattr(won, "rowcount", 0):
        return 0
    incident = session.get(Incident, incident_id)
    if incident is None or incident.deadline_at is None:
        return 0
    session.refresh(incident)
    deadline = incident.deadline_at.isoformat()
    for stage in range(seen + 1, target + 1):
        told: list[int] = []
        if stage == target or stage > 1:
            told = notify(
                session,
                now,
                user_ids=_recipients(session, incident, stage),
                kind=KINDS[stage],
                key=f"incident:{incident.id}:stage:{stage}:{deadline}",
                params=incident_params(session, incident),
                link=link_of(incident.id),
            )
        details = {"stage": stage, "kind": KINDS[stage], "deadline_at": deadline, "notified": len(told)}
        session.add(
            IncidentEvent(incident_id=incident.id, at=now, actor=SYSTEM.label, action="escalated", details=details)
        )
        audit(session, SYSTEM, "incident.escalated", "incident", incident.id, now, details)
    session.flush()
    return target - seen


def escalate(db: Database, clock: Clock) -> int:
    """Raise every open incident to the escalation stage its deadline calls for; the number of stages taken."""
    now = clock()
    with db.reading() as session:
        candidates = session.execute(
            select(Incident.id, Incident.created_at, Incident.deadline_at, Incident.escalation_stage).where(
                Incident.status.in_(OPEN_STATUSES),
                Incident.deadline_at.is_not(None),
                Incident.escalation_stage < LAST_STAGE,
            )
        ).all()
    steps = 0
    for incident_id, created_at, deadline_at, seen in candidates:
        target = stage_reached(created_at, deadline_at, now) if deadline_at is not None else 0
        if target <= seen:
            continue
        try:
            with db.writing() as session:
                steps += raise_stage(session, incident_id, seen, target, now)
        except Exception:  # one incident's failure must not stop the others' escalation
            log.exception("escalating incident %s failed", incident_id)
    return steps
