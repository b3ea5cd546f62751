"""Realistic province data in bulk, for the benchmarks that need a big table (10 million observations and more).

The values are the demo simulator's (cityops.demo.simulator: the province's orders of magnitude, communes' shares,
seasons), written straight into `observations` — COPY on PostgreSQL, executemany on SQLite — not through the API:
filling the table is set-up, not what is measured. Going back from now, every 15 minutes the readings of the
instant indicators of every commune (air, water, cameras online: the bulk of a real IOC's rows), every day the daily
ones, every month the monthly ones, and so on, until the number of rows asked for is reached. Ratios are not
written: cityops computes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from cityops.accounts import service as accounts
from cityops.catalog.models import Indicator
from cityops.db.engine import Database
from cityops.demo.runner import indicator_plans
from cityops.demo.simulator import IndicatorPlan, Simulator
from cityops.feeds.service import create_feed
from cityops.geo.models import Subject
from cityops.observations import rollup
from cityops.observations.models import IngestBatch, Observation
from cityops.observations.periods import Period, period_of

READING_MINUTES = 15
CHUNK = 50_000
COLUMNS = (
    "indicator_id",
    "subject_id",
    "period_type",
    "period_key",
    "period_start",
    "period_end",
    "dims_key",
    "dimensions",
    "feed_id",
    "value",
    "null_reason",
    "source_ref",
    "batch_id",
    "received_at",
)


def _rows(database: Database, total: int, province: str) -> Iterator[tuple[Any, ...]]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with database.writing() as session:
        plans = [plan for plan in indicator_plans(session) if plan.aggregation != "ratio"]
        indicator_ids = dict(session.execute(select(Indicator.code, Indicator.id)).all())
        subjects = dict(session.execute(select(Subject.code, Subject.id)).all())
        communes = sorted(
            session.scalars(select(Subject.code).where(Subject.kind == "commune", Subject.parent_id.is_not(None)))
        )
        feed = create_feed(
            session,
            accounts.SYSTEM,
            now,
            code="bench_province_history",
            agency_code=plans[0].owner,
            indicator_codes=[plans[0].code],
        )
        batch = IngestBatch(agency_id=feed.agency_id, received_at=now)
        session.add(batch)
        session.flush()
        feed_id, batch_id = feed.id, batch.id
    simulator = Simulator("http://127.0.0.1:9", {}, plans, province, communes, lambda: now)
    try:
        by_type: dict[str, list[IndicatorPlan]] = {}
        for plan in plans:
            if plan.subject_level in ("province", "commune"):
                by_type.setdefault(plan.period_type, []).append(plan)
        made = 0
        seen: set[tuple[str, str]] = set()
        moment = now - timedelta(minutes=now.minute % READING_MINUTES)
        while made < total:
            for period_type, group in by_type.items():
                period = _period(period_type, moment)
                if period is None or (period_type, period.key) in seen:
                    continue
                seen.add((period_type, period.key))
                for plan in group:
                    for subject, value in simulator.values(plan, period, now, communes=True).items():
                        yield (
                            indicator_ids[plan.code],
                            subjects[subject],
                            period.type,
                            period.key,
                            period.start,
                            period.end,
                            "",
                            "{}",
                            feed_id,
                            float(value),
                            "",
                            "",
                            batch_id,
                            now,
                        )
                        made += 1
                        if made >= total:
                            return
            moment -= timedelta(minutes=READING_MINUTES)
    finally:
        simulator.close()


def _period(period_type: str, moment: datetime) -> Period | None:
    if period_type == "instant":
        return period_of("instant", moment)
    period = period_of(period_type, moment)
    return period if period.end <= moment + timedelta(days=1) else None  # only periods that are over (or today)


def fill(database: Database, total: int, province: str = "40") -> float:
    """Write `total` observations of province history; the seconds it took."""
    started = time.perf_counter()
    rows = _rows(database, total, province)
    if database.dialect == "postgresql":
        raw = database.write_engine.raw_connection()
        try:
            statement = f"COPY observations ({', '.join(COLUMNS)}) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
        with database.write_engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE observations")
    else:
        chunk: list[dict[str, Any]] = []
        statement = insert(Observation)
        for row in rows:
            item = dict(zip(COLUMNS, row, strict=True))
            item["dimensions"] = {}
            chunk.append(item)
            if len(chunk) >= CHUNK:
                with database.write_engine.begin() as connection:
                    connection.execute(statement, chunk)
                chunk = []
        if chunk:
            with database.write_engine.begin() as connection:
                connection.execute(statement, chunk)
        with database.write_engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    with database.writing() as session:  # the daily roll-up of the instant readings, as ingest would have kept it
        rollup.rebuild_days(session)
    return time.perf_counter() - started
