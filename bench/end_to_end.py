"""End to end: an observation is accepted, its rule fires, and an open page receives the alert.

For each backend, the real server (`cityops serve`, its worker embedded) on a fresh database with one threshold rule
(dengue cases above 20 in a commune, no waiting time). Background load: 35 observations a second below the
threshold across the communes, with a burst of ten times that for one second in every ten. Probes: every half
second one observation on a probe commune alternately above the threshold (the alert fires) and below it (it
resolves); a server-sent-event stream (`/live/events?topics=alerts`) notes when each change arrives. The delay of a
probe is the arrival of its alert change minus the moment its post was sent.

Targets (issue 10): p50 ≤ 50 ms, p99 ≤ 500 ms. Settings: CITYOPS_BENCH_E2E_SECONDS (default 30).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._support import Result, each_backend, percentile, running_server
from bench.ingest import _prepare
from cityops.accounts.service import SYSTEM
from cityops.alerts import rules
from cityops.clock import LOCAL_TZ
from cityops.db.engine import Database
from cityops.settings import Settings

SECONDS = float(os.environ.get("CITYOPS_BENCH_E2E_SECONDS", "30"))
RATE = 35.0  # background observations a second
BURST = 10  # times the rate, one second in ten
PROBE_EVERY = 0.5
INDICATOR = "yte.ca_sot_xuat_huyet"
LIMIT = 20


def _prepare_rule(database: Database, settings: Settings) -> tuple[str, list[str]]:
    key, communes = _prepare(database, settings)
    with database.writing() as session:
        rules.create_rule(
            session,
            SYSTEM,
            datetime.now(UTC),
            {
                "code": "bench_sxh",
                "name_vi": "Sốt xuất huyết vượt ngưỡng",
                "name_en": "Dengue above the limit",
                "kind": "threshold",
                "indicator": INDICATOR,
                "params": {"op": ">", "value": LIMIT},
                "severity": "critical",
            },
        )
    return key, communes


async def _alerts_stream(
    host: str, port: int, key: str, arrivals: list[tuple[float, str]], ready: asyncio.Event
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /live/events?topics=alerts HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    )
    await writer.drain()
    buffer = b""
    try:
        while chunk := await reader.read(65536):
            now = time.perf_counter()
            buffer += chunk
            if b"retry:" in buffer:
                ready.set()
            while (start := buffer.find(b"event: alerts\ndata: ")) >= 0 and (end := buffer.find(b"\n", start + 20)) > 0:
                payload = orjson.loads(buffer[start + 20 : end])
                arrivals.append((now, str(payload.get("state", ""))))
                buffer = buffer[end:]
    finally:
        writer.close()


async def _measure(base_url: str, key: str, communes: list[str]) -> tuple[list[float], int, int]:
    url = httpx.URL(base_url)
    arrivals: list[tuple[float, str]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(_alerts_stream(url.host, url.port or 80, key, arrivals, ready))
    await asyncio.wait_for(ready.wait(), 30)
    probe, others = communes[0], communes[1:]
    rng = random.Random(7)
    day = datetime.now(LOCAL_TZ).date()
    periods = [(day - timedelta(days=offset)).isoformat() for offset in range(1, 31)]
    probes: list[tuple[float, str]] = []  # (sent, the state it must cause)
    background = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:

        async def post(items: list[dict[str, Any]]) -> None:
            answer = await client.post("/api/v1/observations", json={"observations": items})
            if answer.status_code != 200:
                raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")

        started = time.perf_counter()
        next_probe, high = started, True
        pending: set[asyncio.Task[None]] = set()
        while (elapsed := time.perf_counter() - started) < SECONDS:
            burst = int(elapsed) % 10 == 9
            per_tick = RATE * (BURST if burst else 1) / 20  # twenty sends a second
            count = int(per_tick) + (rng.random() < per_tick % 1)
            items = [
                {"indicator": INDICATOR, "subject": rng.choice(others), "period": rng.choice(periods), "value": 1}
                for _ in range(count)
            ]
            if items:
                background += len(items)
                task = asyncio.create_task(post(items))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if time.perf_counter() >= next_probe:
                item = {
                    "indicator": INDICATOR,
                    "subject": probe,
                    "period": periods[0],
                    "value": LIMIT + 5 if high else 1,
                }
                probes.append((time.perf_counter(), "firing" if high else "resolved"))
                await post([item])
                high, next_probe = not high, next_probe + PROBE_EVERY
            await asyncio.sleep(0.05)
        await asyncio.gather(*pending)
    await asyncio.sleep(2.0)
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    delays, missing, cursor = [], 0, 0
    for sent, state in probes:
        while cursor < len(arrivals) and (arrivals[cursor][0] < sent or arrivals[cursor][1] != state):
            cursor += 1
        if cursor < len(arrivals):
            delays.append(arrivals[cursor][0] - sent)
            cursor += 1
        else:
            missing += 1
    return delays, missing, background


def run_backend(backend: str, database_url: str, data_dir: Path) -> list[Result]:
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        key, communes = _prepare_rule(database, settings)
    finally:
        database.dispose()
    print(
        f"[{backend}] {SECONDS:.0f} s at {RATE:.0f} observations/s with bursts of {BURST}×, a probe every "
        f"{PROBE_EVERY} s …",
        flush=True,
    )
    with running_server(data_dir, database_url, {"Authorization": f"Bearer {key}"}) as server:
        delays, missing, background = asyncio.run(_measure(server.url, key, communes))
    p50, p99 = percentile(delays, 50) * 1000, percentile(delays, 99) * 1000
    print(
        f"[{backend}] {len(delays)} alert changes received, {missing} missing, {background:,} background "
        f"observations; p50 {p50:.0f} ms, p99 {p99:.0f} ms",
        flush=True,
    )
    return [
        Result("end_to_end.alert_p50", p50, "ms", backend, 50.0),
        Result("end_to_end.alert_p99", p99, "ms", backend, 500.0),
        Result("end_to_end.missing", float(missing), "alert changes", backend, 0.0),
    ]


def run() -> list[Result]:
    """SQLite, then PostgreSQL (skipped when not reachable)."""
    return each_backend(run_backend, "e2e")
