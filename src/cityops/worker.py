"""`cityops worker`: the scheduled work — lateness of feeds, pulls that are due, long-running subscriptions.

Two rounds run side by side, so that a slow pull never delays the renewal of a lease:
- every tick (a few seconds): plan expected periods and claim overdue ones (feeds.lateness.tick), then claim and run
  the pulls whose time has come (a conditional UPDATE per feed: one worker wins each);
- every supervision round (at most LEASE / 3 apart): keep one subscription per long-running feed (mqtt) under a
  lease in the database. A worker claims a feed whose lease is free or run out, renews it each round, and stops its
  subscription as soon as the lease is no longer its own; so with several workers each feed is held by exactly
  one, and a worker that stops (or dies) is replaced once its lease runs out.
A subscription that ends by itself (a connector's bug, settings that no longer validate) is logged as a failed
run and started again after a wait that doubles each time (RESTART_FIRST … RESTART_MAX), or as soon as the feed
is changed. Everything reads the injected clock.
`cityops serve` runs the same worker inside the web process when `CITYOPS_EMBEDDED_WORKER` is on (the default
for the single-process SQLite set-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, not_, or_, select, update
from sqlalchemy.exc import OperationalError

from cityops import outbound
from cityops.alerts import evaluation
from cityops.cameras import health as camera_health
from cityops.clock import Clock
from cityops.connectors import connector_class, kinds
from cityops.connectors.base import ConnectorError, Fetched
from cityops.connectors.runner import Prepared, prepare, run_feed, store
from cityops.db.engine import Database
from cityops.feedback import privacy as feedback_privacy
from cityops.feedback import stats as feedback_stats
from cityops.feeds import lateness
from cityops.feeds import service as feeds
from cityops.feeds.models import Feed
from cityops.incidents import escalation
from cityops.live.bus import bus_for
from cityops.notifications import delivery
from cityops.reports import service as reports_schedule
from cityops.settings import Settings
from cityops.soc import tick as soc_tick

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
MESSAGE_RUN_SECONDS = 60  # the messages of a long-running feed are logged as one run per minute
RESTART_FIRST = timedelta(seconds=30)
RESTART_MAX = timedelta(minutes=10)
STOP_SECONDS = 10.0  # how long a subscription may take to finish its last batch and disconnect
REACT_CHECK_SECONDS = 1.0  # how often the reaction loop looks whether it must stop


@dataclass
class _Subscription:
    """A long-running feed this worker holds: its listener task and the run its messages are counted in."""

    feed_id: int
    version: str
    prepared: Prepared
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    logging: asyncio.Lock = field(default_factory=asyncio.Lock)  # one run-log write at a time
    delivered: int = 0
    run_id: int | None = None
    run_started: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    first_error: tuple[str, str, str] | None = None


@dataclass
class _Failure:
    """A feed whose subscription could not start or ended by itself: when to try again."""

    version: str
    attempts: int
    retry_at: datetime


def _version(updated_at: datetime | None, settings: Any, secrets: str) -> str:
    """What a subscription was started with: when it changes, the subscription starts again with the new settings."""
    text = json.dumps([updated_at.isoformat() if updated_at else "", settings, secrets], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Worker:
    """One worker process (or the web process's embedded worker)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        secret_key: str,
        *,
        name: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.db = db
        self.settings = settings  # SMTP and the public URL for notifications; None: no e-mail is sent
        if settings is not None:
            outbound.configure(settings.outbound_allow)
        self.clock = clock
        self.secret_key = secret_key
        # lease_owner holds 64 characters: keep the end of a long host name, where the process id is.
        self.name = (name or f"{socket.gethostname()}:{os.getpid()}:{id(self) & 0xFFFF:x}")[-64:]
        self.held: dict[int, _Subscription] = {}
        self.failures: dict[int, _Failure] = {}
        self._renewed_at: datetime | None = None
        self._pulling = threading.Lock()

    # --- scheduled work -------------------------------------------------------------------------

    def tick(self) -> dict[str, Any]:
        """One round of scheduled work (blocking): lateness, alert rules, escalation, due pulls, then deliveries."""
        now = self.clock()
        with self.db.writing() as session:
            result = lateness.tick(session, now)
        evaluated = evaluation.evaluate_due(self.db, self.clock, owner=self.name)
        escalated = escalation.escalate(self.db, self.clock)
        runs = self.run_due_pulls()
        sent = delivery.deliver_due(self.db, self.clock, self.settings, owner=self.name)
        published = feedback_stats.publish_indicators(self.db, self.clock)
        purged = feedback_privacy.purge_expired(self.db, self.clock, self.settings)
        reported = reports_schedule.scheduled(self.db, self.clock, self.settings)
        cameras = camera_health.tick(self.db, self.clock, self.settings, self.secret_key, self.name)
        security = soc_tick.tick(self.db, self.clock, owner=self.name)
        return {
            "planned": result.planned,
            "late": result.late,
            "alerts": result.alerts_fired,
            "rules": evaluated,
            "escalated": escalated,
            "runs": runs,
            "sent": sent,
            "feedback_values": published,
            "personal_data_purged": purged,
            "report": reported,
            "cameras": cameras,
            "security": security,
        }

    def run_due_pulls(self) -> list[dict[str, Any]]:
        """Claim and run every scheduled feed whose time has come."""
        scheduled = [kind for kind in kinds() if connector_class(kind).scheduled]
        with self._pulling:
            with self.db.writing() as session:
                claimed = feeds.claim_due_pulls(session, self.clock(), scheduled)
            return [run_feed(self.db, feed_id, self.clock, self.secret_key) for feed_id in claimed]

    # --- long-running feeds ---------------------------------------------------------------------

    def _claim_leases(self, now: datetime) -> dict[int, str]:
        """Renew this worker's leases, take the free or run-out ones, give up those of paused feeds; the feeds held
        now (id → version of their settings). One conditional UPDATE: of two workers claiming a feed, one wins."""
        long_running = [kind for kind in kinds() if connector_class(kind).long_running]
        wanted = and_(Feed.kind.in_(long_running), Feed.paused.is_(False))
        with self.db.writing() as session:
            session.execute(
                update(Feed)
                .where(Feed.lease_owner == self.name, not_(wanted))
                .values(lease_owner="", lease_until=None)
                .execution_options(synchronize_session=False)
            )
            session.execute(
                update(Feed)
                .where(
                    wanted,
                    or_(Feed.lease_owner == self.name, Feed.lease_until.is_(None), Feed.lease_until < now),
                )
                .values(lease_owner=self.name, lease_until=now + LEASE)
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                select(Feed.id, Feed.updated_at, Feed.settings, Feed.secrets).where(
                    Feed.lease_owner == self.name, wanted
                )
            )
            return {row.id: _version(row.updated_at, row.settings, row.secrets) for row in rows}

    async def supervise(self) -> None:
        """Renew the leases, then start, keep and stop the subscriptions so that they match what this worker holds."""
        now = self.clock()
        try:
            leased = await asyncio.to_thread(self._claim_leases, now)
        except Exception:
            # Not renewed: once the leases have run out another worker may hold them, so stop listening then.
            if self._renewed_at is None or now - self._renewed_at >= LEASE:
                for feed_id in list(self.held):
                    await self._stop(feed_id)
            raise
        self._renewed_at = now
        for feed_id, subscription in list(self.held.items()):
            if feed_id not in leased or leased[feed_id] != subscription.version:
                await self._stop(feed_id)
            elif subscription.task is not None and subscription.task.done():
                await self._stop(feed_id)
                self._failed(feed_id, subscription.version, now, worked=subscription.delivered > 0)
        for feed_id in list(self.failures):
            if feed_id not in leased:
                del self.failures[feed_id]
        for feed_id, version in leased.items():
            failure = self.failures.get(feed_id)
            if feed_id in self.held or (failure and failure.version == version and now < failure.retry_at):
                continue
            await self._start(feed_id, version, now)

    def _failed(self, feed_id: int, version: str, now: datetime, *, worked: bool) -> None:
        previous = self.failures.get(feed_id)
        attempts = previous.attempts + 1 if previous and previous.version == version and not worked else 1
        wait = min(RESTART_FIRST * 2 ** (attempts - 1), RESTART_MAX)
        self.failures[feed_id] = _Failure(version, attempts, now + wait)

    async def _start(self, feed_id: int, version: str, now: datetime) -> None:
        def build() -> Prepared | ConnectorError | None:
            with self.db.reading() as session:
                feed = session.get(Feed, feed_id)
                if feed is None:
                    return None
                try:
                    return prepare(session, feed, self.secret_key)
                except ConnectorError as exc:
                    return exc

        prepared = await asyncio.to_thread(build)
        if prepared is None:
            return
        if isinstance(prepared, ConnectorError):
            log.warning("feed %s cannot start: %s", feed_id, prepared)
            self._failed(feed_id, version, now, worked=False)
            await asyncio.to_thread(self._log_failure, feed_id, None, prepared)
            return
        subscription = _Subscription(feed_id, version, prepared)
        subscription.task = asyncio.create_task(self._listen(subscription), name=f"feed-{feed_id}")
        self.held[feed_id] = subscription

    async def _stop(self, feed_id: int) -> None:
        subscription = self.held.pop(feed_id)
        subscription.stop.set()
        if subscription.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(subscription.task, timeout=STOP_SECONDS)

    async def _listen(self, subscription: _Subscription) -> None:
        """Run a connector's `listen(deliver, stop[, report])` until it returns (when stopped) or fails."""
        connector = subscription.prepared.connector
        listen: Callable[..., Awaitable[None]] | None = getattr(connector, "listen", None)
        if listen is None:
            return

        async def deliver(fetched: Fetched) -> None:
            # The broker has been told these messages arrived: while the database cannot be reached, keep trying
            # (meanwhile new messages wait in the connector's queue) rather than lose them.
            wait = 1.0
            while True:
                try:
                    async with subscription.logging:
                        await asyncio.to_thread(self._deliver, subscription, fetched)
                    return
                except OperationalError as exc:  # the database is down or locked, not the data wrong
                    if subscription.stop.is_set():
                        raise
                    log.warning("feed %s: cannot store (%s); trying again in %.0f s", subscription.feed_id, exc, wait)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(subscription.stop.wait(), timeout=wait)
                    wait = min(wait * 2, 30.0)

        async def report(error: ConnectorError) -> None:
            async with subscription.logging:
                await asyncio.to_thread(self._log_failure, subscription.feed_id, subscription, error)

        extra = {"report": report} if "report" in inspect.signature(listen).parameters else {}
        try:
            await listen(deliver, subscription.stop, **extra)
        except ConnectorError as exc:
            await report(exc)
        except Exception as exc:  # a connector's bug must not stop the worker: logged, restarted later
            log.exception("feed %s: listener failed", subscription.feed_id)
            await report(ConnectorError("listener_failed", retryable=True, reason=f"{type(exc).__name__}: {exc}"[:200]))

    def _deliver(self, subscription: _Subscription, fetched: Fetched) -> None:
        """Store a batch of messages and count it in the feed's current message run (one per minute)."""
        now = self.clock()
        result = store(self.db, subscription.prepared, fetched, now)
        subscription.delivered += 1
        with self.db.writing() as session:
            started = subscription.run_started
            if (
                subscription.run_id is None
                or started is None
                or now - started >= timedelta(seconds=MESSAGE_RUN_SECONDS)
            ):
                subscription.run_id = feeds.start_run(session, subscription.feed_id, "message", now).id
                subscription.run_started = now
                subscription.counts = {"messages": 0, "received": 0, "accepted": 0, "rejected": 0}
                subscription.first_error = None
            counts = subscription.counts
            counts["messages"] += int(fetched.details.get("messages", 1))
            counts["received"] += result.received
            counts["accepted"] += result.accepted
            counts["rejected"] += len(result.rejected)
            if subscription.first_error is None and result.rejected:
                first = result.rejected[0]
                subscription.first_error = (first.code, first.message_vi, first.message_en)
            code, message_vi, message_en = subscription.first_error or ("", "", "")
            feeds.finish_run(
                session,
                subscription.run_id,
                now,
                status="ok" if not counts["rejected"] else ("partial" if counts["accepted"] else "failed"),
                received=counts["received"],
                accepted=counts["accepted"],
                rejected=counts["rejected"],
                batch_id=result.batch_id,
                error_code=code,
                retryable=False if code else None,
                message_vi=message_vi,
                message_en=message_en,
                details={"worker": self.name, "messages": counts["messages"]},
            )

    def _log_failure(self, feed_id: int, subscription: _Subscription | None, error: ConnectorError) -> None:
        """A failed run of its own: the connection or the connector failed (messages after it open a new run)."""
        now = self.clock()
        with self.db.writing() as session:
            run_id = feeds.start_run(session, feed_id, "message", now).id
            feeds.finish_run(
                session,
                run_id,
                now,
                status="failed",
                error_code=error.code,
                retryable=error.retryable,
                message_vi=error.message_vi,
                message_en=error.message_en,
                details={"worker": self.name, "params": {key: str(value)[:200] for key, value in error.params.items()}},
            )
        if subscription is not None:
            subscription.run_id = subscription.run_started = None

    async def release(self) -> None:
        """Stop every subscription (each finishes its last batch) and give up the leases (on shutdown)."""
        for subscription in self.held.values():
            subscription.stop.set()
        for feed_id in list(self.held):
            await self._stop(feed_id)
        self.failures.clear()

        def give_up() -> None:
            with self.db.writing() as session:
                session.execute(
                    update(Feed).where(Feed.lease_owner == self.name).values(lease_owner="", lease_until=None)
                )

        await asyncio.to_thread(give_up)
        self._renewed_at = None

    async def react(self, stop: asyncio.Event) -> None:
        """Evaluate the rules that new data made due as soon as it is stored, not at the next tick.

        Ingest marks the rules of the indicators it wrote due in its transaction and publishes "values" on the live
        bus; that message wakes this loop (in-process on SQLite; LISTEN/NOTIFY on PostgreSQL, so a worker process
        hears every API process). Messages arriving during a round are served by one more round; rules stay claimed
        one worker at a time (evaluation.claim), so several workers reacting together do each rule once."""
        bus = bus_for(self.db.engine.url)
        while not stop.is_set():
            try:
                async with bus.subscribe(["values"]) as subscription:
                    messages = aiter(subscription)
                    while not stop.is_set():
                        try:
                            await asyncio.wait_for(anext(messages), timeout=REACT_CHECK_SECONDS)
                        except TimeoutError:
                            continue
                        if subscription.ended:
                            break
                        while not subscription.queue.empty():  # coalesce what arrived meanwhile
                            subscription.queue.get_nowait()
                        await asyncio.to_thread(evaluation.evaluate_due, self.db, self.clock, owner=self.name)
            except StopAsyncIteration:  # dropped (fell behind) or the bus closed: subscribe again
                pass
            except Exception:
                log.exception("worker reaction to new values failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=REACT_CHECK_SECONDS)

    async def run(self, stop: asyncio.Event, tick_seconds: float = 10.0) -> None:
        """Work until stopped: a tick every tick_seconds and, beside it, a supervision round often enough to renew
        the leases well before they run out."""

        async def every(seconds: float, step: Callable[[], Awaitable[Any]], what: str) -> None:
            while not stop.is_set():
                try:
                    await step()
                except Exception:  # a failed round is logged; the next one tries again
                    log.exception("worker %s failed", what)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=seconds)

        try:
            await asyncio.gather(
                every(tick_seconds, lambda: asyncio.to_thread(self.tick), "tick"),
                every(min(tick_seconds, LEASE.total_seconds() / 3), self.supervise, "supervision"),
                self.react(stop),
            )
        finally:
            await self.release()
