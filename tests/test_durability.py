"""Nothing acknowledged is lost: the server is killed (SIGKILL) during sustained ingest and started again.

Every batch acknowledged before the kill is stored; the client then sends every batch again with its
Idempotency-Key (as a client does when it cannot tell whether its last request went through): nothing is added
twice, the batch in flight at the kill is stored exactly once, and the alert raised before the kill is neither raised
nor told again after the restart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from cityops.accounts import service as accounts
from cityops.accounts.service import SYSTEM
from cityops.alerts import rules
from cityops.alerts.models import Alert, AlertEvent
from cityops.geo.models import Subject
from cityops.notifications.models import Notification
from cityops.observations.models import Observation
from conftest import PASSWORD, START, Backend, make_key

CASES = "yte.ca_sot_xuat_huyet"
BATCH = 100
BATCHES = 60


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, backend: Backend) -> None:
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = {
            **os.environ,
            "CITYOPS_DATA_DIR": str(backend.settings.data_dir),
            "CITYOPS_DATABASE_URL": backend.settings.resolved_database_url,
            "CITYOPS_SECRET_KEY": backend.settings.resolved_secret_key,
            "CITYOPS_WORKER_TICK_SECONDS": "1",
            "CITYOPS_LOG_FORMAT": "text",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, headers: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cityops.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 40
        while True:
            assert self.process.poll() is None, "the server exited"
            try:
                if httpx.get(f"{self.url}/api/v1/me", headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def server(backend: Backend) -> Iterator[Server]:
    started = Server(backend)
    try:
        yield started
    finally:
        started.stop()


def _batch(number: int, communes: list[str]) -> list[dict[str, object]]:
    day = date(2020, 1, 1) + timedelta(days=number)
    return [
        {"indicator": CASES, "subject": communes[index % len(communes)], "period": day.isoformat(), "value": index % 7}
        for index in range(min(BATCH, len(communes)))
    ]


def test_acknowledged_batches_survive_a_kill_and_retries_add_nothing_twice(
    server: Server, backend: Backend, database
) -> None:
    key = make_key(database, START, agency="trung_tam_kiem_soat_benh_tat", feed="cdc_ngay", indicators=[CASES])
    with database.writing() as session:
        accounts.create_user(session, SYSTEM, START, username="vanhanh", password=PASSWORD, role="operator")
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
        communes = list(session.scalars(select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code)))
    batches = [_batch(number, communes) for number in range(BATCHES)]
    server.start(key.headers)

    # The alert fires before the kill, and its notification is made.
    breach = {"indicator": CASES, "subject": communes[0], "period": "2026-11-27", "value": 25}
    httpx.post(f"{server.url}/api/v1/observations", headers=key.headers, json={"observations": [breach]}, timeout=30)
    deadline = time.monotonic() + 30
    while _count(database, Notification) == 0:
        assert time.monotonic() < deadline, "the alert was not raised and told before the kill"
        time.sleep(0.1)

    acknowledged: list[int] = []
    killed = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server.url, headers=key.headers, timeout=30) as client:
            for number, items in enumerate(batches):
                try:
                    answer = client.post(
                        "/api/v1/observations",
                        json={"observations": items},
                        headers={"Idempotency-Key": f"lo-{number}"},
                    )
                except httpx.TransportError:
                    return  # the server died under this request: unknown whether it was stored
                assert answer.status_code == 200, answer.text
                acknowledged.append(number)
                if killed.is_set():
                    return

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < BATCHES // 3:
        assert time.monotonic() < deadline and sender.is_alive(), "ingest did not get going"
        time.sleep(0.01)
    server.kill()
    killed.set()
    sender.join(timeout=30)
    before = set(acknowledged)
    assert 0 < len(before) < BATCHES

    stored = _count(database, Observation)
    assert stored >= 1 + len(before) * len(batches[0])  # every acknowledged batch is there

    server.start(key.headers)
    replayed = 0
    with httpx.Client(base_url=server.url, headers=key.headers, timeout=30) as client:
        for number, items in enumerate(batches):
            answer = client.post(
                "/api/v1/observations", json={"observations": items}, headers={"Idempotency-Key": f"lo-{number}"}
            )
            assert answer.status_code == 200, answer.text
            if number in before:
                assert answer.headers.get("Idempotent-Replayed") == "true", number
            replayed += answer.headers.get("Idempotent-Replayed") == "true"
    assert replayed >= len(before)
    assert _count(database, Observation) == 1 + BATCHES * len(batches[0])  # each batch exactly once

    time.sleep(2)  # a few worker rounds after the restart
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 1
        fired = select(func.count()).select_from(AlertEvent).where(AlertEvent.event == "fired")
        assert session.scalar(fired) == 1
    assert _count(database, Notification) == 1  # told once, not again after the restart


def _count(database, model) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)
