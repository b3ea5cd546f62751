"""Subjects: what an observation is about — an administrative unit or a registered entity."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base


class Subject(Base):
    """A province, a commune or ward, or a registered entity (a camera, a sensor, an agency …)."""

    __tablename__ = "subjects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255))
    search_key: Mapped[str] = mapped_column(String(255), default="", index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    area_km2: Mapped[float | None] = mapped_column(Float)
