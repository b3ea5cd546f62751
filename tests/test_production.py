"""Production mode on the real PostgreSQL: two web processes and one worker process, as `docs/deploy.md` sets them up.

A live page open on one web process receives what is caused through the other (the bus is LISTEN/NOTIFY); the rule
that the value breaks is evaluated by the worker process alone, and its alert is raised exactly once. Then
`cityops serve --workers 2` (two processes sharing one port) answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cityops.accounts.service import SYSTEM
from cityops.alerts import rules
from cityops.alerts.models import Alert, AlertEvent
from conftest import START, Backend, _clean, make_key

CASES = "yte.ca_sot_xuat_huyet"
WARD = "16681"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """`cityops` commands started on the test's database; stopped (SIGTERM) at the end."""

    def __init__(self, backend: Backend) -> None:
        self.environment = {
            **os.environ,
            "CITYOPS_DATA_DIR": str(backend.settings.data_dir),
            "CITYOPS_DATABASE_URL": backend.settings.resolved_database_url,
            "CITYOPS_SECRET_KEY": backend.settings.resolved_secret_key,
            "CITYOPS_EMBEDDED_WORKER": "false",
            "CITYOPS_WORKER_TICK_SECONDS": "60",  # only the reaction to new values can fire the alert in time
            "CITYOPS_LOG_FORMAT": "text",
        }
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *arguments: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "cityops.cli", *arguments],
            env=self.environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started.append(process)
        return process

    def serve(self, *extra: str) -> str:
        port = _port()
        process = self.start("serve", "--host", "127.0.0.1", "--port", str(port), *extra)
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: _answers(f"{url}/readyz"), f"{url} to be ready", process)
        return url

    def stop(self) -> None:
        for process in self.started:
            process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _wait(condition: Callable[[], Any], what: str, process: subprocess.Popen[bytes] | None = None) -> Any:
    deadline = time.monotonic() + 40
    while True:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process waited on for {what} exited with code {process.returncode}")
        assert time.monotonic() < deadline, f"waited 40 s for {what}"
        time.sleep(0.1)


@pytest.fixture
def processes(postgres_backend: Backend) -> Iterator[Processes]:
    started = Processes(postgres_backend)
    try:
        yield started
    finally:
        started.stop()
        _clean(postgres_backend)


def _listen(url: str, key: str, seen: list[str], ready: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(timeout=httpx.Timeout(60, read=60)) as client,
        client.stream("GET", f"{url}/live/events?topics=values,alerts", headers=headers) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("retry:"):
                ready.set()
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
                if "alerts" in seen:
                    return


def test_two_web_processes_and_a_worker_share_live_events_and_fire_a_rule_once(
    processes: Processes, postgres_backend: Backend
) -> None:
    database = postgres_backend.database
    key = make_key(database, START, agency="trung_tam_kiem_soat_benh_tat", feed="cdc_ngay", indicators=[CASES])
    with database.writing() as session:
        definition = {
            "code": "sxh_cao",
            "name_vi": "Sốt xuất huyết tăng cao",
            "name_en": "Dengue cases high",
            "kind": "threshold",
            "indicator": CASES,
            "params": {"op": ">", "value": 20},
            "severity": "critical",
        }
        rules.create_rule(session, SYSTEM, START, definition)
    first, second = processes.serve(), processes.serve()
    processes.start("worker")

    seen: list[str] = []
    ready = threading.Event()
    listener = threading.Thread(target=_listen, args=(first, key.key, seen, ready), daemon=True)
    listener.start()
    assert ready.wait(20), "the live stream on the first process did not open"
    time.sleep(3)  # the worker's first round is over and it listens for new values

    item = {"indicator": CASES, "subject": WARD, "period": "2026-11-27", "value": 25}
    sent = httpx.post(f"{second}/api/v1/observations", headers=key.headers, json={"observations": [item]}, timeout=30)
    assert sent.status_code == 200 and sent.json()["created"] == 1, sent.text

    listener.join(timeout=40)
    assert seen[:1] == ["values"] and "alerts" in seen, seen  # caused on the second, seen on the first
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 1
        firing = select(func.count()).select_from(AlertEvent).where(AlertEvent.event == "fired")
        assert session.scalar(firing) == 1

    shared = processes.serve("--workers", "2")
    assert httpx.get(f"{shared}/api/v1/me", headers=key.headers, timeout=10).status_code == 200


def test_several_web_processes_need_postgresql(sqlite_backend: Backend, tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "CITYOPS_DATA_DIR": str(tmp_path),
        "CITYOPS_DATABASE_URL": sqlite_backend.settings.resolved_database_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "cityops.cli", "serve", "--workers", "2", "--port", str(_port())],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "need PostgreSQL" in result.stderr
