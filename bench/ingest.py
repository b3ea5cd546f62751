"""Batched ingest through the HTTP API against the raw bulk-insert floor, on SQLite and on PostgreSQL.

For each backend, on a fresh database:
1. prepare the schema, the province, the default catalog, a feed of the CDC's commune-level indicators and a key;
2. start the real server (`cityops serve`) in its own process;
3. several clients POST batches of 1,000 new observations (indicator × 130 communes × periods)
   to /api/v1/observations; a batch counts once its answer says every item was accepted (after commit);
4. stop the server, empty the observations table and insert the same rows with SQLAlchemy Core
   (executemany of plain dicts, 1,000 rows per transaction): the floor the API should approach.

Settings (environment): CITYOPS_BENCH_OBSERVATIONS per backend (default 3,000,000), CITYOPS_BENCH_MAX_SECONDS
(how long the API phase runs per backend, default 60: issue 10's "sustained for 60 s"), CITYOPS_BENCH_CLIENTS (4).
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import func, insert, select, text

from bench._support import Result, ServiceMissing, percentile, postgres_database, running_server
from cityops.accounts import service as accounts
from cityops.catalog.models import Indicator
from cityops.clock import LOCAL_TZ
from cityops.db.engine import Database
from cityops.feeds.models import Feed
from cityops.feeds.service import create_feed
from cityops.geo.models import Subject
from cityops.observations.models import IngestBatch, Observation
from cityops.observations.periods import parse_period
from cityops.observations.service import canonical_dimensions
from cityops.settings import Settings
from cityops.setup import ensure_ready

# Issue 10: sustained for 60 s — the clients send until the time is up (or this many were sent).
OBSERVATIONS = int(os.environ.get("CITYOPS_BENCH_OBSERVATIONS", "3000000"))
MAX_SECONDS = float(os.environ.get("CITYOPS_BENCH_MAX_SECONDS", "60"))
TARGET_RATE = 20_000.0  # observations/s, batched over HTTP, durable when acknowledged
TARGET_RATIO = 0.6  # of a raw bulk insert of the same rows in the same run
CLIENTS = int(os.environ.get("CITYOPS_BENCH_CLIENTS", "4"))
BATCH_SIZE = 1000

AGENCY = "trung_tam_kiem_soat_benh_tat"
FEED = "bench_cdc_surveillance"
# The CDC's commune-level indicators: (code, upper bound of a value or None for counts, dimension sets).
MONTHLY = [
    ("yte.tre_tron_1_tuoi", None, [{}]),
    ("yte.tre_tiem_chung_day_du", None, [{}]),
    ("yte.ty_le_tiem_chung_day_du", 100.0, [{}]),
]
DAILY = [
    ("yte.ca_sot_xuat_huyet", None, [{}]),
    ("yte.ca_tay_chan_mieng", None, [{}]),
    ("yte.ca_benh_truyen_nhiem", None, [{"benh": "soi"}, {"benh": "thuy_dau"}, {"benh": "cum_a"}]),
]


# --- the workload -----------------------------------------------------------------------------------


def observation_stream(communes: list[str], seed: int = 2026) -> Iterator[dict[str, Any]]:
    """Observations as an agency sends them, day after day backwards from yesterday; every key distinct."""
    rng = random.Random(seed)
    day = datetime.now(LOCAL_TZ).date() - timedelta(days=1)
    while True:
        series: list[tuple[str, float | None, list[dict[str, str]], str]] = [
            (code, high, dims, day.isoformat()) for code, high, dims in DAILY
        ]
        if day.day == 1:
            series += [(code, high, dims, day.strftime("%Y-%m")) for code, high, dims in MONTHLY]
        for code, high, dimension_sets, period in series:
            for dimensions in dimension_sets:
                for commune in communes:
                    value = round(rng.uniform(0, high), 1) if high is not None else rng.randint(0, 40)
                    item: dict[str, Any] = {"indicator": code, "subject": commune, "period": period, "value": value}
                    if dimensions:
                        item["dimensions"] = dimensions
                    yield item
        day -= timedelta(days=1)


class BatchSource:
    """Hands out batches to the client threads until `total` observations are out; keeps the acknowledged ones."""

    def __init__(self, communes: list[str], total: int) -> None:
        self._stream = observation_stream(communes)
        self._lock = threading.Lock()
        self._left = total
        self.acknowledged: list[list[dict[str, Any]]] = []

    def next(self) -> tuple[list[dict[str, Any]], bytes] | None:
        """The next batch and its body, or None when all were handed out."""
        with self._lock:
            if self._left <= 0:
                return None
            items = [next(self._stream) for _ in range(min(BATCH_SIZE, self._left))]
            self._left -= len(items)
        return items, orjson.dumps({"observations": items})

    def acknowledge(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self.acknowledged.append(items)


# --- one backend ------------------------------------------------------------------------------------


@dataclass
class ApiRun:
    """What the clients measured: each batch's acknowledgement (seconds from the start, count) and latency."""

    started: float
    accepted: int = 0
    seconds: float = 0.0
    acknowledgements: list[tuple[float, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    capped: bool = False
    error: BaseException | None = None

    def rate_between(self, low: float, high: float) -> float:
        """Observations per second between two fractions of all acknowledged (0.75 and 1.0: the last quarter)."""
        marks = [(0.0, 0)]
        for moment, count in sorted(self.acknowledgements):
            marks.append((moment, marks[-1][1] + count))
        start = next(mark for mark in marks if mark[1] >= low * self.accepted)
        end = next(mark for mark in marks if mark[1] >= high * self.accepted)
        return (end[1] - start[1]) / (end[0] - start[0]) if end[0] > start[0] else 0.0


def _prepare(database: Database, settings: Settings) -> tuple[str, list[str]]:
    """Schema, province, catalog, the feed and a key; returns the key and the communes' codes."""
    ensure_ready(settings, database)
    now = datetime.now(UTC)
    with database.writing() as session:
        codes = [code for code, _, _ in MONTHLY + DAILY]
        create_feed(session, accounts.SYSTEM, now, code=FEED, agency_code=AGENCY, indicator_codes=codes)
        _, secret = accounts.create_api_key(session, accounts.SYSTEM, now, agency_code=AGENCY, feed_codes=[FEED])
        communes = list(session.scalars(select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code)))
    return secret, communes


def _client(base_url: str, key: str, source: BatchSource, run: ApiRun, lock: threading.Lock) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    deadline = run.started + MAX_SECONDS
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
            while run.error is None:
                if time.perf_counter() >= deadline:
                    with lock:
                        run.capped = True
                    return
                batch = source.next()
                if batch is None:
                    return
                items, body = batch
                sent = time.perf_counter()
                response = client.post("/api/v1/observations", content=body)
                answered = time.perf_counter()
                answer = response.json() if response.status_code == 200 else None
                if answer is None or answer["accepted"] != len(items) or answer["created"] != len(items):
                    raise RuntimeError(f"batch not fully accepted: HTTP {response.status_code} {response.text[:300]}")
                source.acknowledge(items)
                with lock:
                    run.accepted += len(items)
                    run.acknowledgements.append((answered - run.started, len(items)))
                    run.latencies.append(answered - sent)
    except BaseException as exc:  # handed to the main thread, which raises it
        with lock:
            run.error = run.error or exc


def _ingest_over_http(base_url: str, key: str, source: BatchSource) -> ApiRun:
    run, lock = ApiRun(started=time.perf_counter()), threading.Lock()
    threads = [
        threading.Thread(target=_client, args=(base_url, key, source, run, lock), daemon=True) for _ in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - run.started
    if run.error is not None:
        raise RuntimeError(f"an ingest client failed: {run.error}") from run.error
    return run


def _table_rows(database: Database, batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows the API stored for these items, as plain dicts for a Core insert (one new ingest batch)."""
    now = datetime.now(UTC)
    with database.writing() as session:
        indicator_ids = dict(session.execute(select(Indicator.code, Indicator.id)).all())
        subject_ids = dict(session.execute(select(Subject.code, Subject.id)).all())
        feed_id, agency_id = session.execute(select(Feed.id, Feed.agency_id).where(Feed.code == FEED)).one()
        batch = IngestBatch(agency_id=agency_id, received_at=now)
        session.add(batch)
        session.flush()
        batch_id = batch.id
    periods: dict[str, Any] = {}
    rows = []
    for items in batches:
        for item in items:
            period = periods.get(item["period"])
            if period is None:
                period = periods[item["period"]] = parse_period(item["period"])
            dimensions = item.get("dimensions", {})
            rows.append(
                {
                    "indicator_id": indicator_ids[item["indicator"]],
                    "subject_id": subject_ids[item["subject"]],
                    "period_type": period.type,
                    "period_key": period.key,
                    "period_start": period.start,
                    "period_end": period.end,
                    "dims_key": canonical_dimensions(dimensions),
                    "dimensions": dimensions,
                    "feed_id": feed_id,
                    "value": float(item["value"]),
                    "null_reason": "",
                    "source_ref": "",
                    "batch_id": batch_id,
                    "received_at": now,
                }
            )
    return rows


def _count_observations(database: Database) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Observation)) or 0)


def _empty_observations(database: Database) -> None:
    with database.writing() as session:
        statement = "TRUNCATE observations" if database.dialect == "postgresql" else "DELETE FROM observations"
        session.execute(text(statement))


def _raw_insert(database: Database, rows: list[dict[str, Any]]) -> float:
    """Seconds to insert the rows, BATCH_SIZE per transaction."""
    statement = insert(Observation)
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH_SIZE):
        with database.write_engine.begin() as connection:
            connection.execute(statement, rows[start : start + BATCH_SIZE])
    return time.perf_counter() - started


def run_backend(backend: str, database_url: str, data_dir: Path) -> list[Result]:
    """Both measurements on one prepared database."""
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        key, communes = _prepare(database, settings)
        source = BatchSource(communes, OBSERVATIONS)
        print(
            f"[{backend}] API: {OBSERVATIONS:,} observations, {CLIENTS} clients × batches of {BATCH_SIZE} "
            f"(at most {MAX_SECONDS:.0f} s) …",
            flush=True,
        )
        with running_server(data_dir, database_url, {"Authorization": f"Bearer {key}"}) as server:
            cpu_before = server.cpu_seconds()
            api = _ingest_over_http(server.url, key, source)
            api_cpu = server.cpu_seconds() - cpu_before
        stored = _count_observations(database)
        if stored != api.accepted:
            raise RuntimeError(f"[{backend}] {api.accepted} observations acknowledged but {stored} stored")
        rows = _table_rows(database, source.acknowledged)
        _empty_observations(database)
        print(f"[{backend}] raw: {len(rows):,} rows by Core executemany …", flush=True)
        cpu_before = time.process_time()
        raw_seconds = _raw_insert(database, rows)
        raw_cpu = time.process_time() - cpu_before
        if _count_observations(database) != len(rows):
            raise RuntimeError(f"[{backend}] the raw insert did not store {len(rows)} rows")
    finally:
        database.dispose()
    api_rate, raw_rate = api.accepted / api.seconds, len(rows) / raw_seconds
    first, last = api.rate_between(0.0, 0.25), api.rate_between(0.75, 1.0)
    p50, p95 = percentile(api.latencies, 50), percentile(api.latencies, 95)
    if api.capped:
        print(f"[{backend}] stopped at the {MAX_SECONDS:.0f} s cap: {api.accepted:,} of {OBSERVATIONS:,} sent")
    print(
        f"[{backend}] API: {api.accepted:,} in {api.seconds:.1f} s; first quarter {first:,.0f}/s, "
        f"last quarter {last:,.0f}/s; request latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; "
        f"server CPU {api_cpu:.1f} s. Raw: {raw_seconds:.1f} s, CPU {raw_cpu:.1f} s",
        flush=True,
    )
    return [
        Result("ingest.api", api_rate, "observations/s", backend, TARGET_RATE),
        Result("ingest.api_last_quarter", last, "observations/s", backend),
        Result("ingest.raw", raw_rate, "rows/s", backend),
        Result("ingest.api_vs_raw", api_rate / raw_rate, "ratio", backend, TARGET_RATIO),
        # CPU per 1,000 rows in the Python process doing the work (not the PostgreSQL server's): steadier than the
        # rates on a busy machine.
        Result("ingest.api_cpu", 1e6 * api_cpu / api.accepted, "ms CPU/1000 observations", backend),
        Result("ingest.raw_cpu", 1e6 * raw_cpu / len(rows), "ms CPU/1000 rows", backend),
    ]


def _print_table(results: list[Result]) -> None:
    by_backend: dict[str, dict[str, float]] = {}
    for result in results:
        by_backend.setdefault(result.backend, {})[result.name] = result.value
    columns = [
        ("API obs/s", "ingest.api", ",.0f"),
        ("(last quarter)", "ingest.api_last_quarter", ",.0f"),
        ("raw rows/s", "ingest.raw", ",.0f"),
        ("API / raw", "ingest.api_vs_raw", ".2f"),
        ("API CPU ms/1000", "ingest.api_cpu", ".0f"),
        ("raw CPU ms/1000", "ingest.raw_cpu", ".0f"),
    ]
    print()
    print(f"{'backend':<12}" + "".join(f"{title:>{len(title) + 3}}" for title, _, _ in columns))
    for backend, values in by_backend.items():
        cells = (f"{values[name]:{spec}}".rjust(len(title) + 3) for title, name, spec in columns)
        print(f"{backend:<12}" + "".join(cells))
    print()


def run() -> list[Result]:
    """SQLite in a temporary folder, then PostgreSQL in a fresh database (skipped when not reachable)."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="cityops-bench-") as folder:
        sqlite_dir = Path(folder) / "sqlite"
        results += run_backend("sqlite", f"sqlite:///{sqlite_dir / 'cityops.db'}", sqlite_dir)
        try:
            with postgres_database() as url:
                results += run_backend("postgresql", url, Path(folder) / "postgresql")
        except ServiceMissing as exc:
            print(f"[postgresql] skipped: {exc}", flush=True)
    _print_table(results)
    return results
