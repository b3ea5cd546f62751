"""The mqtt kind: a subscription held open by one worker; each message's topic and JSON payload become observations.

Messages are gathered briefly (at most BATCH_SECONDS or BATCH_ITEMS) and stored as one batch, so that a sensor
network sending hundreds of readings a second costs a transaction per batch, not per reading. A message that is
not JSON, or that the mapping cannot read, becomes one rejection naming its topic; the others are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

from cityops.connectors import register
from cityops.connectors.base import Connector, ConnectorError, FeedContext, Fetched
from cityops.connectors.mapping import MappingFailed, apply
from cityops.connectors.mqtt.client import BrokerOptions, BrokerProblem, Message, subscribe_forever
from cityops.connectors.mqtt.schema import MqttSettings
from cityops.i18n import both, translate
from cityops.observations.service import Rejection

Deliver = Callable[[Fetched], Awaitable[None]]
Report = Callable[[ConnectorError], Awaitable[None]]
MAX_PAYLOAD_BYTES = 1024 * 1024
_PROBLEM_CODES = {
    "unreachable": "mqtt_unreachable",
    "lost": "mqtt_connection_lost",
    "refused": "mqtt_refused",
    "subscribe_refused": "mqtt_subscribe_refused",
}


@register
class MqttConnector(Connector):
    """Subscribe to topics on a broker and turn each message into observations."""

    kind = "mqtt"
    settings_model = MqttSettings
    long_running = True
    batch_seconds: ClassVar[float] = 0.5
    batch_items: ClassVar[int] = 500

    def __init__(self, feed: FeedContext) -> None:
        super().__init__(feed)
        self.subscribed = asyncio.Event()  # set while subscribed, cleared while the connection is down

    @property
    def settings(self) -> MqttSettings:
        return cast(MqttSettings, self.feed.settings)

    def broker_options(self) -> BrokerOptions:
        """Where to connect: the feed's settings, with the client id fixed to the feed when none is given."""
        settings = self.settings
        return BrokerOptions(
            host=settings.host,
            port=settings.port,
            topics=tuple(settings.topics),
            client_id=settings.client_id or f"cityops-{self.feed.code}"[:128],
            qos=settings.qos,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else "",
            keepalive=settings.keepalive,
            tls=settings.tls,
        )

    async def listen(self, deliver: Deliver, stop: asyncio.Event, report: Report | None = None) -> None:
        """Stay subscribed until `stop` is set: deliver each batch of messages, reconnect with back-off when the
        connection fails, and `report` each new kind of connection problem (once, until a connection is made)."""
        options = self.broker_options()
        queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=20 * self.batch_items)
        reported: set[str] = set()

        async def on_problem(problem: BrokerProblem, delay: float) -> None:
            self.subscribed.clear()
            code = _PROBLEM_CODES[problem.kind]
            if code in reported or report is None:
                return
            reported.add(code)
            await report(
                ConnectorError(
                    code,
                    retryable=not problem.permanent,
                    broker=options.address,
                    reason=problem.reason,
                    topic=problem.topic,
                    delay=round(delay),
                )
            )

        async def on_connected() -> None:
            reported.clear()
            self.subscribed.set()

        subscriber = asyncio.create_task(
            subscribe_forever(options, queue.put, stop, on_problem=on_problem, on_connected=on_connected)
        )
        try:
            while True:
                batch = await self._gather(queue, subscriber)
                if not batch:
                    break
                for fetched in self.read(batch):
                    await deliver(fetched)
        finally:
            self.subscribed.clear()
            if not subscriber.done():
                subscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await subscriber  # raises a bug of the subscriber, if any

    async def _gather(self, queue: asyncio.Queue[Message], subscriber: asyncio.Task[None]) -> list[Message]:
        """The next batch: wait for a message, then take what follows within batch_seconds (up to batch_items).
        Once the subscriber has ended (stopped), what is left in the queue; empty when nothing is."""
        batch: list[Message] = []
        if queue.empty():
            getting = asyncio.create_task(queue.get())
            await asyncio.wait({getting, subscriber}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getting
            if getting.done() and not getting.cancelled():
                batch.append(getting.result())
        deadline = asyncio.get_running_loop().time() + self.batch_seconds
        while len(batch) < self.batch_items:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if subscriber.done() or remaining <= 0 or not batch:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), timeout=remaining))
            except TimeoutError:
                break
        return batch

    def read(self, messages: list[Message]) -> list[Fetched]:
        """The observations of a run of messages, as batches in which no observation comes twice: a reading sent
        again (a QoS 1 re-delivery, a corrected value) goes into the next batch and replaces the first, as it would
        have had it come later."""
        batches: list[Fetched] = []
        current = Fetched(details={"messages": 0})
        keys: set[tuple[Any, ...]] = set()
        for message in messages:
            items, rejected = self._read_one(message, index=current.details["messages"])
            message_keys = {_key(item) for item in items}
            if message_keys & keys:
                batches.append(current)
                current, keys = Fetched(details={"messages": 0}), set()
                items, rejected = self._read_one(message, index=0)
            current.items.extend(items)
            current.rejected.extend(rejected)
            current.details["messages"] += 1
            keys |= message_keys
        if current.details["messages"]:
            batches.append(current)
        return batches

    def _read_one(self, message: Message, index: int) -> tuple[list[dict[str, Any]], list[Rejection]]:
        """One message's items, or its rejections (each naming the topic)."""
        topic = message.topic
        if not message.payload:
            return [], [_rejection(index, "mqtt_empty_payload", topic=topic)]
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            return [], [_rejection(index, "mqtt_payload_too_large", topic=topic, limit="1 MiB")]
        try:
            document = json.loads(message.payload.decode("utf-8"))
        except UnicodeDecodeError:
            return [], [_rejection(index, "mqtt_not_text", topic=topic, record={"topic": topic})]
        except json.JSONDecodeError as exc:
            raw = {"topic": topic, "payload": message.payload[:500].decode("utf-8", "replace")}
            return [], [
                _rejection(index, "mqtt_invalid_json", topic=topic, line=exc.lineno, column=exc.colno, record=raw)
            ]
        mapping = self.settings.mapping
        try:
            items, problems = apply(mapping, document, topic=topic, first_index=1)
        except MappingFailed:
            return [], [
                _rejection(
                    index,
                    "mqtt_not_records",
                    topic=topic,
                    path=mapping.records or "$",
                    record={"topic": topic, "payload": document},
                )
            ]
        if mapping.source_ref is None:
            for item in items:
                item["source_ref"] = topic[:255]  # where a reading came from, kept beside it
        rejected = [
            Rejection(
                index,
                problem.code,
                translate("mqtt.on_topic", "vi", topic=topic, problem=problem.message_vi),
                translate("mqtt.on_topic", "en", topic=topic, problem=problem.message_en),
                problem.field,
                record={"topic": topic, "record": problem.record},
            )
            for problem in problems
        ]
        return items, rejected


def _rejection(index: int, code: str, *, record: Any = None, **params: Any) -> Rejection:
    vi, en = both(f"item.{code}", **params)
    return Rejection(index, code, vi, en, "payload", record=record)


def _key(item: dict[str, Any]) -> tuple[Any, ...]:
    dimensions = item.get("dimensions") or {}
    return (item["indicator"], item["subject"], item["period"], tuple(sorted(dimensions.items())))
