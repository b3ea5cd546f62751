"""The syslog listeners (UDP and TCP) and their batched writer.

The event loop only receives: each datagram or TCP frame goes into one bounded queue with its transport, peer
and time received (`put_nowait`; when the queue is full the message is dropped and counted — the loop never
waits on the database). One writer thread takes up to `batch` messages, or what arrived within `flush_seconds`,
parses them (syslog.parse: never raises) and stores them with one executemany (service.store_events).

Hostile input never stops a listener: bad bytes are stored as "unparsed"; a frame over `max_frame` is cut and
kept as "unparsed" (reason too_long); a TCP client that sends nothing for `idle_seconds` is disconnected and what
it had sent of an unfinished frame is kept as "unparsed"; a peer may hold at most `max_connections_per_peer`
connections (more are closed at once and counted as dropped); a flood fills the queue and is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cityops.clock import Clock
from cityops.db.engine import Database
from cityops.soc import service, syslog

log = logging.getLogger(__name__)
UDP_BUFFER = 16 << 20  # bytes


@dataclass
class Stats:
    received: int = 0
    stored: int = 0
    dropped: int = 0
    unparsed: int = 0
    mirrored: int = 0
    batches: int = 0
    failed_batches: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {
                name: getattr(self, name)
                for name in ("received", "stored", "dropped", "unparsed", "mirrored", "batches", "failed_batches")
            }


@dataclass(frozen=True)
class Settings:
    queue_size: int = 100_000
    batch: int = 2_000
    flush_seconds: float = 0.1
    max_frame: int = 65_536
    idle_seconds: float = 60.0
    max_connections_per_peer: int = 64


Item = tuple[bytes, str, str, datetime, bool]  # data, transport, peer, received, truncated


class Listener:
    """UDP and TCP syslog listeners feeding one writer thread."""

    def __init__(self, db: Database, clock: Clock, settings: Settings | None = None) -> None:
        self.db, self.clock = db, clock
        self.settings = settings or Settings()
        self.queue: queue.Queue[Item | None] = queue.Queue(self.settings.queue_size)
        self.stats = Stats()
        self.udp_address: tuple[str, int] | None = None
        self.tcp_address: tuple[str, int] | None = None
        self._writer: threading.Thread | None = None
        self._transports: list[Any] = []
        self._server: asyncio.base_events.Server | None = None
        self._per_peer: Counter[str] = Counter()
        self._clients: set[asyncio.StreamWriter] = set()

    # --- receiving (event loop) ---------------------------------------------------------------------------------

    def offer(self, data: bytes, transport: str, peer: str, truncated: bool = False) -> None:
        self.stats.add(received=1)
        try:
            self.queue.put_nowait((data, transport, peer, self.clock(), truncated))
        except queue.Full:
            self.stats.add(dropped=1)

    async def start(self, udp: tuple[str, int] | None, tcp: tuple[str, int] | None) -> None:
        loop = asyncio.get_running_loop()
        self._writer = threading.Thread(target=self._write_loop, name="soc-writer", daemon=True)
        self._writer.start()
        if udp is not None:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=udp)
            self._transports.append(transport)
            _grow_receive_buffer(transport.get_extra_info("socket"))
            self.udp_address = transport.get_extra_info("sockname")[:2]
        if tcp is not None:
            self._server = await asyncio.start_server(self._client, tcp[0], tcp[1], limit=self.settings.max_frame)
            self.tcp_address = self._server.sockets[0].getsockname()[:2]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = _peer(peer_info) if peer_info else ""
        host = peer_info[0] if peer_info else ""
        if self._per_peer[host] >= self.settings.max_connections_per_peer:
            self.stats.add(dropped=1)
            writer.close()
            return
        self._per_peer[host] += 1
        self._clients.add(writer)
        self.stats.add(connections=1)
        decoder = syslog.FrameDecoder(self.settings.max_frame)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(65_536), self.settings.idle_seconds)
                except TimeoutError:
                    break
                if not data:
                    break
                for frame, truncated in decoder.feed(data):
                    self.offer(frame, "tcp", peer, truncated)
        except (ConnectionError, OSError):
            pass
        finally:
            rest = decoder.pending()
            if rest.strip(b"\r\n\x00 "):
                self.offer(rest, "tcp", peer, truncated=not rest.rstrip().endswith(b"\n"))
            self._per_peer[host] -= 1
            if self._per_peer[host] <= 0:
                del self._per_peer[host]
            self._clients.discard(writer)
            writer.close()

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        if self._server is not None:
            self._server.close()
            for client in list(self._clients):
                client.close()
        self.queue.put(None)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join, 30)

    # --- writing (thread) ---------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        settings = self.settings
        ending = False
        while not ending:
            try:
                first = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + settings.flush_seconds
            while len(batch) < settings.batch:
                remaining = deadline - time.monotonic()
                try:
                    item = self.queue.get(timeout=max(0.0, remaining)) if remaining > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    ending = True
                    break
                batch.append(item)
            self.write(batch)

    def write(self, batch: list[Item]) -> None:
        incoming = []
        for data, transport, peer, received, truncated in batch:
            event = syslog.parse(data, received, truncated=truncated)
            incoming.append(service.Incoming(event, transport, peer))
        unparsed = sum(1 for item in incoming if item.event.source_format == "unparsed")
        try:
            with self.db.writing() as session:
                done = service.store_events(session, incoming, self.clock())
        except Exception:
            log.exception("soc: a batch of %d events could not be stored", len(batch))
            self.stats.add(dropped=len(batch), failed_batches=1)
            return
        self.stats.add(stored=done["stored"], mirrored=done["mirrored"], unparsed=unparsed, batches=1)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Whether everything offered so far was written (or dropped) within the timeout (a bounded poll)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.stats.snapshot()
            if snap["stored"] + snap["dropped"] >= snap["received"] and self.queue.empty():
                return True
            time.sleep(0.02)
        return False


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: Any) -> None:
        truncated = len(data) > self.listener.settings.max_frame
        self.listener.offer(data[: self.listener.settings.max_frame], "udp", _peer(addr), truncated)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable: nothing to do
        log.debug("soc udp: %s", exc)


def _peer(address: Any) -> str:
    """`host:port`, an IPv6 host in brackets."""
    host = str(address[0])
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def _grow_receive_buffer(sock: Any) -> None:
    """A bigger kernel buffer for UDP, so that a burst waits there rather than being lost (as root the system's
    limit is passed over with SO_RCVBUFFORCE; otherwise net.core.rmem_max caps it)."""
    if sock is None:
        return
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)
            return
        except OSError:
            continue


def parse_address(text: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:5514`) → (host, port); ValueError when it is not one."""
    host, _, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(text)
    return host, int(port_text)


class Background:
    """A listener on its own event loop in a thread (tests, the demo, the benchmark)."""

    def __init__(self, listener: Listener, udp: tuple[str, int] | None, tcp: tuple[str, int] | None) -> None:
        self.listener = listener
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(listener.start(udp, tcp))
            except BaseException as exc:  # reported to the starter
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="soc-listener", daemon=True)
        self.thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    def stop(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self.listener.stop(), self.loop)
        future.result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
