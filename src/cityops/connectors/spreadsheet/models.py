"""The uploads table: each file sent to a spreadsheet feed, read into items and per-row errors, kept as a preview
until it is committed (its good items ingested) or discarded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, BigId, JsonType, UTCDateTime

# An upload's states: read and shown (preview) → its good items stored (committed), or dropped (discarded).
PREVIEW, COMMITTED, DISCARDED = "preview", "committed", "discarded"
UPLOAD_STATES = (PREVIEW, COMMITTED, DISCARDED)


class SpreadsheetUpload(Base):
    """One uploaded file: who sent it, what it held (items and per-row errors), and what became of it."""

    __tablename__ = "spreadsheet_uploads"
    __table_args__ = (Index("ix_spreadsheet_uploads_feed_created", "feed_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    uploaded_by: Mapped[str] = mapped_column(String(128))  # username or key:<prefix>
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    file_name: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(8))  # xlsx | csv
    sheet: Mapped[str] = mapped_column(String(100), default="")
    layout: Mapped[str] = mapped_column(String(8))  # wide | long
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # How the file was understood: header rows, columns, ignored columns, notes (JSON).
    reading: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # The items read, each with the cell it came from: [{"row", "column", "header", "item": {...}}].
    items: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    # Every error: [{"row", "column", "header", "code", "value", "indicator", "message_vi", "message_en", "stage"}];
    # stage "read" (the cell could not be read) or "check" (the catalog refused it), checked again at commit.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    state: Mapped[str] = mapped_column(String(16), default=PREVIEW)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    discarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    batch_id: Mapped[int | None] = mapped_column(BigId)
    run_id: Mapped[int | None] = mapped_column(BigId)
    result: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # the ingest answer of the commit
