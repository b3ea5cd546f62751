"""Tables of alert rules, alerts (one row per rule and subject, de-duplicated by key), their history, and events.

An alert is *pending* while its condition holds for less than the rule's "for" duration, *firing* after, and
*resolved* when the condition no longer holds. Acknowledging and silencing are marks on the alert, kept in its
history. Events (security, camera, citizen …) are facts that event rules count within a window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
STATES = (PENDING, FIRING, RESOLVED)
SEVERITIES = ("info", "warning", "critical")
RULE_KINDS = ("threshold", "off_target", "change", "feed_health", "events")
INCIDENT_MODES = ("none", "manual", "auto")  # what a firing alert of the rule does about an incident
EVENT_CATEGORIES = ("security", "camera", "citizen", "system")


class AlertRule(Base):
    """A rule: what condition, on what (indicator, feed, events), for which subjects, and what follows from it.

    `params` holds the kind's parameters (see alerts/rules.py): threshold {"op": ">", "value": 50};
    off_target {"tolerance_pct": 5}; change {"periods": 1, "op": ">", "pct": 20 | "abs": 10};
    feed_health {"condition": "late" | "down" | "trust_below", "level": 0.6}; events {"category": "security",
    "type": "…", "min_severity": "warning", "count": 5, "window_minutes": 10}.
    """

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(24))
    indicator_id: Mapped[int | None] = mapped_column(ForeignKey("indicators.id", ondelete="CASCADE"), index=True)
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))  # None = every feed
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"))  # None = every subject
    params: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    for_minutes: Mapped[int] = mapped_column(Integer, default=0)
    incident_mode: Mapped[str] = mapped_column(String(16), default="none")
    incident_category_id: Mapped[int | None] = mapped_column(ForeignKey("incident_categories.id"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))  # whom its alerts address
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Evaluation: due when data arrives (ingest sets due_at) or on schedule; one worker claims it at a time.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    eval_owner: Mapped[str] = mapped_column(String(64), default="")
    eval_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Alert(Base):
    """One alert per rule and subject: its key de-duplicates it; it fires, resolves and may fire again."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_state_agency", "state", "agency_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # e.g. "feed_late:12", "rule:7:subject:301"
    kind: Mapped[str] = mapped_column(String(40))  # feed_late, feed_down, threshold …
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    state: Mapped[str] = mapped_column(String(16), default=FIRING)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))  # whom it is addressed to
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"))
    title_vi: Mapped[str] = mapped_column(Text, default="")
    title_en: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())  # when the condition began (pending or firing)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fire_count: Mapped[int] = mapped_column(Integer, default=1)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str] = mapped_column(String(128), default="")
    silenced_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    silence_reason: Mapped[str] = mapped_column(Text, default="")
    silenced_by: Mapped[str] = mapped_column(String(128), default="")
    # The incident made from it (incidents.alert_id points back with a foreign key; this is its quick copy).
    incident_id: Mapped[int | None] = mapped_column(Integer)


class AlertEvent(Base):
    """What happened to an alert: pending, fired, resolved, acknowledged, silenced, unsilenced, incident …"""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class Event(Base):
    """A fact reported by a system or a person (a security event, a camera going offline, a citizen report …)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_category_type_occurred", "category", "type", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    category: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16), default="info")
    source: Mapped[str] = mapped_column(String(64), default="")
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"))
    title: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
