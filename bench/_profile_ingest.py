"""Where the time of an API ingest goes: the app in-process, one client, phase timers and cProfile.

Not part of `make bench` (its name starts with an underscore). Run it alone:

    .venv/bin/python -m bench._profile_ingest [sqlite|postgresql] [batches] [rows already in the table]

The app runs in this process on the real ASGI stack (middleware, auth, JSON, validation, SQL, commit), driven
by httpx's ASGI transport in one thread: the handlers' run_in_threadpool is replaced by a direct call so that
cProfile, which sees one thread, sees all of it. Uvicorn's HTTP handling is not in this picture; the
difference with `python -m bench` on one client (CITYOPS_BENCH_CLIENTS=1) measures it.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, insert

from bench._support import postgres_database
from bench.ingest import BATCH_SIZE, BatchSource, _prepare, _table_rows
from cityops.db.engine import Database
from cityops.observations import api as observations_api
from cityops.observations import service
from cityops.observations.models import Observation
from cityops.settings import Settings
from cityops.web import deps
from cityops.web.app import create_app

WARMUP_BATCHES = 3
PHASES = [
    (service, "ingest", "service.ingest (transaction and commit included)"),
    (service._Validator, "__init__", "  validate: lookups (indicators, subjects, feeds)"),
    (service._Validator, "check", "  validate: check items"),
    (service, "_write_rows", "  write rows: SELECT existing + upsert, with the Python around them"),
    (deps, "_resolve", "authenticate the key"),
]


async def _inline(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


class Timers:
    """Wall time per phase, summed over the measured batches."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - started

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.measure(phase):
                return original(*args, **kwargs)

        setattr(owner, name, timed)

    def watch_statements(self, database: Database) -> None:
        """Time each statement from SQLAlchemy's execute to its cursor's return, by verb and table."""

        @event.listens_for(database.engine, "before_execute")
        def before(connection: Any, clauseelement: Any, *_: Any) -> None:
            connection.info.setdefault("bench_started", []).append(time.perf_counter())

        @event.listens_for(database.engine, "after_execute")
        def after(connection: Any, clauseelement: Any, *_: Any) -> None:
            started = connection.info["bench_started"].pop()
            self.seconds[f"    sql: {_kind(clauseelement)}"] += time.perf_counter() - started


def _kind(statement: Any) -> str:
    """The statement's verb and first table, without compiling it."""
    verb = type(statement).__name__.removeprefix("Annotated").upper()
    table = getattr(statement, "table", None)
    if table is None:
        froms = getattr(statement, "columns_clause_froms", None) or [None]
        table = froms[0]
    return f"{verb} {getattr(table, 'name', '?')}"


def _take(source: BatchSource, count: int) -> list[bytes]:
    bodies = []
    for _ in range(count):
        batch = source.next()
        assert batch is not None
        bodies.append(batch[1])
    return bodies


def _prefill(database: Database, source: BatchSource, rows: int) -> None:
    """Put rows in the table by Core, as the raw benchmark does, to profile against a table of that size."""
    for _ in range(rows // BATCH_SIZE):
        batch = source.next()
        assert batch is not None
        rows = _table_rows(database, [batch[0]])
        with database.write_engine.begin() as connection:
            connection.execute(insert(Observation), rows)


async def _post_all(app: Any, headers: dict[str, str], bodies: list[bytes]) -> float:
    """Seconds to post the batches one after the other, each checked."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
        started = time.perf_counter()
        for body in bodies:
            answer = await client.post("/api/v1/observations", content=body)
            if answer.status_code != 200 or answer.json()["created"] != BATCH_SIZE:
                raise RuntimeError(answer.text[:300])
        return time.perf_counter() - started


def profile(backend: str, database_url: str, data_dir: Path, batches: int, prefill: int) -> None:
    """Warm up, fill the table, then one pass with phase timers only and one under cProfile; print both."""
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    timers = Timers()
    profiler = cProfile.Profile()
    try:
        key, communes = _prepare(database, settings)
        observations_api.run_in_threadpool = _inline  # type: ignore[assignment]
        deps.run_in_threadpool = _inline  # type: ignore[assignment]
        for owner, name, phase in PHASES:
            timers.wrap(owner, name, phase)
        app = create_app(settings, database=database)
        source = BatchSource(communes, (WARMUP_BATCHES + 2 * batches) * BATCH_SIZE + prefill)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        asyncio.run(_post_all(app, headers, _take(source, WARMUP_BATCHES)))
        _prefill(database, source, prefill)
        measured, profiled = _take(source, batches), _take(source, batches)
        timers.seconds.clear()
        timers.watch_statements(database)
        cpu_started = time.process_time()
        elapsed = asyncio.run(_post_all(app, headers, measured))
        cpu = time.process_time() - cpu_started
        phases = dict(timers.seconds)
        profiler.enable()
        asyncio.run(_post_all(app, headers, profiled))
        profiler.disable()
    finally:
        database.dispose()
    rows = batches * BATCH_SIZE
    print(
        f"\n[{backend}] table from {prefill:,} rows on: {batches} batches, {rows:,} observations in {elapsed:.2f} s "
        f"({rows / elapsed:,.0f}/s), {cpu:.2f} s CPU in this process"
    )
    print(f"{'phase (nested phases are part of the one above)':<72}{'seconds':>9}{'share':>8}")
    for phase, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"{phase:<72}{seconds:>9.2f}{seconds / elapsed:>8.0%}")
    for order, count in (("cumulative", 50), ("tottime", 35)):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(count)
        print(out.getvalue())


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    prefill = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with tempfile.TemporaryDirectory(prefix="cityops-profile-") as folder:
        if backend == "sqlite":
            profile(backend, f"sqlite:///{Path(folder) / 'cityops.db'}", Path(folder), batches, prefill)
        else:
            with postgres_database("cityops_profile") as url:
                profile(backend, url, Path(folder), batches, prefill)


if __name__ == "__main__":
    main()
