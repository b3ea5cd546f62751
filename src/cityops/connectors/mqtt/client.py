"""MQTT protocol code for the mqtt connector: connect, subscribe, hand each message over, reconnect with back-off.

Plain asyncio and aiomqtt (on paho-mqtt), nothing of cityops: it can be read and tried on its own.

The session is persistent (MQTT 3.1.1, clean session off) under a fixed client id: while the connection is down
the broker keeps the subscriptions and the QoS 1 messages published meanwhile, and delivers them on reconnection.
A broker restarted without persistence has forgotten the session, so every connection subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

log = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
TIMEOUT_SECONDS = 10.0
# CONNACK codes no retry changes by itself (protocol, client id, credentials, rights), as MQTT 3.1.1 and 5 number them.
_REFUSED = {1, 2, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x8C}


@dataclass(frozen=True)
class BrokerOptions:
    """Where to connect and what to subscribe to."""

    host: str
    port: int
    topics: tuple[str, ...]
    client_id: str
    qos: int = 1
    username: str = ""
    password: str = ""
    keepalive: int = 60
    tls: bool = False

    @property
    def address(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Message:
    """One message as it came from the broker."""

    topic: str
    payload: bytes
    qos: int = 0
    retained: bool = False


class BrokerProblem(Exception):
    """Why there is no subscription right now.

    kind: "unreachable" (no connection could be made), "lost" (an open connection ended), "refused" (the broker
    answered no: credentials, rights, client id) or "subscribe_refused" (a topic was refused); `topic` says which.
    """

    def __init__(self, kind: str, reason: str, *, topic: str = "") -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind, self.reason, self.topic = kind, reason, topic

    @property
    def permanent(self) -> bool:
        """Whether waiting alone will not mend it (someone must change a setting or a right)."""
        return self.kind in ("refused", "subscribe_refused")


OnMessage = Callable[[Message], Awaitable[None]]
OnProblem = Callable[[BrokerProblem, float], Awaitable[None]]
OnConnected = Callable[[], Awaitable[None]]


def backoff(first: float = BACKOFF_FIRST_SECONDS, maximum: float = BACKOFF_MAX_SECONDS) -> Iterator[float]:
    """The waits between attempts: first, doubling, never above maximum (1, 2, 4 … 30, 30 …)."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, maximum)


async def subscribe_forever(
    options: BrokerOptions,
    on_message: OnMessage,
    stop: asyncio.Event,
    *,
    on_problem: OnProblem | None = None,
    on_connected: OnConnected | None = None,
) -> None:
    """Stay subscribed until `stop` is set, handing each message to `on_message` in the order received.

    1. Connect (persistent session, fixed client id) and subscribe to every topic.
    2. Hand messages over until the connection ends or `stop` is set.
    3. When the connection could not be made or was lost, tell `on_problem` why and how long until the next
       attempt, wait that long (1, 2, 4 … at most 30 seconds; back to 1 once a connection has held for 30
       seconds, so that a broker dropping every connection at once is not hammered) and start again.
       Nothing here gives up: a refused password is retried too, in case it is mended on the broker.
    """
    delays = backoff()
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        connected = False
        connected_at = 0.0
        problem: BrokerProblem | None = None
        try:
            async with _client(options) as client:
                connected, connected_at = True, loop.time()
                await _subscribe(client, options)
                log.info("mqtt %s: subscribed to %s", options.address, ", ".join(options.topics))
                if on_connected is not None:
                    await on_connected()
                await _pump(client, on_message, stop)
        except BrokerProblem as exc:
            problem = exc
        except MqttConnectError as exc:
            code = exc.rc if isinstance(exc.rc, int) or exc.rc is None else exc.rc.value
            problem = BrokerProblem("refused" if code in _REFUSED else "unreachable", _reason(exc))
        except aiomqtt.MqttError as exc:
            problem = BrokerProblem("lost" if connected else "unreachable", _reason(exc))
        if stop.is_set():
            continue
        if problem is None:
            problem = BrokerProblem("lost", "the connection ended")
        if problem.kind == "lost" and loop.time() - connected_at >= BACKOFF_MAX_SECONDS:
            delays = backoff()  # it worked for a while: start again from the shortest wait (not when it flaps)
        delay = next(delays)
        log.warning("mqtt %s: %s; next attempt in %.0f s", options.address, problem, delay)
        if on_problem is not None:
            await on_problem(problem, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)


def _reason(exc: Exception) -> str:
    if isinstance(exc, aiomqtt.MqttCodeError) and exc.rc is not None and not isinstance(exc.rc, int):
        return str(exc.rc)  # a reason code's name ("Bad user name or password")
    text = str(exc)
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return text[:200] or type(exc).__name__


def _client(options: BrokerOptions) -> aiomqtt.Client:
    return aiomqtt.Client(
        options.host,
        options.port,
        username=options.username or None,
        password=options.password or None,
        identifier=options.client_id,
        protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=False,
        keepalive=options.keepalive,
        timeout=TIMEOUT_SECONDS,
        tls_context=ssl.create_default_context() if options.tls else None,
    )


async def _subscribe(client: aiomqtt.Client, options: BrokerOptions) -> None:
    granted = await client.subscribe([(topic, options.qos) for topic in options.topics])
    codes: list[Any] = list(granted)
    for topic, code in zip(options.topics, codes, strict=False):
        value = code if isinstance(code, int) else int(code.value)
        if value >= 0x80:  # a failure reason code (MQTT 3.1.1 says 0x80 for every refusal)
            raise BrokerProblem("subscribe_refused", f"SUBACK {value:#x}", topic=topic)


async def _pump(client: aiomqtt.Client, on_message: OnMessage, stop: asyncio.Event) -> None:
    """Hand messages over until `stop` is set (returns) or the connection ends (aiomqtt.MqttError)."""

    async def read() -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = b"" if payload is None else str(payload).encode()
            await on_message(Message(message.topic.value, bytes(payload), message.qos, bool(message.retain)))

    reader = asyncio.create_task(read())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, stopped):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if reader.done() and not reader.cancelled():
        reader.result()  # the connection ended: raise why
