"""The daily roll-up of instant indicators (`observation_days`): the newest reading per indicator, subject and day.

Instant indicators carry most of a province's rows (a reading every few minutes from every commune), and the screens
only ever want, per subject, the newest reading within a day, a month or a year. Ingest keeps the roll-up in its own
transaction (`keep_days`): the newest of the batch's readings per key, upserted so that an older reading arriving
late never replaces a newer one. `rebuild_days` makes it again from `observations` (after a bulk load, or to check).
Local days are Asia/Ho_Chi_Minh days, so every day lies inside one month, quarter, year and school year: the newest
reading of a period is the newest reading of its newest day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityops.clock import LOCAL_TZ
from cityops.observations.models import Observation, ObservationDay
from cityops.observations.periods import parse_period

DAYS_TABLE = cast(Table, ObservationDay.__table__)
DAY_KEY = ("indicator_id", "subject_id", "day_key")
_CHUNK = 5000
_day_starts: dict[date, datetime] = {}


def _day(moment: datetime) -> tuple[str, datetime]:
    local = moment.astimezone(LOCAL_TZ).date()
    start = _day_starts.get(local)
    if start is None:
        start = _day_starts.setdefault(local, parse_period(local.isoformat()).start)
    return local.isoformat(), start


def day_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The roll-up rows of these observation rows: instant totals only (no dimensions), newest per key."""
    newest: dict[tuple[int, int, str], dict[str, Any]] = {}
    for row in rows:
        if row["period_type"] != "instant" or row["dims_key"] != "":
            continue
        day_key, day_start = _day(row["period_start"])
        key = (row["indicator_id"], row["subject_id"], day_key)
        current = newest.get(key)
        if current is None or (row["period_start"], row["received_at"]) >= (
            current["period_start"],
            current["received_at"],
        ):
            newest[key] = {
                "indicator_id": row["indicator_id"],
                "subject_id": row["subject_id"],
                "day_key": day_key,
                "day_start": day_start,
                "period_key": row["period_key"],
                "period_start": row["period_start"],
                "value": row["value"],
                "null_reason": row["null_reason"],
                "received_at": row["received_at"],
            }
    return list(newest.values())


def keep_days(session: Session, dialect: str, rows: Iterable[dict[str, Any]]) -> int:
    """Upsert the roll-up of these (just written) observation rows; an older reading never replaces a newer one."""
    days = day_rows(rows)
    if not days:
        return 0
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(DAYS_TABLE)
    table, new = DAYS_TABLE.c, statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=list(DAY_KEY),
        set_={
            column: getattr(new, column)
            for column in ("period_key", "period_start", "value", "null_reason", "received_at")
        },
        where=or_(
            new.period_start > table.period_start,
            and_(new.period_start == table.period_start, new.received_at >= table.received_at),
        ),
    )
    for start in range(0, len(days), _CHUNK):
        session.execute(statement, days[start : start + _CHUNK])
    return len(days)


def rebuild_days(session: Session) -> int:
    """Make the roll-up again from every instant reading stored; the number of roll-up rows."""
    session.execute(delete(ObservationDay))
    query = (
        select(
            Observation.indicator_id,
            Observation.subject_id,
            Observation.period_type,
            Observation.period_key,
            Observation.period_start,
            Observation.dims_key,
            Observation.value,
            Observation.null_reason,
            Observation.received_at,
        )
        .where(Observation.period_type == "instant", Observation.dims_key == "")
        .order_by(Observation.indicator_id, Observation.subject_id)
        .execution_options(yield_per=_CHUNK)
    )
    pending: list[dict[str, Any]] = []
    written = 0
    current: tuple[int, int] | None = None
    for row in session.execute(query).mappings():
        series = (row["indicator_id"], row["subject_id"])
        if series != current and len(pending) >= _CHUNK:
            written += _insert_days(session, pending)
            pending = []
        current = series
        pending.append(dict(row))
    return written + _insert_days(session, pending)


def _insert_days(session: Session, rows: list[dict[str, Any]]) -> int:
    days = day_rows(rows)
    if days:
        session.execute(insert(ObservationDay), days)
    return len(days)
