"""Helpers for the trust-score tests: feeds with a cadence, data sent through the real ingest, time moved by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.clock import LOCAL_TZ
from cityops.db.engine import Database
from cityops.feeds import lateness
from cityops.feeds.models import Feed
from cityops.feeds.service import create_feed, feed_principal, update_feed
from cityops.geo.models import Subject
from cityops.health import service as health
from cityops.observations.service import IngestResult, ingest_items

PROVINCE_CODE = "40"
VISITS = "yte.luot_kham_ngoai_tru"  # day, sum, min 0, public, owner Sở Y tế
INPATIENT_DAYS = "yte.luot_dieu_tri_noi_tru"  # day, sum
PATIENTS = "yte.benh_nhan_noi_tru"  # instant: the part …
BEDS = "yte.giuong_benh"  # … of the whole (ratio yte.cong_suat_giuong)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment given in Hà Nội time."""
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ)


def communes(database: Database, how_many: int) -> list[tuple[str, str]]:
    """The first communes of the province (code, Vietnamese name), in code order."""
    with database.reading() as session:
        rows = session.execute(
            select(Subject.code, Subject.name_vi)
            .where(Subject.kind == "commune")
            .order_by(Subject.code)
            .limit(how_many)
        )
        return [(code, name) for code, name in rows]


def make_feed(
    database: Database,
    now: datetime,
    code: str,
    indicators: list[str],
    *,
    agency: str = "so_y_te",
    cadence: str = "",
    coverage: str = "province",
    subjects: list[str] | None = None,
    grace_minutes: int = 0,
) -> None:
    """Create a feed (its expected periods start at `now`)."""
    with database.writing() as session:
        create_feed(
            session,
            accounts.SYSTEM,
            now,
            code=code,
            agency_code=agency,
            indicator_codes=indicators,
            cadence=cadence,
            coverage=coverage,
            subject_codes=subjects,
            grace_minutes=grace_minutes,
        )


def pause(database: Database, now: datetime, code: str, paused: bool = True) -> None:
    with database.writing() as session:
        update_feed(session, accounts.SYSTEM, now, code, {"paused": paused})


def send(database: Database, code: str, now: datetime, *items: dict[str, Any], source: str = "push") -> IngestResult:
    """Items sent through a feed at a moment, through the same ingest every connector uses."""
    with database.reading() as session:
        feed = session.scalars(select(Feed).where(Feed.code == code)).one()
        principal, feed_id = feed_principal(feed), feed.id
    return ingest_items(database, principal, list(items), now, source=source, feed_id=feed_id)


def item(indicator: str, subject: str, period: str, value: float | None, **extra: Any) -> dict[str, Any]:
    return {"indicator": indicator, "subject": subject, "period": period, "value": value, **extra}


def tick(database: Database, now: datetime) -> lateness.TickResult:
    """One lateness tick at a moment (plan the expected periods, claim the overdue ones)."""
    with database.writing() as session:
        return lateness.tick(session, now)


def trust(
    database: Database, code: str, now: datetime, *, start: datetime | None = None, end: datetime | None = None
) -> health.FeedTrust:
    """A feed's scores over [start, end] (default: the 30 days up to now), with the rows that lowered them."""
    with database.reading() as session:
        feed = session.scalars(select(Feed).where(Feed.code == code)).one()
        return health.feed_trust(
            session,
            feed,
            start or now - timedelta(days=30),
            end or now,
            now,
            PROVINCE_CODE,
        )


def cells(rows: list[dict[str, Any]], *names: str) -> set[tuple[Any, ...]]:
    """The listed rows reduced to some of their fields, as a set to compare exactly."""
    return {tuple(row[name] for name in names) for row in rows}
