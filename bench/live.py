"""Live delivery: how soon a new value reaches every open page, with 10 and with 1,000 pages open.

For each backend, on a fresh database with the real server (`cityops serve`) in its own process:
1. open N server-sent-event streams (`/live/events?topics=values`, as the pages do), each a plain socket in one
   asyncio loop of this process — light enough that a thousand of them measure the server, not the client;
2. post one observation at a time (a new period each, so each is a change) at a steady pace, wait for its
   acknowledgement, and note when the post was sent;
3. each stream notes when each `values` event arrives; the k-th event answers the k-th post.

The delay of one delivery is its arrival minus the post's send time: it covers the request, the commit, the bus
(in-process on SQLite, LISTEN/NOTIFY on PostgreSQL) and the fan-out. Issue 7 asks for every page within one second;
issue 10 for p95 ≤ 250 ms with 1,000 pages.

Settings (environment): CITYOPS_BENCH_LIVE_POSTS (default 40), CITYOPS_BENCH_LIVE_PACE (seconds between posts, 0.25).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx

from bench._support import Result, each_backend, percentile, running_server
from bench.ingest import _prepare
from cityops.clock import LOCAL_TZ
from cityops.db.engine import Database
from cityops.settings import Settings

POSTS = int(os.environ.get("CITYOPS_BENCH_LIVE_POSTS", "40"))
PACE = float(os.environ.get("CITYOPS_BENCH_LIVE_PACE", "0.25"))
CLIENT_COUNTS = (10, 1000)
CONNECT_TIMEOUT = 60.0
INDICATOR = "yte.ca_sot_xuat_huyet"  # a daily count the bench feed may write
MARK = b"event: values\n"


@dataclass
class Stream:
    """One open page: when each `values` event arrived."""

    arrivals: list[float] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


async def _listen(host: str, port: int, key: str, stream: Stream, stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"GET /live/events?topics=values HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    buffer = b""
    try:
        while not stop.is_set():
            chunk = await reader.read(65536)
            if not chunk:
                return
            now = time.perf_counter()
            if not stream.ready.is_set() and b"retry:" in buffer + chunk:
                stream.ready.set()
            buffer += chunk
            while (found := buffer.find(MARK)) >= 0:
                stream.arrivals.append(now)
                buffer = buffer[found + len(MARK) :]
            buffer = buffer[-len(MARK) :]
    finally:
        writer.close()


def _post(client: httpx.Client, subject: str, day: date) -> None:
    item = {"indicator": INDICATOR, "subject": subject, "period": day.isoformat(), "value": 1}
    answer = client.post("/api/v1/observations", json={"observations": [item]})
    if answer.status_code != 200 or answer.json()["created"] != 1:
        raise RuntimeError(f"a post was not stored: HTTP {answer.status_code} {answer.text[:200]}")


async def _measure(base_url: str, key: str, subject: str, clients: int) -> tuple[list[float], int]:
    """Delays of every delivery (seconds), and how many deliveries never came."""
    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80
    stop = asyncio.Event()
    streams = [Stream() for _ in range(clients)]
    tasks = []
    for stream in streams:
        tasks.append(asyncio.create_task(_listen(host, port, key, stream, stop)))
        if len(tasks) % 100 == 0:
            await asyncio.sleep(0)  # let the connections open in waves, as pages reloading do
    await asyncio.wait_for(asyncio.gather(*(stream.ready.wait() for stream in streams)), CONNECT_TIMEOUT)
    sent: list[float] = []
    day = datetime.now(LOCAL_TZ).date() - timedelta(days=10_000)  # periods nobody else writes
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for index in range(POSTS):
            sent.append(time.perf_counter())
            await asyncio.to_thread(_post, client, subject, day + timedelta(days=index))
            await asyncio.sleep(PACE)
    await asyncio.sleep(2.0)  # the last deliveries
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    delays, missing = [], 0
    for stream in streams:
        for index, moment in enumerate(sent):
            if index < len(stream.arrivals):
                delays.append(stream.arrivals[index] - moment)
            else:
                missing += 1
    return delays, missing


def run_backend(backend: str, database_url: str, data_dir: Path) -> list[Result]:
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        key, communes = _prepare(database, settings)
    finally:
        database.dispose()
    results: list[Result] = []
    with running_server(data_dir, database_url, {"Authorization": f"Bearer {key}"}) as server:
        for number, clients in enumerate(CLIENT_COUNTS):
            print(f"[{backend}] {clients} open pages, {POSTS} posts {PACE:.2f} s apart …", flush=True)
            delays, missing = asyncio.run(_measure(server.url, key, communes[number], clients))
            p50, p95, p99 = (percentile(delays, p) * 1000 for p in (50, 95, 99))
            worst = max(delays) * 1000 if delays else float("nan")
            print(
                f"[{backend}] {clients} pages: {len(delays):,} deliveries, {missing} missing; "
                f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms",
                flush=True,
            )
            target_p95 = 250.0 if clients >= 1000 else None
            target_p99 = 1000.0 if clients < 1000 else None
            results += [
                Result(f"live.{clients}_pages.p50", p50, "ms", backend),
                Result(f"live.{clients}_pages.p95", p95, "ms", backend, target_p95),
                Result(f"live.{clients}_pages.p99", p99, "ms", backend, target_p99),
                Result(f"live.{clients}_pages.missing", float(missing), "deliveries", backend, 0.0),
            ]
    return results


def run() -> list[Result]:
    """SQLite, then PostgreSQL (skipped when not reachable)."""
    return each_backend(run_backend, "live")
