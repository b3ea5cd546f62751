"""Lateness without traffic: expected periods as rows, claimed once when overdue, cleared by arrivals.

1. `plan` materialises, for every feed with a cadence, the periods it must deliver (from the feed's creation on, up
   to the period that has just begun), each with its deadline and deadline + grace; a period whose data is already
   stored is created received. Inserting is idempotent (unique feed × period), so two workers may plan at once.
   A paused feed owes nothing: its periods that come due while it is paused are not planned (or are dropped when
   planned before the pause), and a period already past deadline + grace when the feed was last changed (resumed,
   given a new schedule) is not planned either: resuming a feed or changing its schedule does not turn into a burst
   of late periods. (The price: periods missed while no worker ran and a feed was edited meanwhile are not counted.)
2. `mark_late` claims overdue rows with one conditional UPDATE … RETURNING (state 'expected' → 'late'; on PostgreSQL
   the rows are picked with FOR UPDATE SKIP LOCKED, so a second worker skips instead of waiting): a row is claimed by
   exactly one worker, and only a claimer may raise the feed's alert, itself de-duplicated by its key.
3. `mark_received`, called by ingest in the batch's transaction, marks the periods an arrival of the same period
   type falls in as received (on time or late) and resolves the feed's alert once nothing is late any more.

`tick` runs 1 and 2. The worker (`cityops worker`, or the one embedded in `cityops serve`) calls it every
CITYOPS_WORKER_TICK_SECONDS (10 s by default; keep it at most 15 s) with its clock, so a feed is marked late within
one minute of its deadline plus grace whether or not anything else happens.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityops.alerts import service as alerts
from cityops.feeds.cadence import Cadence, CadenceError, parse_cadence
from cityops.feeds.models import EXPECTED, LATE, RECEIVED, Feed, FeedExpectation
from cityops.i18n import LANGUAGES, format_period, translate

# Plan periods that begin up to this far ahead, so early arrivals (within ingest's tolerance) find their row.
PLAN_AHEAD = timedelta(minutes=10)
# At most this many periods planned per feed per tick (an interval feed after a long stop catches up in steps).
MAX_PLANNED_PER_TICK = 2000
# How many late periods an alert names in its title, and keeps in its details.
TITLE_PERIODS = 5
DETAIL_PERIODS = 50

# An arrival: the period type and start of an observation that was stored.
Arrival = tuple[str, datetime]


def late_alert_key(feed_id: int) -> str:
    """The key of a feed's lateness alert (one per feed)."""
    return f"feed_late:{feed_id}"


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick did."""

    planned: int
    late: list[tuple[str, str]]  # (feed code, period key) claimed late by this tick
    alerts_fired: list[str]  # feed codes whose lateness alert this tick turned on


def tick(session: Session, now: datetime) -> TickResult:
    """Plan expected periods and claim the overdue ones (raising each feed's alert once)."""
    planned = plan(session, now)
    late, fired = mark_late(session, now)
    return TickResult(planned, late, fired)


def plan(session: Session, now: datetime, feed_ids: Iterable[int] | None = None) -> int:
    """Create the expected-period rows every feed with a cadence needs up to now; returns how many."""
    query = select(Feed).where(Feed.cadence != "").order_by(Feed.id)  # one order: two planners cannot deadlock
    if feed_ids is not None:
        query = query.where(Feed.id.in_(list(feed_ids)))
    feeds = list(session.scalars(query))
    if not feeds:
        return 0
    paused = [feed.id for feed in feeds if feed.paused]
    if paused:
        # Periods that came due while their feed was paused are excused, not late.
        session.execute(
            delete(FeedExpectation)
            .where(
                FeedExpectation.feed_id.in_(paused),
                FeedExpectation.state == EXPECTED,
                FeedExpectation.late_at <= now,
            )
            .execution_options(synchronize_session=False)
        )
    last_starts = dict(
        session.execute(
            select(FeedExpectation.feed_id, func.max(FeedExpectation.period_start))
            .where(FeedExpectation.feed_id.in_([feed.id for feed in feeds]))
            .group_by(FeedExpectation.feed_id)
        ).all()
    )
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    total = 0
    for feed in feeds:
        try:
            cadence = parse_cadence(feed.cadence)
        except CadenceError:
            continue
        rows = _periods_to_plan(feed, cadence, last_starts.get(feed.id), now)
        if not rows:
            continue
        _settle_arrived(session, feed.id, rows)
        inserted = session.execute(
            insert(FeedExpectation)
            .on_conflict_do_nothing(index_elements=["feed_id", "period_key"])
            .returning(FeedExpectation.id),
            rows,
        ).all()
        total += len(inserted)
    return total


def _periods_to_plan(feed: Feed, cadence: Cadence, last_start: datetime | None, now: datetime) -> list[dict[str, Any]]:
    grace = timedelta(minutes=feed.grace_minutes)
    # A period already late when the feed was last changed (resumed, given a new schedule) is not held against it.
    excused_until = now if feed.paused else (feed.updated_at or feed.created_at)
    rows: list[dict[str, Any]] = []
    # Every period is due at or after its start, so the walk may begin at the last start planned; periods due before
    # `excused_until - grace` would be skipped below, so it may begin there too (a long pause is not walked through).
    first_due = max(feed.created_at, last_start or feed.created_at, excused_until - grace)
    for item in cadence.expected_between(first_due, now + PLAN_AHEAD):
        if last_start is not None and item.period.start <= last_start:
            continue
        # Owed from the feed's creation on: periods due after it; for an interval, slots that begin after it.
        if item.due_at <= feed.created_at or (cadence.kind == "interval" and item.period.start < feed.created_at):
            continue
        late_at = item.due_at + grace
        if late_at <= excused_until:
            continue
        rows.append(
            {
                "feed_id": feed.id,
                "period_type": item.period.type,
                "period_key": item.period.key,
                "period_start": item.period.start,
                "period_end": item.period.end,
                "due_at": item.due_at,
                "late_at": late_at,
                "state": EXPECTED,
                "received_at": None,
                "on_time": None,
            }
        )
        if len(rows) >= MAX_PLANNED_PER_TICK:
            break
    return rows


def _settle_arrived(session: Session, feed_id: int, rows: list[dict[str, Any]]) -> None:
    """Rows for periods whose data is already stored start received (when the first of it arrived)."""
    from cityops.observations.models import Observation  # observations depends on feeds, not the reverse at import

    period_type = rows[0]["period_type"]
    first, last = rows[0]["period_start"], rows[-1]["period_end"]
    arrivals = session.execute(
        select(Observation.period_start, func.min(Observation.received_at))
        .where(
            Observation.feed_id == feed_id,
            Observation.period_type == period_type,
            Observation.period_start >= first,
            Observation.period_start < last,
        )
        .group_by(Observation.period_start)
        .order_by(Observation.period_start)
    ).all()
    if not arrivals:
        return
    starts = [start for start, _ in arrivals]
    for row in rows:
        index = bisect_left(starts, row["period_start"])
        received: list[datetime] = []
        while index < len(starts) and starts[index] < row["period_end"]:
            received.append(arrivals[index][1])
            index += 1
        if received:
            received_at = min(received)
            row.update(state=RECEIVED, received_at=received_at, on_time=received_at <= row["late_at"])


def mark_late(session: Session, now: datetime) -> tuple[list[tuple[str, str]], list[str]]:
    """Claim every overdue expected period of an active feed; fire each such feed's alert (once)."""
    overdue = (
        select(FeedExpectation.id)
        .where(
            FeedExpectation.state == EXPECTED,
            FeedExpectation.late_at <= now,
            FeedExpectation.feed_id.in_(select(Feed.id).where(Feed.paused.is_(False))),
        )
        .with_for_update(skip_locked=True)  # PostgreSQL: rows another worker is claiming are skipped, not awaited
    )
    claimed = session.execute(
        update(FeedExpectation)
        .where(FeedExpectation.id.in_(overdue), FeedExpectation.state == EXPECTED)
        .values(state=LATE, late_marked_at=now)
        .returning(FeedExpectation.feed_id, FeedExpectation.period_key)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        return [], []
    by_feed: dict[int, list[str]] = {}
    for feed_id, period_key in claimed:
        by_feed.setdefault(feed_id, []).append(period_key)
    feeds = {feed.id: feed for feed in session.scalars(select(Feed).where(Feed.id.in_(list(by_feed))))}
    fired: list[str] = []
    for feed_id, keys in sorted(by_feed.items()):
        feed = feeds[feed_id]
        late = _late_rows(session, feed_id)
        titles = {language: late_title(feed.name or feed.code, late, language) for language in LANGUAGES}
        if alerts.fire(
            session,
            late_alert_key(feed_id),
            now,
            kind="feed_late",
            severity="warning",
            agency_id=feed.agency_id,
            feed_id=feed_id,
            title_vi=titles["vi"],
            title_en=titles["en"],
            details={
                "feed": feed.code,
                "late_count": len(late),
                "late_periods": [key for _, key in late[-DETAIL_PERIODS:]],
                "newly_late": sorted(keys)[:DETAIL_PERIODS],
            },
        ):
            fired.append(feed.code)
    return [(feeds[feed_id].code, key) for feed_id, key in claimed], fired


def _late_rows(session: Session, feed_id: int) -> list[tuple[str, str]]:
    """(period type, key) of a feed's periods that are late and still not received, oldest first."""
    return [
        (row.period_type, row.period_key)
        for row in session.execute(
            select(FeedExpectation.period_type, FeedExpectation.period_key)
            .where(FeedExpectation.feed_id == feed_id, FeedExpectation.state == LATE)
            .order_by(FeedExpectation.period_start)
        )
    ]


def late_periods(session: Session, feed_id: int) -> list[str]:
    """The keys of a feed's periods that are late and still not received, oldest first."""
    return [key for _, key in _late_rows(session, feed_id)]


def late_title(feed_name: str, late: list[tuple[str, str]], language: str) -> str:
    """The title of a feed's lateness alert: the latest late periods, and how many more."""
    named = ", ".join(format_period(kind, key, language) for kind, key in late[-TITLE_PERIODS:])
    if len(late) > TITLE_PERIODS:
        named = translate("lateness.more_periods", language, periods=named, count=len(late) - TITLE_PERIODS)
    return translate("feeds.alert.late", language, feed=feed_name, periods=named)


def mark_received(session: Session, arrivals: Mapping[int, Iterable[Arrival]], now: datetime) -> list[int]:
    """Mark the expected periods that arrivals (feed id → (period type, start)) fall in as received; resolve alerts.

    An arrival counts for a period of its own type only: a day's figure does not deliver the month, nor a month's
    figure its first day. Returns the ids of feeds whose lateness alert this resolved.
    """
    resolved: list[int] = []
    for feed_id in sorted(arrivals):
        starts_by_type: dict[str, list[datetime]] = {}
        for period_type, start in arrivals[feed_id]:
            starts_by_type.setdefault(period_type, []).append(start)
        if not starts_by_type:
            continue
        for starts in starts_by_type.values():
            starts.sort()
        query = select(
            FeedExpectation.id,
            FeedExpectation.period_type,
            FeedExpectation.period_start,
            FeedExpectation.period_end,
            FeedExpectation.late_at,
        ).where(
            FeedExpectation.feed_id == feed_id,
            FeedExpectation.state.in_((EXPECTED, LATE)),
            FeedExpectation.period_type.in_(list(starts_by_type)),
            FeedExpectation.period_end > min(starts[0] for starts in starts_by_type.values()),
            FeedExpectation.period_start <= max(starts[-1] for starts in starts_by_type.values()),
        )
        on_time_ids: list[int] = []
        late_ids: list[int] = []
        for row in session.execute(query):
            if _falls_in(starts_by_type[row.period_type], row.period_start, row.period_end):
                (on_time_ids if now <= row.late_at else late_ids).append(row.id)
        for ids, on_time in ((on_time_ids, True), (late_ids, False)):
            if ids:
                session.execute(
                    update(FeedExpectation)
                    .where(FeedExpectation.id.in_(ids), FeedExpectation.state.in_((EXPECTED, LATE)))
                    .values(state=RECEIVED, received_at=now, on_time=on_time)
                    .execution_options(synchronize_session=False)
                )
        # Checked after every receipt, not only of rows seen late: a worker may have claimed one of them late (and
        # fired the alert) between this batch's read and its update.
        if (
            (on_time_ids or late_ids)
            and not overdue_count(session, feed_id)
            and alerts.resolve(session, late_alert_key(feed_id), now, {"received_at": now.isoformat()})
        ):
            resolved.append(feed_id)
    return resolved


def _falls_in(starts: list[datetime], period_start: datetime, period_end: datetime) -> bool:
    """Whether a sorted list of starts holds one in [period_start, period_end)."""
    index = bisect_left(starts, period_start)
    return index < len(starts) and starts[index] < period_end


def overdue_count(session: Session, feed_id: int) -> int:
    """How many of a feed's periods are late now."""
    return (
        session.scalar(
            select(func.count())
            .select_from(FeedExpectation)
            .where(FeedExpectation.feed_id == feed_id, FeedExpectation.state == LATE)
        )
        or 0
    )
