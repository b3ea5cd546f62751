"""Server-sent events through the real server (uvicorn, HTTP streaming), on both databases: a value sent with the
API arrives as a `values` event, a firing alert as an `alerts` event, a citizen's report as `reports` and its
incident as `incidents`; who may not read data gets no stream; an unknown topic is refused."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from cityops.accounts.service import SYSTEM
from cityops.alerts import evaluation, rules
from cityops.clock import FrozenClock
from cityops.live.bus import close_all
from conftest import PASSWORD, Backend, make_key


@pytest.fixture(autouse=True, scope="module")
def _buses_closed() -> Iterator[None]:
    """Leave no listener behind (the test database is dropped at the end of the session)."""
    yield
    close_all()


@pytest.fixture
def server(app: Any) -> Iterator[str]:
    """The test's app under uvicorn on a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    running.should_exit = True
    thread.join(timeout=15)
    sock.close()


def logged_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10)
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    return client


class Events:
    """Reads one event stream: the events in order, skipping comments."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()
        self.comments: list[str] = []

    def next(self) -> tuple[str, dict[str, Any]]:
        topic = ""
        for line in self.lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event: "):
                topic = line[7:]
            elif line.startswith("data: "):
                return topic, json.loads(line[6:])
        raise AssertionError("the stream ended")


def test_values_alerts_reports_and_incidents_reach_an_open_stream(
    server: str, backend: Backend, clock: FrozenClock, personas: dict[str, str]
) -> None:
    database = backend.database
    key = make_key(
        database, clock(), agency="trung_tam_kiem_soat_benh_tat", feed="cdc", indicators=["yte.ca_sot_xuat_huyet"]
    )
    with database.writing() as session:
        rules.create_rule(
            session,
            SYSTEM,
            clock(),
            {
                "code": "sxh",
                "name_vi": "Sốt xuất huyết tăng cao",
                "name_en": "Dengue high",
                "kind": "threshold",
                "indicator": "yte.ca_sot_xuat_huyet",
                "params": {"op": ">", "value": 20},
                "severity": "critical",
            },
        )
    leader = logged_in(server, "leader")
    with leader.stream("GET", "/live/events", headers={"Last-Event-ID": "41"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = Events(response)
        first = next(events.lines)
        assert first.startswith("retry: ")  # sent once subscribed: nothing published from now on is missed

        sent = httpx.post(
            f"{server}/api/v1/observations",
            headers=key.headers,
            json={
                "observations": [
                    {"indicator": "yte.ca_sot_xuat_huyet", "subject": "16681", "period": "2026-11-27", "value": 25}
                ]
            },
            timeout=10,
        )
        assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text
        topic, payload = events.next()
        assert topic == "values" and payload["indicators"] == ["yte.ca_sot_xuat_huyet"], payload
        assert payload["at"].startswith("2026-11-27T03:00")

        assert evaluation.evaluate_due(database, clock, owner="test") == 1  # what the worker does each tick
        topic, payload = events.next()
        assert topic == "alerts", (topic, payload)
        assert (payload["state"], payload["severity"], payload["subject"]) == ("firing", "critical", "16681")
        assert "Phường Thành Vinh" in payload["title_vi"] and payload["key"].startswith("rule:")

        operator = logged_in(server, "operator")
        operator.get("/alerts")
        csrf = operator.get("/").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        created = operator.post(
            "/api/v1/incidents",
            headers={"X-CSRF-Token": csrf},
            json={"title": "Ngập úng tại Phường Thành Vinh", "severity": "high", "agency": "so_y_te"},
        )
        assert created.status_code in (200, 201), created.text
        topic, payload = events.next()
        assert topic == "incidents", (topic, payload)
        assert (payload["status"], payload["severity"], payload["agency"]) == ("new", "high", "so_y_te")

    # Only the asked topics; an unknown one is refused; no stream without read_data or without a log-in.
    with leader.stream("GET", "/live/events?topics=reports") as response:
        assert response.status_code == 200
        assert next(response.iter_lines()) == "retry: 2000"
    assert leader.get("/live/events?topics=values,weather").json()["code"] == "validation_failed"
    assert httpx.get(f"{server}/live/events", timeout=10).status_code == 401
    citizen = logged_in(server, "citizen")
    assert citizen.get("/live/events").status_code == 403
