"""The province's information systems, their security events, vulnerabilities and website checks.

An information system is also a subject of kind "entity" (geo `subjects`, code `system.<code>`), so that the
`attt.*` indicators (subject_level "entity") are stored per system. Security events are normalised into
`security_events` (raw text kept); the events that rules count are also written as `alerts.models.Event` rows of
category "security".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime

# One severity scale for every source: 0–10 (CEF's), named by band.
SEVERITY_LEVELS = ("info", "low", "medium", "high", "critical")
SITE_STATUSES = ("unknown", "up", "down", "changed")
VULN_STATUSES = ("open", "mitigated", "fixed", "accepted")


class InformationSystem(Base):
    """A registered information system of the province: whose, at what security level (1–5, Decree 85/2016/NĐ-CP),
    which hosts its events come from, and the website to watch if it has one."""

    __tablename__ = "information_systems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255), default="")
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"))
    owner_agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    security_level: Mapped[int] = mapped_column(SmallInteger, default=2)
    hosts: Mapped[list[Any]] = mapped_column(JsonType, default=list)  # host names and addresses of its events
    description: Mapped[str] = mapped_column(Text, default="")
    # The website check (optional).
    website_url: Mapped[str] = mapped_column(Text, default="")
    website_expected_text: Mapped[str] = mapped_column(String(255), default="")
    website_status: Mapped[str] = mapped_column(String(16), default="unknown")
    website_status_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    website_content_hash: Mapped[str] = mapped_column(String(64), default="")
    website_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    check_owner: Mapped[str] = mapped_column(String(64), default="")
    check_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SecurityEvent(Base):
    """One normalised security event, with the raw text as received."""

    __tablename__ = "security_events"
    __table_args__ = (
        Index("ix_security_events_system_occurred", "system_id", "occurred_at"),
        Index("ix_security_events_occurred", "occurred_at"),
        Index("ix_security_events_src_ip", "src_ip"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system_id: Mapped[int | None] = mapped_column(ForeignKey("information_systems.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    host: Mapped[str] = mapped_column(String(255), default="")
    app: Mapped[str] = mapped_column(String(128), default="")
    severity: Mapped[int] = mapped_column(SmallInteger, default=0)  # 0–10
    level: Mapped[str] = mapped_column(String(16), default="info")  # band of severity
    category: Mapped[str] = mapped_column(String(64), default="")
    rule: Mapped[str] = mapped_column(String(255), default="")
    src_ip: Mapped[str] = mapped_column(String(64), default="")
    src_port: Mapped[int | None] = mapped_column(Integer)
    dst_ip: Mapped[str] = mapped_column(String(64), default="")
    dst_port: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    source_format: Mapped[str] = mapped_column(String(16))  # rfc5424, rfc3164, cef, wazuh
    transport: Mapped[str] = mapped_column(String(8), default="")  # udp, tcp, http
    peer: Mapped[str] = mapped_column(String(64), default="")  # the sender's address
    raw: Mapped[str] = mapped_column(Text, default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class Vulnerability(Base):
    """An open (or closed) vulnerability of one system, entered by hand or imported."""

    __tablename__ = "vulnerabilities"
    __table_args__ = (UniqueConstraint("system_id", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("information_systems.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(64))  # a CVE identifier or the scanner's own id
    title: Mapped[str] = mapped_column(String(500), default="")
    level: Mapped[str] = mapped_column(String(16), default="medium")
    cvss: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open")
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(64), default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebsiteCheck(Base):
    """One availability check of a system's website."""

    __tablename__ = "website_checks"
    __table_args__ = (Index("ix_website_checks_system_checked", "system_id", "checked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("information_systems.id", ondelete="CASCADE"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str] = mapped_column(Text, default="")
