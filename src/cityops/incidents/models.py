"""Tables of incident categories (with their SOP and deadlines), incidents and what hangs on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime

NEW, ASSIGNED, IN_PROGRESS = "new", "assigned", "in_progress"
RESOLVED, CLOSED, REJECTED = "resolved", "closed", "rejected"
STATUSES = (NEW, ASSIGNED, IN_PROGRESS, RESOLVED, CLOSED, REJECTED)
OPEN_STATUSES = (NEW, ASSIGNED, IN_PROGRESS)
SEVERITIES = ("low", "medium", "high", "critical")
SOURCES = ("manual", "alert", "citizen")
LINK_KINDS = ("related", "duplicate")

incident_assignees = Table(
    "incident_assignees",
    Base.metadata,
    Column("incident_id", ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class IncidentCategory(Base):
    """A kind of incident: its domain, the agency that owns it by default, deadlines by severity, its SOP.

    `deadline_hours` maps a severity to hours ({"critical": 4, "high": 24, …}); `sop` is the checklist every
    incident of the category starts with: [{"vi": "…", "en": "…"}, …]. Loaded from incidents/data/categories.toml.
    """

    __tablename__ = "incident_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(32), default="")
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    deadline_hours: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    sop: Mapped[list[Any]] = mapped_column(JsonType, default=list)


class Incident(Base):
    """Work for people: who owns it, who does it, by when, where it stands, where it came from."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_status_agency", "status", "agency_id"),
        Index("ix_incidents_open_deadline", "status", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    domain: Mapped[str] = mapped_column(String(32), default="")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("incident_categories.id"))
    severity: Mapped[str] = mapped_column(String(16), default="medium")
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    place_text: Mapped[str] = mapped_column(String(255), default="")
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)  # owner agency
    status: Mapped[str] = mapped_column(String(16), default=NEW)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16), default="manual")
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"), index=True)
    source_ref: Mapped[str] = mapped_column(String(128), default="")  # e.g. a citizen report's id
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    reject_reason: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Escalation: the highest stage already acted on (0 none); raised by one conditional UPDATE per stage.
    escalation_stage: Mapped[int] = mapped_column(Integer, default=0)


class IncidentTask(Base):
    """One step of an incident's SOP checklist (copied from its category when it is made, or added by hand)."""

    __tablename__ = "incident_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    text_vi: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_by: Mapped[str] = mapped_column(String(128), default="")


class IncidentComment(Base):
    """A comment on an incident."""

    __tablename__ = "incident_comments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(128))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IncidentAttachment(Base):
    """A file attached to an incident; its bytes are kept outside the web root, under the data directory."""

    __tablename__ = "incident_attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))  # a path relative to the attachments directory
    uploaded_by: Mapped[str] = mapped_column(String(128))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IncidentLink(Base):
    """A link between two incidents: related, or `from` is a duplicate of `to` (merged into it)."""

    __tablename__ = "incident_links"
    __table_args__ = (UniqueConstraint("from_id", "to_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    to_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="related")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IncidentEvent(Base):
    """The trail: who did what to an incident, when (created, assigned, status, comment, task, attachment …)."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
