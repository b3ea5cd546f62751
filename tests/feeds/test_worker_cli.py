"""The worker as it runs for real: `cityops worker` and `cityops serve` (embedded) as processes, the app's lifespan.

The processes run on the system clock, so their feeds were created days ago (through the service, with that time as
"now") and are late from the first round. The tests wait for what a background process writes by polling the
database against a deadline; nothing waits for the clock.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.alerts.models import Alert
from cityops.clock import FrozenClock, system_clock
from cityops.db.engine import Database
from cityops.feeds.lateness import late_alert_key
from cityops.feeds.service import create_feed
from cityops.settings import Settings
from cityops.setup import ensure_ready
from cityops.web.app import create_app
from conftest import Backend

COMMAND = [sys.executable, "-m", "cityops.cli"]
DEADLINE_SECONDS = 60


def wait_for(condition: Callable[[], Any], what: str, process: subprocess.Popen[str] | None = None) -> Any:
    """Poll until the condition holds (or the process died, or the deadline passed)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            output = process.communicate()[0]
            pytest.fail(f"the process ended with {process.returncode} before {what}:\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {DEADLINE_SECONDS} s")
        time.sleep(0.1)


# --- the processes ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh SQLite data directory, migrated and loaded as `cityops db upgrade` leaves it."""
    data_dir = tmp_path_factory.mktemp("worker")
    settings = Settings(data_dir=data_dir, database_url="", secret_key="", _env_file=None)
    database = Database(settings.resolved_database_url)
    ensure_ready(settings, database)
    database.dispose()
    yield data_dir


def late_feed(data_dir: Path, code: str) -> int:
    """A daily feed created three days ago: its last days are past deadline + grace by now."""
    database = Database(f"sqlite:///{data_dir / 'cityops.db'}")
    try:
        with database.writing() as session:
            feed = create_feed(
                session,
                accounts.SYSTEM,
                system_clock() - timedelta(days=3),
                code=code,
                agency_code="trung_tam_kiem_soat_benh_tat",
                indicator_codes=["yte.ca_sot_xuat_huyet"],
                cadence="daily by 17:00",
                grace_minutes=30,
            )
            return feed.id
    finally:
        database.dispose()


def firing_alert(data_dir: Path, feed_id: int) -> tuple[Any, ...] | None:
    with closing(sqlite3.connect(data_dir / "cityops.db", timeout=30)) as connection:
        row: tuple[Any, ...] | None = connection.execute(
            "SELECT a.agency_id, a.title_vi, a.title_en, (SELECT COUNT(*) FROM feed_expectations e "
            "WHERE e.feed_id = a.feed_id AND e.state = 'late') FROM alerts a WHERE a.key = ? AND a.state = 'firing'",
            (late_alert_key(feed_id),),
        ).fetchone()
        return row


def start(data_dir: Path, *arguments: str, **environment: str) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CITYOPS_")}
    env.update(CITYOPS_DATA_DIR=str(data_dir), **environment)
    return subprocess.Popen(
        [*COMMAND, *arguments],
        cwd=data_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, as a service manager stops it; the exit code and everything it printed."""
    process.send_signal(signal.SIGTERM)
    try:
        output = process.communicate(timeout=DEADLINE_SECONDS)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
        pytest.fail(f"the process did not stop on SIGTERM:\n{output}")
    return process.returncode, output


def test_cityops_worker_raises_the_alert_of_a_late_feed_and_stops_cleanly_on_sigterm(data_dir: Path) -> None:
    feed_id = late_feed(data_dir, "cdc_worker")
    process = start(data_dir, "worker", "--tick-seconds", "0.2")
    try:
        agency, title_vi, title_en, late = wait_for(lambda: firing_alert(data_dir, feed_id), "alert", process)
    finally:
        code, output = stop(process)
    assert late >= 2  # at least the last two days
    assert title_vi.startswith("Nguồn dữ liệu “cdc_worker” đang trễ hạn")
    assert title_en.startswith("Data feed “cdc_worker” is late")
    with closing(sqlite3.connect(data_dir / "cityops.db")) as connection:
        owner = connection.execute("SELECT id FROM agencies WHERE code = 'trung_tam_kiem_soat_benh_tat'").fetchone()
    assert agency == owner[0]
    assert code == 0, output
    assert "mỗi lượt cách nhau 0,2 giây" in output and "a round every 0.2 s" in output
    assert "Bộ xử lý nền đã dừng." in output and "Worker stopped." in output
    assert "Traceback" not in output


def test_cityops_serve_runs_the_worker_inside_the_web_process(data_dir: Path) -> None:
    feed_id = late_feed(data_dir, "cdc_serve")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = start(data_dir, "serve", "--port", str(port), CITYOPS_WORKER_TICK_SECONDS="0.2")
    try:
        wait_for(lambda: firing_alert(data_dir, feed_id), "alert", process)
    finally:
        code, output = stop(process)
    # uvicorn shuts down gracefully (the worker with the app), then re-raises SIGTERM as its exit status
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output
    assert "Traceback" not in output


def test_a_tick_of_zero_seconds_is_refused(data_dir: Path) -> None:
    process = start(data_dir, "worker", "--tick-seconds", "0")
    output = process.communicate(timeout=DEADLINE_SECONDS)[0]
    assert process.returncode == 2
    assert "--tick-seconds" in output and "Traceback" not in output


# --- the lifespan of the app -------------------------------------------------------------------------------


def test_an_app_built_with_its_worker_marks_feeds_late_while_it_serves(
    backend: Backend, database: Database, clock: FrozenClock
) -> None:
    with database.writing() as session:
        feed = create_feed(
            session,
            accounts.SYSTEM,
            clock(),  # 10:00 in Hà Nội
            code="cdc_embedded",
            agency_code="trung_tam_kiem_soat_benh_tat",
            indicator_codes=["yte.ca_sot_xuat_huyet"],
            cadence="daily by 17:00",
        )
        key = late_alert_key(feed.id)
    clock.advance(timedelta(hours=7, minutes=1))  # 17:01
    settings = backend.settings.model_copy(update={"worker_tick_seconds": 0.05})

    def alert() -> Alert | None:
        with database.reading() as session:
            return session.scalar(select(Alert).where(Alert.key == key, Alert.state == "firing"))

    app = create_app(settings, clock=clock, database=database, worker=True)
    with TestClient(app) as client:
        assert client.get("/login").status_code == 200  # it serves while the worker works
        found = wait_for(alert, "alert")
    assert found.started_at == clock()
