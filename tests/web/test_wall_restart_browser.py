"""The wall runs unattended: when the server stops and comes back, the open wall reloads itself and listens again.

The server here is stopped and started again on the same port under an open wall (the shared live server of the
other browser tests cannot be), with the heartbeat every second so the test does not wait half a minute.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, expect
from test_browser import DESKTOP, browser, log_in  # noqa: F401 — the shared browser fixture

from cityops.accounts import service as accounts
from cityops.clock import FrozenClock
from cityops.live.bus import bus_for
from cityops.wall import pages as wall_pages
from cityops.web.app import create_app
from conftest import PASSWORD, START, Backend, _clean

pytestmark = pytest.mark.browser


class Restartable:
    """The app under uvicorn in a thread, on a port that stays the same across restarts."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.sock: socket.socket | None = None

    def start(self) -> None:
        app = create_app(self.backend.settings, clock=FrozenClock(START), database=self.backend.database)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.server is None or self.thread is None or self.sock is None:
            return
        bus_for(self.backend.database.engine.url).close()  # end the open event streams, as a SIGTERM does
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the server did not stop"
        self.sock.close()
        self.server = self.thread = self.sock = None


@pytest.fixture
def restartable(sqlite_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Restartable]:
    monkeypatch.setattr(wall_pages, "HEARTBEAT_SECONDS", 1)
    with sqlite_backend.database.writing() as session:
        accounts.create_user(session, accounts.SYSTEM, START, username="leader", password=PASSWORD, role="leader")
    server = Restartable(sqlite_backend)
    try:
        yield server
    finally:
        server.stop()
        _clean(sqlite_backend)


def test_the_wall_reloads_and_listens_again_after_a_server_restart(
    browser: Browser,  # noqa: F811
    restartable: Restartable,
) -> None:
    restartable.start()
    context = browser.new_context(base_url=restartable.url, viewport=DESKTOP, timezone_id="Asia/Ho_Chi_Minh")
    context.set_default_timeout(15_000)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        log_in(page, "leader")
        expect(page).to_have_url(f"{restartable.url}/")
        page.goto("/wall")
        expect(page.locator(".tile")).to_have_count(9)
        bus = bus_for(restartable.backend.database.engine.url)
        _wait_for(lambda: bus.subscriber_count >= 1, "the wall never opened its event stream")
        page.evaluate("window.cityopsBeforeRestart = true")

        restartable.stop()
        # While the server is away the heartbeat fails and backs off; nothing may throw in the page.
        page.wait_for_timeout(1500)
        restartable.start()

        page.wait_for_function("() => window.cityopsBeforeRestart === undefined", timeout=20_000)  # reloaded by itself
        expect(page.locator(".tile")).to_have_count(9)
        _wait_for(lambda: bus.subscriber_count >= 1, "the reloaded wall never opened its event stream")

        # Live again: a new value of a subsystem makes the tiles showing it fetch their content at once.
        with page.expect_request(lambda request: "/wall/tile/" in request.url and "/content" in request.url):
            bus.publish("values", {"indicators": ["yte.ca_sot_xuat_huyet"], "at": START.isoformat()})
        assert not errors, errors
    finally:
        context.close()


def _wait_for(condition: Any, message: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)
