"""The screens' data with a big table: the overview and a subsystem board with 10 million observations stored.

For each backend: a fresh database filled with 10 million observations of province history (bench/_province.py),
the real server (`cityops serve`), a leader logged in through the form; then each screen's data asked REQUESTS times
one after the other — the overview's live part (`/partials/overview`, what the home page refreshes) and the boards of
health and of public administration (`/boards/yte`, `/boards/hcc`: trend, communes, plan vs actual). The first
answer of each is left out (caches warming). Target (issue 10): p95 ≤ 100 ms.

Settings: CITYOPS_BENCH_DASHBOARD_ROWS (default 10,000,000), CITYOPS_BENCH_DASHBOARD_REQUESTS (30).
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench._province import fill
from bench._support import Result, each_backend, percentile, running_server
from cityops.accounts import service as accounts
from cityops.db.engine import Database
from cityops.settings import Settings
from cityops.setup import ensure_ready

ROWS = int(os.environ.get("CITYOPS_BENCH_DASHBOARD_ROWS", "10000000"))
REQUESTS = int(os.environ.get("CITYOPS_BENCH_DASHBOARD_REQUESTS", "30"))
PASSWORD = "mật-khẩu-bench-lanh-dao-2026"
SCREENS = {"overview": "/partials/overview", "board_yte": "/boards/yte", "board_hcc": "/boards/hcc"}


def _log_in(client: httpx.Client) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, "no log-in form"
    answer = client.post("/login", data={"username": "lanhdao", "password": PASSWORD, "csrf_token": token[1]})
    if answer.status_code != 303:
        raise RuntimeError(f"log-in failed: HTTP {answer.status_code}")


def run_backend(backend: str, database_url: str, data_dir: Path) -> list[Result]:
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        ensure_ready(settings, database)
        with database.writing() as session:
            accounts.create_user(
                session, accounts.SYSTEM, datetime.now(UTC), username="lanhdao", password=PASSWORD, role="leader"
            )
            key, secret = accounts.create_api_key(
                session, accounts.SYSTEM, datetime.now(UTC), agency_code="so_y_te", feed_codes=[]
            )
        print(f"[{backend}] writing {ROWS:,} observations of province history …", flush=True)
        seconds = fill(database, ROWS)
        print(f"[{backend}] written in {seconds:.0f} s ({ROWS / seconds:,.0f} rows/s)", flush=True)
    finally:
        database.dispose()
    results: list[Result] = []
    with (
        running_server(data_dir, database_url, {"Authorization": f"Bearer {secret}"}) as server,
        httpx.Client(base_url=server.url, timeout=120, follow_redirects=False) as client,
    ):
        _log_in(client)
        for name, path in SCREENS.items():
            times = []
            for index in range(REQUESTS + 1):
                started = time.perf_counter()
                answer = client.get(path)
                elapsed = time.perf_counter() - started
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {answer.status_code}")
                if index:
                    times.append(elapsed * 1000)
            p50, p95 = percentile(times, 50), percentile(times, 95)
            print(f"[{backend}] {path}: p50 {p50:.0f} ms, p95 {p95:.0f} ms ({ROWS:,} rows)", flush=True)
            results += [
                Result(f"dashboards.{name}.p50", p50, "ms", backend),
                Result(f"dashboards.{name}.p95", p95, "ms", backend, 100.0),
            ]
    del key
    return results


def run() -> list[Result]:
    """SQLite, then PostgreSQL (skipped when not reachable)."""
    return each_backend(run_backend, "dash")
