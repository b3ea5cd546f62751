"""The rules of alerts: fire one (once per key, however many workers try), resolve it, list what is firing.

Issue 5 adds rules, acknowledgement and silences on top; feeds use `fire` and `resolve` for lateness today.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityops.alerts.models import FIRING, RESOLVED, Alert, AlertEvent


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


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
        .values(key=key, state=FIRING, started_at=now, fire_count=1, **values)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Alert.id)
    ).scalar()
    if created is None:
        created = session.execute(
            update(Alert)
            .where(Alert.key == key, Alert.state == RESOLVED)
            .values(state=FIRING, started_at=now, resolved_at=None, fire_count=Alert.fire_count + 1, **values)
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
    return True


def resolve(session: Session, key: str, now: datetime, details: dict[str, Any] | None = None) -> bool:
    """Resolve the alert with this key if it is firing; True only for the caller that resolved it."""
    resolved = session.execute(
        update(Alert)
        .where(Alert.key == key, Alert.state == FIRING)
        .values(state=RESOLVED, resolved_at=now, updated_at=now)
        .returning(Alert.id)
    ).scalar()
    if resolved is None:
        return False
    session.add(AlertEvent(alert_id=resolved, event="resolved", at=now, details=details or {}))
    session.flush()
    return True


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
