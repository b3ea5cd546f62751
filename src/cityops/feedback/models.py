"""Tables of feedback: categories (Open311 services), reports (Open311 requests), their photos, the citizen's
contact kept apart (so it can be hidden, expired and erased), and the rate-limit counters of public POSTs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime

OPEN, CLOSED = "open", "closed"  # the Open311 status; the handling status is the incident's


class FeedbackCategory(Base):
    """What a citizen can report (an Open311 service): who handles it, by when, what else is asked.

    `route` decides the responsible agency: an agency code, or "commune" for the People's Committee of the
    commune or ward where the report is (falling back to `agency`). `attributes` are the Open311 service
    definition's attributes ([{"code", "datatype", "required", "description_vi", "description_en", "values"}]).
    Loaded from feedback/data/categories.toml.
    """

    __tablename__ = "feedback_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # the Open311 service_code
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255))
    description_vi: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    group: Mapped[str] = mapped_column(String(64), default="")
    keywords: Mapped[str] = mapped_column(String(500), default="")
    route: Mapped[str] = mapped_column(String(64), default="commune")
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))  # the default responsible agency
    incident_category: Mapped[str] = mapped_column(String(64), default="phan_anh_kien_nghi")
    attributes: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Report(Base):
    """One citizen report: what, where, its tracking code, its incident, the public answer and the rating.

    Nothing here is personal data except `description` (written by the citizen, shown publicly) and the exact
    point: `latitude`/`longitude` are what the citizen gave (seen by handlers); `public_latitude` /
    `public_longitude` are rounded (about 100 m) for public views. Name, phone, e-mail and exact address are in
    `ReportContact`.
    """

    __tablename__ = "feedback_reports"
    __table_args__ = (
        Index("ix_feedback_reports_status_requested", "status", "requested_at"),
        Index("ix_feedback_reports_category_requested", "category_id", "requested_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(32), unique=True)  # e.g. "PA-7K3M-Q9XD", printed for the citizen
    token: Mapped[str] = mapped_column(String(64), unique=True)  # the Open311 token
    category_id: Mapped[int] = mapped_column(ForeignKey("feedback_categories.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # answers to the category's attributes
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    public_latitude: Mapped[float | None] = mapped_column(Float)
    public_longitude: Mapped[float | None] = mapped_column(Float)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"), index=True)  # the commune or ward
    place_text: Mapped[str] = mapped_column(String(255), default="")  # public: street or landmark, no house number
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)  # responsible agency
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    source: Mapped[str] = mapped_column(String(16), default="web")  # web, open311, demo
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    device_id: Mapped[str] = mapped_column(String(128), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answer: Mapped[str] = mapped_column(Text, default="")  # the handler's public answer
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by: Mapped[str] = mapped_column(String(128), default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    on_time: Mapped[bool | None] = mapped_column(Boolean)  # answered by expected_at; None while open
    rating: Mapped[int | None] = mapped_column(Integer)  # 1–5, by the citizen, once closed
    rating_comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_reports.id"))
    personal_data_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReportContact(Base):
    """The citizen's personal data for one report: seen only by those handling it; expired and erasable."""

    __tablename__ = "feedback_contacts"

    report_id: Mapped[int] = mapped_column(ForeignKey("feedback_reports.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(32), default="", index=True)  # normalised: digits, leading 0
    email: Mapped[str] = mapped_column(String(255), default="", index=True)  # lower case
    address: Mapped[str] = mapped_column(String(500), default="")  # the exact address
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportPhoto(Base):
    """A photo of a report, re-encoded without its metadata (location included), kept under the data directory."""

    __tablename__ = "feedback_photos"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("feedback_reports.id", ondelete="CASCADE"), index=True)
    storage_key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RateCounter(Base):
    """How many public POSTs one client made in one window (fixed windows, counted in the database so that every
    process shares them)."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<what>:<client>:<window start>"
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
