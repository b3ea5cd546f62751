"""Cameras and their health checks.

A camera is also a subject of kind "entity" (geo `subjects`, code `camera.<code>`, below its commune), so that per-
camera values can be stored as observations. Analytics events (accident, congestion, …) are `alerts.models.Event`
rows of category "camera" whose `details` name the camera; their snapshots live under `<data dir>/camera-events`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime

STREAM_KINDS = ("rtsp", "hls", "mjpeg", "none")
UNKNOWN, ONLINE, DEGRADED, OFFLINE = "unknown", "online", "degraded", "offline"
STATUSES = (UNKNOWN, ONLINE, DEGRADED, OFFLINE)


class Camera(Base):
    """One camera: where, whose, how to reach its stream and snapshot, and its health now."""

    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255), default="")
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"))  # the camera as a subject
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(500), default="")
    owner_agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    stream_kind: Mapped[str] = mapped_column(String(8), default="none")
    stream_url: Mapped[str] = mapped_column(Text, default="")  # without credentials
    snapshot_url: Mapped[str] = mapped_column(Text, default="")
    onvif_url: Mapped[str] = mapped_column(Text, default="")
    credentials: Mapped[str] = mapped_column(Text, default="")  # encrypted (cityops.crypto); never sent to a browser
    tags: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    probe_seconds: Mapped[int] = mapped_column(Integer, default=60)
    offline_alert_minutes: Mapped[int] = mapped_column(Integer, default=10)
    # Health now, written by the probes.
    status: Mapped[str] = mapped_column(String(16), default=UNKNOWN)
    status_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    frame_rate: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_snapshot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Scheduling: due at next_probe_at; one worker claims a probe with a conditional UPDATE.
    next_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    probe_owner: Mapped[str] = mapped_column(String(64), default="")
    probe_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CameraCheck(Base):
    """One probe of one camera: what it found (for uptime and the history on the camera's page)."""

    __tablename__ = "camera_checks"
    __table_args__ = (Index("ix_camera_checks_camera_checked", "camera_id", "checked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    frame_rate: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")
