"""Live updates: one bus (in-process, or PostgreSQL LISTEN/NOTIFY across processes) and server-sent events.

Services announce a change with `publish(session, topic, payload)` inside their transaction: on PostgreSQL it is a
`pg_notify` (delivered by the server at commit, dropped on rollback); on SQLite it waits in the session and goes to
this process's bus after the commit (dropped on rollback). The small helpers below build the contract's payloads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from cityops.live.bus import CHANNEL, NOTIFY_LIMIT, TOPICS, bus_for, encode

_PENDING = "cityops_live_pending"
MAX_INDICATORS = 150  # a values message names at most this many indicators (NOTIFY's 8000 bytes)


def publish(session: Session, topic: str, payload: dict[str, Any]) -> None:
    """Announce a change made in this session's transaction: delivered once it commits, never if it rolls back."""
    assert topic in TOPICS, topic
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        body = encode(topic, payload)
        if len(body.encode()) <= NOTIFY_LIMIT:
            session.execute(text("SELECT pg_notify(:channel, :body)"), {"channel": CHANNEL, "body": body})
        return
    pending: list[tuple[str, str, dict[str, Any]]] = session.info.setdefault(_PENDING, [])
    entry = (bind.engine.url.render_as_string(hide_password=False), topic, payload)
    if entry not in pending:  # the same change told twice in one transaction is told once (as NOTIFY does)
        pending.append(entry)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for url, topic, payload in session.info.pop(_PENDING, []):
        bus_for(url).publish(topic, payload)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


# --- the contract's payloads ------------------------------------------------------------------------------------


def values_changed(session: Session, indicator_ids: Iterable[int], now: datetime) -> None:
    """New values of these indicators were stored."""
    from cityops.catalog.models import Indicator

    ids = sorted(set(indicator_ids))
    if not ids:
        return
    codes = sorted(session.scalars(select(Indicator.code).where(Indicator.id.in_(ids))))
    publish(session, "values", {"indicators": codes[:MAX_INDICATORS], "at": now.isoformat()})


def alert_changed(session: Session, alert_id: int | None) -> None:
    """An alert changed state (pending, firing, resolved, acknowledged, silenced)."""
    from cityops.alerts.models import Alert
    from cityops.geo.models import Subject

    if alert_id is None:
        return
    row = session.execute(
        select(Alert.id, Alert.key, Alert.state, Alert.severity, Subject.code, Alert.title_vi, Alert.title_en)
        .outerjoin(Subject, Subject.id == Alert.subject_id)
        .where(Alert.id == alert_id)
    ).first()
    if row is None:
        return
    publish(
        session,
        "alerts",
        {
            "id": row[0],
            "key": row[1],
            "state": row[2],
            "severity": row[3],
            "subject": row[4],
            "title_vi": row[5],
            "title_en": row[6],
        },
    )


def incident_changed(session: Session, incident: Any) -> None:
    """An incident was opened or changed."""
    from cityops.accounts.models import Agency

    agency = session.scalar(select(Agency.code).where(Agency.id == incident.agency_id))
    publish(
        session,
        "incidents",
        {"id": incident.id, "status": incident.status, "severity": incident.severity, "agency": agency},
    )


def report_stored(session: Session, report: Any) -> None:
    """A citizen's report was stored."""
    from cityops.feedback.models import FeedbackCategory
    from cityops.geo.models import Subject

    category = session.scalar(select(FeedbackCategory.code).where(FeedbackCategory.id == report.category_id))
    subject = session.scalar(select(Subject.code).where(Subject.id == report.subject_id)) if report.subject_id else None
    publish(session, "reports", {"tracking_code": report.tracking_code, "category": category, "subject": subject})
