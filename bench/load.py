"""One observation per request, then three times that load: requests per second, overload answers, memory, losses.

For each backend, the real server (`cityops serve`) on a fresh database:
1. **capacity**: CLIENTS keep-alive connections each post one new observation per request, for SECONDS; a request
   counts once its answer says the observation was created (it is committed then: durable when acknowledged);
2. **overload**: requests are sent on a fixed schedule at three times the measured capacity, whatever the answers
   (an open loop, as many agencies' systems are), for SECONDS. Counted: acknowledged, refused with 503/429 and a
   Retry-After, anything else (which must be none); the server's resident memory is sampled all along;
3. **nothing lost**: every acknowledged observation of both phases is in the database.

Targets (issue 10): ≥ 1,000 requests/s; under overload every refusal carries Retry-After, memory < 500 MB, nothing
acknowledged lost. Settings: CITYOPS_BENCH_LOAD_SECONDS (default 20), CITYOPS_BENCH_LOAD_CLIENTS (32).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson
from sqlalchemy import func, select

from bench._support import RawClient, Result, Server, each_backend, running_server
from bench.ingest import _prepare
from cityops.clock import LOCAL_TZ
from cityops.db.engine import Database
from cityops.observations.models import Observation
from cityops.settings import Settings

SECONDS = float(os.environ.get("CITYOPS_BENCH_LOAD_SECONDS", "20"))
CLIENTS = int(os.environ.get("CITYOPS_BENCH_LOAD_CLIENTS", "32"))
OVERLOAD = 3.0
MAX_CONNECTIONS = 1000
INDICATOR = "yte.ca_sot_xuat_huyet"


class Bodies:
    """A new observation for every request: each commune × day once."""

    def __init__(self, communes: list[str], first_day_back: int) -> None:
        start = datetime.now(LOCAL_TZ).date() - timedelta(days=first_day_back)
        self._pairs = ((commune, start - timedelta(days=n)) for n in itertools.count() for commune in communes)

    def next(self) -> bytes:
        commune, day = next(self._pairs)
        item = {"indicator": INDICATOR, "subject": commune, "period": day.isoformat(), "value": 1}
        return orjson.dumps({"observations": [item]})


@dataclass
class Tally:
    acknowledged: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    refusals_without_retry_after: int = 0


def _count(tally: Tally, status: int, headers: dict[str, str], body: bytes) -> None:
    if status == 200 and orjson.loads(body).get("created") == 1:
        tally.acknowledged += 1
        tally.statuses["200"] += 1
    elif status in (429, 503):
        tally.statuses[str(status)] += 1
        tally.refusals_without_retry_after += "retry-after" not in headers
    else:
        tally.statuses[f"other {status}"] += 1


async def _capacity(server: Server, key: str, bodies: Bodies) -> tuple[float, Tally]:
    url = httpx.URL(server.url)
    tally = Tally()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    deadline = time.perf_counter() + SECONDS

    async def client() -> None:
        raw = RawClient(url.host, url.port or 80, headers)
        try:
            while time.perf_counter() < deadline:
                _count(tally, *await raw.request("POST", "/api/v1/observations", bodies.next()))
        finally:
            raw.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return tally.acknowledged / (time.perf_counter() - started), tally


async def _overload(server: Server, key: str, bodies: Bodies, rate: float) -> tuple[Tally, float, int]:
    """The tally, the peak resident memory (MB) and the connection errors."""
    url = httpx.URL(server.url)
    tally = Tally()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    idle: list[RawClient] = []
    opened = 0
    errors = 0
    peak = server.rss_mb()
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        nonlocal opened, errors
        if idle:
            raw = idle.pop()
        elif opened < MAX_CONNECTIONS:
            opened += 1
            raw = RawClient(url.host, url.port or 80, headers)
        else:
            tally.statuses["not sent: every connection busy"] += 1
            return
        try:
            _count(tally, *await raw.request("POST", "/api/v1/observations", bodies.next()))
            idle.append(raw)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            errors += 1
            raw.close()
            opened -= 1

    started = time.perf_counter()
    sent = 0
    next_sample = started
    while (elapsed := time.perf_counter() - started) < SECONDS:
        due = int(elapsed * rate) - sent
        for _ in range(due):
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sent += max(due, 0)
        if time.perf_counter() >= next_sample:
            peak = max(peak, server.rss_mb())
            next_sample += 0.5
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    peak = max(peak, server.rss_mb())
    for raw in idle:
        raw.close()
    return tally, peak, errors


def _stored(database: Database) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Observation)) or 0)


def run_backend(backend: str, database_url: str, data_dir: Path) -> list[Result]:
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        key, communes = _prepare(database, settings)
        bodies = Bodies(communes, 1)
        with running_server(data_dir, database_url, {"Authorization": f"Bearer {key}"}) as server:
            print(f"[{backend}] capacity: {CLIENTS} connections, one observation a request, {SECONDS:.0f} s …")
            rate, first = asyncio.run(_capacity(server, key, bodies))
            print(f"[{backend}] {rate:,.0f} requests/s acknowledged; {dict(first.statuses)}", flush=True)
            print(f"[{backend}] overload: {OVERLOAD:g}× = {OVERLOAD * rate:,.0f} requests/s for {SECONDS:.0f} s …")
            second, peak, errors = asyncio.run(_overload(server, key, bodies, OVERLOAD * rate))
            print(
                f"[{backend}] {dict(second.statuses)}; {second.refusals_without_retry_after} refusals without "
                f"Retry-After; {errors} connection errors; peak memory {peak:.0f} MB",
                flush=True,
            )
        acknowledged = first.acknowledged + second.acknowledged
        stored = _stored(database)
    finally:
        database.dispose()
    lost = max(acknowledged - stored, 0)
    print(f"[{backend}] {acknowledged:,} acknowledged, {stored:,} stored", flush=True)
    others = sum(count for status, count in second.statuses.items() if status.startswith("other"))
    return [
        Result("single.requests", rate, "requests/s", backend, 1000.0),
        Result("overload.accepted", second.acknowledged / SECONDS, "requests/s", backend),
        Result("overload.refused", (second.statuses["503"] + second.statuses["429"]) / SECONDS, "requests/s", backend),
        Result("overload.refusals_without_retry_after", second.refusals_without_retry_after, "answers", backend, 0.0),
        Result("overload.other_answers", float(others + errors), "answers", backend, 0.0),
        Result("overload.peak_memory", peak, "MB", backend, 500.0),
        Result("overload.lost", float(lost), "observations", backend, 0.0),
    ]


def run() -> list[Result]:
    """SQLite, then PostgreSQL (skipped when not reachable)."""
    return each_backend(run_backend, "load")
