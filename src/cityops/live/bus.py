"""The live bus: `publish(topic, payload)` and `subscribe(topics)`, in one process (SQLite) or across processes
(PostgreSQL LISTEN/NOTIFY).

- `LocalBus` delivers to the subscribers of this process. A publish may come from any thread (the services run in
  the thread pool): each subscriber is reached in its own event loop with `loop.call_soon_threadsafe`.
- `PostgresBus` publishes with `pg_notify` and hears every process's notifications on one listening connection per
  process (a daemon thread; it connects when the first subscriber comes, reconnects with back-off 0.5 s → 30 s,
  and ends when the bus is closed). A `pg_notify` inside a writing transaction is delivered at commit, and not
  at all on rollback — which is what `cityops.live.publish(session, …)` relies on.

Every subscriber has a bounded queue (QUEUE_SIZE): one that does not keep up is dropped (its iteration ends, the
browser reconnects and re-reads), so a slow client never makes memory grow.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson
import psycopg
from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

CHANNEL = "cityops_live"
TOPICS = ("values", "alerts", "incidents", "reports", "cameras", "security")
QUEUE_SIZE = 100
NOTIFY_LIMIT = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
READY_WAIT_SECONDS = 5.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0


@dataclass(frozen=True)
class Message:
    """One published fact: its topic and its JSON payload."""

    topic: str
    payload: dict[str, Any]

    @cached_property
    def frame(self) -> bytes:
        """The message as one server-sent event, encoded once however many subscribers send it."""
        return b"event: " + self.topic.encode() + b"\ndata: " + orjson.dumps(self.payload) + b"\n\n"


_END = Message("", {})  # put in a queue to end its iteration (dropped, or the bus is closing)


class Subscription:
    """What one subscriber receives: an async iterator of messages of its topics, ending when it is dropped."""

    def __init__(self, topics: Iterable[str], size: int) -> None:
        self.topics = frozenset(topics)
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Message] = asyncio.Queue(size)
        self.ended = False
        self.dropped = False

    def offer(self, message: Message) -> None:
        """Queue a message (in the subscriber's loop); a full queue drops the subscriber."""
        if self.ended:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            log.info("live: a subscriber fell %d messages behind and was dropped", self.queue.maxsize)
            self.end()

    def end(self) -> None:
        """End the iteration now (in the subscriber's loop): what is queued is discarded."""
        if self.ended:
            return
        self.ended = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_END)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        if self.ended and self.queue.empty():
            raise StopAsyncIteration
        message = await self.queue.get()
        if message is _END:
            raise StopAsyncIteration
        return message


def _offer_all(targets: list[Subscription], message: Message) -> None:
    for subscription in targets:
        subscription.offer(message)


class Bus(ABC):
    """Subscribers of this process and the delivery to them; `publish` is what each kind adds."""

    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self.size = size
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()

    @abstractmethod
    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Deliver a message to every subscriber of its topic (in this process, or in every process)."""

    @asynccontextmanager
    async def subscribe(self, topics: Iterable[str]) -> AsyncIterator[Subscription]:
        """Receive the messages of these topics while the block runs (an async iterator)."""
        subscription = Subscription(topics, self.size)
        with self._lock:
            self._subscribers.add(subscription)
        try:
            await self._started()
            yield subscription
        finally:
            with self._lock:
                self._subscribers.discard(subscription)

    async def _started(self) -> None:  # noqa: B027 — a hook: nothing to wait for unless a kind says so
        """Wait until messages published from now on reach the new subscriber."""

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def deliver(self, message: Message) -> None:
        """Hand a message to every subscriber of its topic, each in its own loop; safe from any thread."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
        with self._lock:
            for subscription in self._subscribers:
                if message.topic in subscription.topics:
                    by_loop.setdefault(subscription.loop, []).append(subscription)
        # One wake-up per loop (a server has one), not one per subscriber: a thousand open pages cost one call.
        for loop, targets in by_loop.items():
            try:
                loop.call_soon_threadsafe(_offer_all, targets, message)
            except RuntimeError:  # the loop is closed: its subscribers are gone
                with self._lock:
                    self._subscribers.difference_update(targets)

    def close(self) -> None:
        """End every subscription (the app is stopping)."""
        with self._lock:
            targets = list(self._subscribers)
        for subscription in targets:
            with suppress(RuntimeError):  # its loop is closed: nothing to end
                subscription.loop.call_soon_threadsafe(subscription.end)


class LocalBus(Bus):
    """One process: a publish goes straight to this process's subscribers."""

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.deliver(Message(topic, payload))


def encode(topic: str, payload: dict[str, Any]) -> str:
    """The NOTIFY payload of a message."""
    return orjson.dumps({"topic": topic, "payload": payload}).decode()


def decode(text: str) -> Message | None:
    """A message from a NOTIFY payload; None when it is not one of ours."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("topic") not in TOPICS or not isinstance(data.get("payload"), dict):
        return None
    return Message(data["topic"], data["payload"])


def libpq_url(url: str | URL) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg's connection string."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus(Bus):
    """Several processes: NOTIFY on one channel; each process listens on one connection of its own."""

    def __init__(self, url: str | URL, size: int = QUEUE_SIZE) -> None:
        super().__init__(size)
        self.conninfo = libpq_url(url)
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._thread_lock = threading.Lock()

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish outside any transaction (for a publish inside one, use `cityops.live.publish`)."""
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, encode(topic, payload)))

    async def _started(self) -> None:
        stopping = self._thread if self._thread is not None and self._stop.is_set() else None
        if stopping is not None:  # closed a moment ago: let that listener finish, then start anew
            await asyncio.to_thread(stopping.join, 2 * READY_WAIT_SECONDS)
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._listening.clear()
                self._thread = threading.Thread(target=self._listen, name="cityops-live-listen", daemon=True)
                self._thread.start()
        if not self._listening.is_set():
            await asyncio.to_thread(self._listening.wait, READY_WAIT_SECONDS)

    def close(self) -> None:
        super().close()
        self._stop.set()

    def _listen(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    backoff = BACKOFF_FIRST
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=1.0):
                            message = decode(notify.payload)
                            if message is not None:
                                self.deliver(message)
            except psycopg.Error as exc:
                self._listening.clear()
                log.warning("live: the PostgreSQL listener lost its connection (%s); again in %.1f s", exc, backoff)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, BACKOFF_MAX)
        self._listening.clear()

    @property
    def listening(self) -> bool:
        """Whether the listening connection is up."""
        return self._listening.is_set()


_buses: dict[str, Bus] = {}
_buses_lock = threading.Lock()


def bus_for(url: str | URL) -> Bus:
    """This process's bus for a database: PostgreSQL's NOTIFY for PostgreSQL, in-process for SQLite."""
    parsed = make_url(url) if isinstance(url, str) else url
    key = parsed.render_as_string(hide_password=False)
    with _buses_lock:
        bus = _buses.get(key)
        if bus is None:
            bus = PostgresBus(parsed) if parsed.get_backend_name() == "postgresql" else LocalBus()
            _buses[key] = bus
        return bus


def close_all() -> None:
    """End every subscription of every bus of this process (the server is stopping)."""
    with _buses_lock:
        buses = list(_buses.values())
    for bus in buses:
        bus.close()
