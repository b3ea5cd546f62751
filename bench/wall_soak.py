"""The wall left running: does Chromium's memory or DOM grow, and does the wall come back after a server restart?

Days of a real wall are compressed into minutes: every tile rotates every 5 s (a real wall: 30 s and more), a new
value arrives every second (each makes the tiles showing it fetch again), and the server is restarted once in the
middle. Chromium's own counters are read through the DevTools protocol every 15 s after a forced garbage collection:
the JavaScript heap in use, DOM nodes, event listeners and documents. The figures: the heap's and the nodes' growth
between the first and the last quarter of the run, and the seconds the wall took to show itself again after the
restart on the same port (it reloads by itself; see static/wall.js): the time includes the server's own start.

Settings (environment): CITYOPS_BENCH_SOAK_MINUTES (default 5). SQLite only: the wall does not depend on the engine.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._support import Result, free_port, running_server
from bench.ingest import _prepare
from cityops.accounts import service as accounts
from cityops.clock import LOCAL_TZ
from cityops.db.engine import Database
from cityops.settings import Settings
from cityops.wall import service as wall

MINUTES = float(os.environ.get("CITYOPS_BENCH_SOAK_MINUTES", "5"))
SAMPLE_SECONDS = 15.0
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "mật-khẩu-bench-wall-2026"
INDICATOR = "yte.ca_sot_xuat_huyet"


def _prepare_wall(database: Database, settings: Settings) -> tuple[str, list[str]]:
    key, communes = _prepare(database, settings)
    now = datetime.now(UTC)
    with database.writing() as session:
        accounts.create_user(session, accounts.SYSTEM, now, username="wall", password=PASSWORD, role="leader")
        layout = wall.ensure_default(session, now)
        tiles = wall.normalise(layout.tiles)
        for tile in tiles:
            tile["rotate_seconds"] = 5
        layout.tiles = tiles
    return key, communes


class Values(threading.Thread):
    """One new value a second, as a busy province sends them."""

    def __init__(self, base_url: str, key: str, subject: str) -> None:
        super().__init__(daemon=True)
        self.base_url, self.key, self.subject = base_url, key, subject
        self.stop = threading.Event()
        self.sent = self.failed = 0

    def run(self) -> None:
        day = datetime.now(LOCAL_TZ).date() - timedelta(days=20_000)
        with httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=10) as c:
            while not self.stop.wait(1.0):
                item = {"indicator": INDICATOR, "subject": self.subject, "period": day.isoformat(), "value": 1}
                day += timedelta(days=1)
                try:
                    ok = c.post("/api/v1/observations", json={"observations": [item]}).status_code == 200
                except httpx.TransportError:
                    ok = False  # the server is restarting
                self.sent += ok
                self.failed += not ok


def _metrics(cdp: Any) -> dict[str, float]:
    cdp.send("HeapProfiler.collectGarbage")
    return {entry["name"]: entry["value"] for entry in cdp.send("Performance.getMetrics")["metrics"]}


def run() -> list[Result]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("[wall] skipped: playwright is not installed")
        return []
    if not os.path.exists(CHROMIUM):
        print(f"[wall] skipped: no Chromium at {CHROMIUM}")
        return []
    with tempfile.TemporaryDirectory(prefix="cityops-bench-wall-") as folder:
        data_dir = Path(folder)
        url = f"sqlite:///{data_dir / 'cityops.db'}"
        settings = Settings(_env_file=None, data_dir=data_dir, database_url=url)
        database = Database(settings.resolved_database_url)
        try:
            key, communes = _prepare_wall(database, settings)
        finally:
            database.dispose()
        return _soak(data_dir, url, key, communes[0], sync_playwright)


def _soak(data_dir: Path, url: str, key: str, subject: str, sync_playwright: Any) -> list[Result]:
    samples: list[tuple[float, dict[str, float]]] = []
    total = MINUTES * 60
    print(f"[wall] {MINUTES:g} minutes: 9 tiles rotating every 5 s, a value a second, one restart …", flush=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        started = time.monotonic()
        port = free_port()
        headers = {"Authorization": f"Bearer {key}"}
        with running_server(data_dir, url, headers, port) as server:
            base = server.url
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "wall")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/wall")
            _run_until(page, cdp, Values(base, key, subject), started, total / 2, samples)
            page.evaluate("window.cityopsBeforeRestart = true")
            stopped = time.monotonic()
        # The server stopped (SIGTERM); it starts again on the same port, and the wall must come back by itself.
        with running_server(data_dir, url, headers, port) as server:
            page.wait_for_function("() => window.cityopsBeforeRestart === undefined", timeout=120_000)
            page.wait_for_selector(".tile")
            restart_seconds = time.monotonic() - stopped
            _run_until(page, cdp, Values(server.url, key, subject), started, total, samples)
        browser.close()
    return _report(samples, restart_seconds)


def _run_until(
    page: Any, cdp: Any, values: Values, started: float, until: float, samples: list[tuple[float, dict[str, float]]]
) -> None:
    values.start()
    try:
        while time.monotonic() - started < until:
            page.wait_for_timeout(SAMPLE_SECONDS * 1000)
            samples.append((time.monotonic() - started, _metrics(cdp)))
    finally:
        values.stop.set()
        values.join()


def _report(samples: list[tuple[float, dict[str, float]]], restart_seconds: float) -> list[Result]:
    quarter = max(1, len(samples) // 4)
    first, last = samples[:quarter], samples[-quarter:]

    def mean(part: list[tuple[float, dict[str, float]]], name: str) -> float:
        return statistics.fmean(metrics.get(name, 0.0) for _, metrics in part)

    heap_first, heap_last = mean(first, "JSHeapUsedSize") / 2**20, mean(last, "JSHeapUsedSize") / 2**20
    nodes_first, nodes_last = mean(first, "Nodes"), mean(last, "Nodes")
    listeners_first, listeners_last = mean(first, "JSEventListeners"), mean(last, "JSEventListeners")
    print(
        f"[wall] JS heap {heap_first:.1f} → {heap_last:.1f} MiB; DOM nodes {nodes_first:,.0f} → {nodes_last:,.0f}; "
        f"listeners {listeners_first:,.0f} → {listeners_last:,.0f}; shown again {restart_seconds:.1f} s after the "
        f"restart; {len(samples)} samples",
        flush=True,
    )
    return [
        Result("wall.js_heap_growth", heap_last - heap_first, "MiB", "sqlite", 1.0),
        Result("wall.dom_node_growth", nodes_last - nodes_first, "nodes", "sqlite", 200.0),
        Result("wall.listener_growth", listeners_last - listeners_first, "listeners", "sqlite", 20.0),
        Result("wall.js_heap", heap_last, "MiB", "sqlite"),
        Result("wall.shown_after_restart", restart_seconds, "s", "sqlite"),
    ]
