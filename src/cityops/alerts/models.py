"""Tables of alerts (one row per rule and subject, de-duplicated by key) and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime

FIRING, RESOLVED = "firing", "resolved"
SEVERITIES = ("info", "warning", "critical")


class Alert(Base):
    """One alert per rule and subject: its key de-duplicates it; it fires, resolves and may fire again."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_state_agency", "state", "agency_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # e.g. "feed_late:12"
    kind: Mapped[str] = mapped_column(String(40))  # feed_late, feed_down, threshold …
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    state: Mapped[str] = mapped_column(String(16), default=FIRING)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))  # whom it is addressed to
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"))
    title_vi: Mapped[str] = mapped_column(Text, default="")
    title_en: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fire_count: Mapped[int] = mapped_column(Integer, default=1)


class AlertEvent(Base):
    """What happened to an alert: fired, resolved (and, later, acknowledged, silenced …)."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
