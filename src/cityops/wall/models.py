"""The wall's layouts: nine tiles, each showing one view (a board, the map, alerts …) or rotating through several."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, JsonType, UTCDateTime


class WallLayout(Base):
    """A named layout of the wall. `tiles` holds nine entries, position 1–9 left to right, top to bottom:
    {"position": 1, "views": [{"kind": "board", "domain": "yte"}, …], "rotate_seconds": 30}; one view = no rotation.
    One layout is the active one (shown at /wall)."""

    __tablename__ = "wall_layouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    tiles: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
