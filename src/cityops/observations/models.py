"""Tables of current observations, their history, ingest batches and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime


class IngestBatch(Base):
    """One accepted request of observations."""

    __tablename__ = "ingest_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    # The feed it came through when there was one (a connector's run, a key bound to a single feed).
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(32), default="push")  # the connector kind
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    replaced: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)


class IngestRejection(Base):
    """One item of a batch that was not stored, and why — the rows that lower a feed's "đúng" score."""

    __tablename__ = "ingest_rejections"
    __table_args__ = (Index("ix_ingest_rejections_feed_received", "feed_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("ingest_batches.id", ondelete="CASCADE"), index=True)
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"))
    indicator_id: Mapped[int | None] = mapped_column(ForeignKey("indicators.id", ondelete="SET NULL"))
    item_index: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64), default="")
    message_vi: Mapped[str] = mapped_column(Text, default="")
    message_en: Mapped[str] = mapped_column(Text, default="")
    item: Mapped[str] = mapped_column(Text, default="")  # the item as sent (JSON, cut to 1,000 characters)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Observation(Base):
    """The current value of one indicator for one subject, period and set of dimensions, from one feed."""

    __tablename__ = "observations"
    __table_args__ = (
        UniqueConstraint("indicator_id", "subject_id", "period_key", "dims_key", "feed_id", name="uq_observations_key"),
        Index("ix_observations_series", "indicator_id", "subject_id", "period_start"),
        Index("ix_observations_latest", "indicator_id", "period_start"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"))
    period_type: Mapped[str] = mapped_column(String(20))
    period_key: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    dims_key: Mapped[str] = mapped_column(String(255), default="")
    dimensions: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"), index=True)
    value: Mapped[float | None] = mapped_column(Float)
    null_reason: Mapped[str] = mapped_column(Text, default="")
    source_ref: Mapped[str] = mapped_column(String(255), default="")
    batch_id: Mapped[int] = mapped_column(ForeignKey("ingest_batches.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ObservationDay(Base):
    """The daily roll-up of instant indicators: per indicator, subject and local day, the newest reading (its value,
    instant and reception), so that the screens read one row a day instead of every reading (air, water, cameras:
    a reading every few minutes from every commune). Kept by ingest in the same transaction (observations/rollup.py);
    rebuilt from `observations` by `rollup.rebuild_days`."""

    __tablename__ = "observation_days"
    __table_args__ = (
        UniqueConstraint("indicator_id", "subject_id", "day_key", name="uq_observation_days_key"),
        Index("ix_observation_days_indicator_day", "indicator_id", "day_start"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"))
    day_key: Mapped[str] = mapped_column(String(10))  # the local day, 2026-11-27
    day_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_key: Mapped[str] = mapped_column(String(40))  # the newest reading's instant
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float | None] = mapped_column(Float)
    null_reason: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ObservationHistory(Base):
    """A value that a later send replaced."""

    __tablename__ = "observation_history"
    __table_args__ = (
        Index("ix_observation_history_key", "indicator_id", "subject_id", "period_key"),
        # The "sạch" score reads a feed's changed re-sends over a window.
        Index("ix_observation_history_feed_replaced", "feed_id", "replaced_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    observation_id: Mapped[int] = mapped_column(BigId, index=True)
    indicator_id: Mapped[int] = mapped_column(Integer)
    subject_id: Mapped[int] = mapped_column(Integer)
    period_key: Mapped[str] = mapped_column(String(40))
    dims_key: Mapped[str] = mapped_column(String(255), default="")
    feed_id: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    null_reason: Mapped[str] = mapped_column(Text, default="")
    source_ref: Mapped[str] = mapped_column(String(255), default="")
    batch_id: Mapped[int] = mapped_column(BigId)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replaced_by_batch_id: Mapped[int] = mapped_column(BigId)


class IdempotencyRecord(Base):
    """The stored answer to a request sent with an Idempotency-Key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("agency_id", "key", name="uq_idempotency_records_agency_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
