"""`cityops demo` on a fresh data directory: the app and the simulator, through the real API, over real HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cityops.demo.runner import DEMO_USERS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("demo")
    port = _free_port()
    log_path = data_dir / "demo.log"
    env = {**os.environ, "CITYOPS_DATA_DIR": str(data_dir)}
    env.pop("CITYOPS_DATABASE_URL", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cityops.cli", "demo", "--port", str(port), "--interval", "2"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while "sent the recent past" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        yield base_url, log_path
    finally:
        process.terminate()
        process.wait(timeout=20)


def _logged_in(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=True)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post("/login", data={"username": username, "password": password, "csrf_token": token[1]})
    assert answer.status_code == 200 and "/login" not in str(answer.url), answer.text[:500]
    return client


def _values(html: str) -> dict[str, str]:
    rows = re.findall(r'data-indicator="([^"]+)".*?class="num[^"]*value">([^<]*)<', html, flags=re.S)
    return dict(rows)


def test_demo_prints_the_url_and_the_logins(demo: tuple[str, Path]) -> None:
    base_url, log_path = demo
    output = log_path.read_text()
    assert f"{base_url}/" in output
    for user in DEMO_USERS:
        assert user.username in output and user.password in output


def test_home_page_shows_values_that_change_within_a_minute(demo: tuple[str, Path]) -> None:
    base_url, _ = demo
    leader = next(user for user in DEMO_USERS if user.role == "leader")
    client = _logged_in(base_url, leader.username, leader.password)
    try:
        home = client.get("/")
        assert "Tổng quan" in home.text and "Hồ sơ tiếp nhận" in home.text
        first = _values(home.text)
        filled = {code: value for code, value in first.items() if value != "Chưa có dữ liệu"}
        assert len(filled) >= 0.9 * len(first), "the simulator supplies nearly every indicator"
        deadline = time.monotonic() + 60
        changed: set[str] = set()
        while not changed and time.monotonic() < deadline:
            time.sleep(2)
            now = _values(client.get("/partials/home-values").text)
            changed = {code for code, value in now.items() if value != first.get(code)}
        assert changed, "no value on the home page changed within a minute"
    finally:
        client.close()


def test_simulator_values_arrive_through_the_api_with_agency_keys(demo: tuple[str, Path]) -> None:
    base_url, _ = demo
    admin = next(user for user in DEMO_USERS if user.role == "admin")
    client = _logged_in(base_url, admin.username, admin.password)
    try:
        audit = client.get("/api/v1/audit", params={"entity_type": "api_key", "limit": 200}).json()["items"]
        assert any(entry["action"] == "api_key.create" and entry["actor"] == "demo" for entry in audit)
        latest = client.get("/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", params={"subject_kind": "commune"})
        assert latest.status_code == 200
        body = latest.json()
        assert body["total"] == 130, "every commune of Nghệ An has a value"
        assert all(item["feed"] == "demo_trung_tam_phuc_vu_hcc" for item in body["items"])
    finally:
        client.close()
