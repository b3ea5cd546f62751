"""Tables of the indicator catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, JsonType, UTCDateTime


class Domain(Base):
    """One of the nine subsystems (phân hệ)."""

    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255))
    source_system: Mapped[str] = mapped_column(String(255), default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Indicator(Base):
    """An indicator (chỉ tiêu): what is measured, how often, by whom, and what is good."""

    __tablename__ = "indicators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"), index=True)
    monitored_item: Mapped[int] = mapped_column(Integer, default=1)
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255))
    description_vi: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(String(32))
    period_type: Mapped[str] = mapped_column(String(20))
    aggregation: Mapped[str] = mapped_column(String(10), default="sum")
    numerator_code: Mapped[str] = mapped_column(String(80), default="")
    denominator_code: Mapped[str] = mapped_column(String(80), default="")
    direction: Mapped[str] = mapped_column(String(20), default="higher_better")
    owner_agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    source_system: Mapped[str] = mapped_column(String(255), default="")
    collection: Mapped[str] = mapped_column(String(20), default="automatic")
    access: Mapped[str] = mapped_column(String(20), default="public")
    subject_level: Mapped[str] = mapped_column(String(20), default="province")
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    dimensions: Mapped[list[str]] = mapped_column(JsonType, default=list)
    references: Mapped[list[str]] = mapped_column(JsonType, default=list)
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    search_text: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class IndicatorVersion(Base):
    """A past definition of an indicator, kept when the catalog changes it."""

    __tablename__ = "indicator_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_by: Mapped[str] = mapped_column(String(128), default="")
