"""The archive of made reports (daily briefs and periodic reports) and who receives which by e-mail.

Report templates are data (`reports/data/templates.toml`), not rows. A made report is one `report_runs` row per
template, scope and period (unique: a scheduled report is made once however many workers run), with its files under
`<data dir>/reports`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.db.base import Base, JsonType, UTCDateTime

RUN_STATES = ("making", "done", "failed")


class ReportRun(Base):
    """One made report: which template, for what scope (a domain code or "province") and period, its content (the
    figures it was made from, as JSON, so the phone page and the e-mail show the same) and its files."""

    __tablename__ = "report_runs"
    __table_args__ = (UniqueConstraint("template", "scope", "period_start", "period_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template: Mapped[str] = mapped_column(String(64))  # "daily_brief", "monthly_province", …
    scope: Mapped[str] = mapped_column(String(64), default="province")
    period_kind: Mapped[str] = mapped_column(String(16))  # day, week, month, quarter, year
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="making")
    content: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    xlsx_path: Mapped[str] = mapped_column(Text, default="")  # relative to <data dir>/reports
    pdf_path: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    made_by: Mapped[str] = mapped_column(String(128), default="")  # a user, or "scheduler"
    made_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReportSubscription(Base):
    """One user receives one template (for one scope) by e-mail each time it is made."""

    __tablename__ = "report_subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "template", "scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    template: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(64), default="province")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
