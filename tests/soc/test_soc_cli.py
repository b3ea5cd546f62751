"""`cityops soc listen` as a real long-running command: it receives over UDP and TCP and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from cityops.soc.models import SecurityEvent
from conftest import Backend, _clean


def _free_port() -> int:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        tcp.bind(("127.0.0.1", 0))
        port = int(tcp.getsockname()[1])
        udp.bind(("127.0.0.1", port))  # free for both
        return port


@pytest.fixture
def sqlite_only(sqlite_backend: Backend) -> Iterator[Backend]:
    yield sqlite_backend
    _clean(sqlite_backend)


def test_soc_listen_command(sqlite_only: Backend) -> None:
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("CITYOPS_")}
    env["CITYOPS_DATA_DIR"] = str(sqlite_only.settings.data_dir)
    env["CITYOPS_DATABASE_URL"] = sqlite_only.settings.resolved_database_url
    env["CITYOPS_SECRET_KEY"] = "test-secret-key-" + "x" * 32
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cityops.cli",
            "soc",
            "listen",
            "--udp",
            f"127.0.0.1:{port}",
            "--tcp",
            f"127.0.0.1:{port}",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "soc: listening" in line, line
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"<13>1 2026-11-27T10:00:00+07:00 h app - - - over udp", ("127.0.0.1", port))
        with socket.create_connection(("127.0.0.1", port)) as tcp:
            octet = b"<13>Nov 27 10:00:00 h a: octet counted"
            tcp.sendall(b"%d %s<13>Nov 27 10:00:00 h a: over tcp\n" % (len(octet), octet))
        deadline = time.monotonic() + 15
        messages: list[str] = []
        while time.monotonic() < deadline and len(messages) < 3:
            with sqlite_only.database.reading() as session:
                messages = list(session.scalars(select(SecurityEvent.message).order_by(SecurityEvent.id)))
            time.sleep(0.05)
        assert sorted(messages) == ["octet counted", "over tcp", "over udp"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert "soc: stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_soc_listen_refuses_a_bad_address(sqlite_only: Backend) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cityops.cli", "soc", "listen", "--udp", "khong-phai-dia-chi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "host:port" in result.stderr
