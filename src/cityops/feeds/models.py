"""Tables of feeds (agreed flows of data), the indicators each supplies, their runs and expected periods."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime

feed_indicators = Table(
    "feed_indicators",
    Base.metadata,
    Column("feed_id", ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
    Column("indicator_id", ForeignKey("indicators.id", ondelete="CASCADE"), primary_key=True),
)

# What a feed must cover: the province itself, every commune of it, or the listed subjects.
COVERAGES = ("province", "communes", "list")


class Feed(Base):
    """One agreed flow of data from one agency: connector kind and settings, schedule, what it must cover."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="push")
    # The connector's settings without its secrets; the secrets, encrypted (cityops.crypto), apart.
    settings: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    secrets: Mapped[str] = mapped_column(Text, default="")
    secret_names: Mapped[list[str]] = mapped_column(JsonType, default=list)  # which secrets are set, never values
    # Expected cadence in the words of cityops.feeds.cadence ("daily by 17:00" …); "" = no schedule.
    cadence: Mapped[str] = mapped_column(String(64), default="")
    grace_minutes: Mapped[int] = mapped_column(Integer, default=0)
    coverage: Mapped[str] = mapped_column(String(16), default="province")
    subject_codes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # Connector state kept between runs (e.g. http_pull's "since" cursor).
    cursor: Mapped[str] = mapped_column(Text, default="")
    # Scheduled kinds (http_pull): when the next run is due, claimed by one worker with a conditional UPDATE.
    poll_seconds: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # Long-running kinds (mqtt): which worker holds the subscription, until when.
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FeedRun(Base):
    """One run of a feed's connector (a pull, an upload, a pushed batch): what came, what failed and why."""

    __tablename__ = "feed_runs"
    __table_args__ = (Index("ix_feed_runs_feed_started", "feed_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule, manual, upload, push, message
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, ok, partial, failed
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    received: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    batch_id: Mapped[int | None] = mapped_column(BigId)
    error_code: Mapped[str] = mapped_column(String(64), default="")
    retryable: Mapped[bool | None] = mapped_column(Boolean)
    message_vi: Mapped[str] = mapped_column(Text, default="")
    message_en: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


# An expected period's states: not yet due or due and waiting → late (claimed once) → received (on time or not).
EXPECTED, LATE, RECEIVED = "expected", "late", "received"


class FeedExpectation(Base):
    """One period a feed is expected to deliver, with its deadline; arrivals mark it received."""

    __tablename__ = "feed_expectations"
    __table_args__ = (
        UniqueConstraint("feed_id", "period_key", name="uq_feed_expectations_feed_period"),
        Index("ix_feed_expectations_state_late_at", "state", "late_at"),
        Index("ix_feed_expectations_feed_start", "feed_id", "period_start"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    period_type: Mapped[str] = mapped_column(String(20))
    period_key: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    late_at: Mapped[datetime] = mapped_column(UTCDateTime())  # due_at + the feed's grace
    state: Mapped[str] = mapped_column(String(16), default=EXPECTED)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    late_marked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
