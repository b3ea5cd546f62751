"""Overload is answered at once: past the limit of requests inside the process, 503 with Retry-After and a problem in
Vietnamese and English; nothing is queued without end, and the requests already inside finish normally."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from cityops.clock import FrozenClock
from cityops.web.app import create_app
from conftest import START, Backend, _clean, make_key

CASES = "yte.ca_sot_xuat_huyet"


@pytest.fixture
def small_server(sqlite_backend: Backend) -> Iterator[str]:
    """The app allowing two requests inside at once, under uvicorn on a free port."""
    settings = sqlite_backend.settings.model_copy(update={"max_concurrent_requests": 2})
    app = create_app(settings, clock=FrozenClock(START), database=sqlite_backend.database)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    running = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        running.should_exit = True
        thread.join(timeout=15)
        sock.close()
        _clean(sqlite_backend)


def test_past_the_limit_requests_get_503_with_retry_after_and_the_ones_inside_finish(
    small_server: str, sqlite_backend: Backend
) -> None:
    key = make_key(
        sqlite_backend.database, START, agency="trung_tam_kiem_soat_benh_tat", feed="cdc", indicators=[CASES]
    )
    release = threading.Event()
    answers: list[tuple[int, str]] = []

    host, port = small_server.removeprefix("http://").split(":")

    def slow_post(period: str) -> None:
        # The body arrives slowly: the request is inside the app, holding its place, until `release`.
        item = {"indicator": CASES, "subject": "16681", "period": period, "value": 3}
        body = json.dumps({"observations": [item]}).encode()
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            head = (
                f"POST /api/v1/observations HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key.key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            sock.sendall(head.encode() + body[:20])
            release.wait(15)
            sock.sendall(body[20:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status = int(answer.split(b" ", 2)[1])
        answers.append((status, answer.split(b"\r\n\r\n", 1)[1].decode()))

    holders = [threading.Thread(target=slow_post, args=(f"2026-11-2{day}",)) for day in (5, 6)]
    for holder in holders:
        holder.start()
    try:
        deadline = time.monotonic() + 10
        while True:  # both inside: the third is refused at once
            refused = httpx.get(f"{small_server}/api/v1/me", headers=key.headers, timeout=10)
            if refused.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert refused.status_code == 503, (refused.text, answers)
        assert refused.headers["Retry-After"] == "1"
        problem = refused.json()
        assert problem["code"] == "overloaded"
        assert "quá tải" in problem["title"] and "Retry-After" in problem["message_vi"]
        assert "Nothing was stored" in problem["message_en"]
        english = httpx.get(f"{small_server}/api/v1/me?lang=en", headers=key.headers, timeout=10)
        assert english.json()["title"] == "Server overloaded"
        # Live streams and static files are not counted.
        assert httpx.get(f"{small_server}/static/app.css", timeout=10).status_code == 200
    finally:
        release.set()
        for holder in holders:
            holder.join(timeout=30)
    assert [status for status, _ in answers] == [200, 200], answers  # the two inside were stored
    assert all('"created":1' in text for _, text in answers), answers
    assert httpx.get(f"{small_server}/api/v1/me", headers=key.headers, timeout=10).status_code == 200
