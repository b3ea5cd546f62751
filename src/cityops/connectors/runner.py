"""Running a feed's connector: build it from the stored feed, fetch with retries and back-off for transient
errors, store what came through the same ingest as the data-sharing API, keep the cursor, log the run.

Back-off doubles from `backoff_seconds` (2 s, 4 s …). A server's Retry-After (an error's `retry_after` param, in
seconds) lengthens the wait up to MAX_RETRY_AFTER_SECONDS; a longer one ends the run (failed, retryable): the next
scheduled run comes soon enough, and a worker does not sit idle for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cityops.accounts.roles import Principal
from cityops.clock import Clock
from cityops.connectors import connector_class
from cityops.connectors.base import Connector, ConnectorError, FeedContext, Fetched
from cityops.connectors.mapping import MappingFailed
from cityops.db.engine import Database
from cityops.feeds import service as feeds
from cityops.feeds.cadence import CadenceError, parse_cadence
from cityops.feeds.models import Feed, FeedRun
from cityops.observations.service import IngestResult, ingest_items

log = logging.getLogger(__name__)
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF_SECONDS = 2.0
MAX_RETRY_AFTER_SECONDS = 60.0


@dataclass
class Prepared:
    """A connector built for its feed, with the identity its data is stored under."""

    connector: Connector
    principal: Principal
    feed_id: int
    kind: str


def feed_context(session: Session, feed: Feed, secret_key: str) -> FeedContext:
    """What a connector gets of its feed."""
    period_type = ""
    if feed.cadence:
        try:
            period_type = parse_cadence(feed.cadence).period_type
        except CadenceError:
            period_type = ""
    return FeedContext(
        id=feed.id,
        code=feed.code,
        agency_id=feed.agency_id,
        kind=feed.kind,
        settings=feeds.settings_of(feed, secret_key),
        cursor=feed.cursor or "",
        indicator_codes=feeds.feed_indicator_codes(session, feed.id),
        subject_codes=list(feed.subject_codes or []),
        period_type=period_type,
    )


def prepare(session: Session, feed: Feed, secret_key: str) -> Prepared:
    """Build a feed's connector (ConnectorError when its settings no longer fit its kind)."""
    try:
        context = feed_context(session, feed, secret_key)
    except ValueError as exc:  # settings that no longer validate (pydantic's ValidationError is a ValueError)
        raise ConnectorError("invalid_settings", retryable=False, reason=str(exc)[:200]) from exc
    return Prepared(connector_class(feed.kind)(context), feeds.feed_principal(feed), feed.id, feed.kind)


def store(db: Database, prepared: Prepared, fetched: Fetched, now: datetime) -> IngestResult:
    """Store what a fetch brought (good items kept, bad ones rejected with reasons) and keep its cursor.

    A fetch that brought nothing writes no (empty) ingest batch.
    """
    if not fetched.items and not fetched.rejected:
        result = IngestResult(None, 0, 0, 0, 0, 0)
    else:
        result = ingest_items(
            db,
            prepared.principal,
            fetched.items,
            now,
            source=prepared.kind,
            feed_id=prepared.feed_id,
            pre_rejected=fetched.rejected,
        )
    if fetched.cursor is not None:
        with db.writing() as session:
            session.execute(update(Feed).where(Feed.id == prepared.feed_id).values(cursor=fetched.cursor))
    return result


def run_feed(
    db: Database,
    feed_id: int,
    clock: Clock,
    secret_key: str,
    *,
    trigger: str = "schedule",
    attempts: int = DEFAULT_ATTEMPTS,
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Fetch a feed once (retrying transient errors with doubling back-off), store it, log the run."""
    with db.writing() as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            raise feeds.FeedError("unknown_feed", feed=str(feed_id))
        run_id = feeds.start_run(session, feed.id, trigger, clock()).id
        try:
            prepared: Prepared | None = prepare(session, feed, secret_key)
            setup_error = None
        except ConnectorError as exc:
            prepared, setup_error = None, exc
        except Exception as exc:  # e.g. a kind whose package is no longer installed
            log.exception("feed %s: its connector cannot be built", feed_id)
            prepared = None
            setup_error = ConnectorError("unexpected", retryable=False, reason=f"{type(exc).__name__}: {exc}"[:200])
    attempt = 0
    error: ConnectorError | None = setup_error
    fetched: Fetched | None = None
    while prepared is not None:
        attempt += 1
        try:
            fetched = prepared.connector.fetch()
            error = None
            break
        except MappingFailed as exc:
            error = ConnectorError("schema_changed", retryable=False, reason=str(exc)[:200])
        except ConnectorError as exc:
            error = exc
        except Exception as exc:  # a bug or an unforeseen failure: logged, and the run says so instead of hanging
            log.exception("feed %s: the connector failed unexpectedly", feed_id)
            error = ConnectorError("unexpected", retryable=False, reason=f"{type(exc).__name__}: {exc}"[:200])
        if not error.retryable or attempt >= attempts:
            break
        delay = _delay(error, backoff_seconds * 2 ** (attempt - 1))
        if delay is None:
            break
        log.info("feed %s: %s; retrying in %.1f s", feed_id, error.code, delay)
        sleep(delay)
    if fetched is not None and prepared is not None:
        try:
            result = store(db, prepared, fetched, clock())
        except Exception as exc:  # the database refused the batch: nothing of it is kept, nor the cursor
            log.exception("feed %s: the fetched data could not be stored", feed_id)
            fetched, error = None, ConnectorError("store_failed", retryable=True, reason=f"{type(exc).__name__}"[:200])
    if fetched is None or prepared is None:
        assert error is not None
        with db.writing() as session:
            feeds.finish_run(
                session,
                run_id,
                clock(),
                status="failed",
                attempts=max(attempt, 1),
                error_code=error.code,
                retryable=error.retryable,
                message_vi=error.message_vi,
                message_en=error.message_en,
                details={"params": {key: str(value)[:200] for key, value in error.params.items()}},
            )
            return feeds.run_out(session.get_one(FeedRun, run_id))
    with db.writing() as session:
        feeds.finish_run_stored(session, run_id, clock(), result, attempts=attempt, details=fetched.details)
        return feeds.run_out(session.get_one(FeedRun, run_id))


def _delay(error: ConnectorError, backoff: float) -> float | None:
    """How long to wait before the next attempt: the back-off, or the server's Retry-After when longer; None when
    the server asks for longer than a run waits."""
    retry_after = error.params.get("retry_after")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        if retry_after > MAX_RETRY_AFTER_SECONDS:
            return None
        return max(backoff, float(retry_after))
    return backoff


def feed_id_for(session: Session, code: str) -> int:
    """The id of the feed with this code (FeedError when none)."""
    feed_id = session.scalar(select(Feed.id).where(Feed.code == code))
    if feed_id is None:
        raise feeds.FeedError("unknown_feed", feed=code[:64])
    return feed_id
