"""The syslog listeners, end to end: the real `logger` command (util-linux) over UDP and TCP in both syslog
formats, CEF samples, octet counting, and hostile input — checked in the stored, normalised rows."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cityops.accounts.service import SYSTEM
from cityops.alerts.models import Event
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.soc import service
from cityops.soc.listener import Background, Listener, Settings
from cityops.soc.models import SecurityEvent
from conftest import service_missing

DATA = Path(__file__).parent.parent / "data" / "soc"


@pytest.fixture
def listener(database: Database, clock: FrozenClock) -> Iterator[Listener]:
    with database.writing() as session:
        service.create_system(
            session,
            SYSTEM,
            clock(),
            {
                "code": "cong_thong_tin",
                "name_vi": "Cổng thông tin điện tử tỉnh",
                "owner_agency": "so_khcn",
                "security_level": 3,
                "hosts": ["127.0.0.1", "portal.nghean.gov.vn"],
            },
        )
    own = Listener(database, clock, Settings(flush_seconds=0.05, idle_seconds=1.0, max_frame=4096))
    background = Background(own, ("127.0.0.1", 0), ("127.0.0.1", 0))
    yield own
    background.stop()


def _rows(database: Database) -> list[SecurityEvent]:
    with database.reading() as session:
        return list(session.scalars(select(SecurityEvent).order_by(SecurityEvent.id)))


def _wait_rows(database: Database, count: int, timeout: float = 10.0) -> list[SecurityEvent]:
    deadline = time.monotonic() + timeout
    rows = _rows(database)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = _rows(database)
    return rows


def _logger(*args: str) -> None:
    if shutil.which("logger") is None:
        service_missing("logger", "util-linux logger is not installed")
    subprocess.run(["logger", *args], check=True, timeout=10)


def test_logger_udp_and_tcp_in_both_formats(database: Database, listener: Listener) -> None:
    assert listener.udp_address and listener.tcp_address
    udp_port, tcp_port = str(listener.udp_address[1]), str(listener.tcp_address[1])
    sent_at = datetime.now(UTC)
    _logger(
        "--server",
        "127.0.0.1",
        "--port",
        udp_port,
        "--udp",
        "--rfc5424",
        "-t",
        "sshd",
        "-p",
        "auth.crit",
        "Failed password for root from 203.0.113.7 port 50522 ssh2",
    )
    _logger(
        "--server",
        "127.0.0.1",
        "--port",
        udp_port,
        "--udp",
        "--rfc3164",
        "-t",
        "nginx",
        "-p",
        "daemon.warning",
        "Đăng nhập thất bại: người dùng quản trị",
    )
    _logger(
        "--server",
        "127.0.0.1",
        "--port",
        tcp_port,
        "--tcp",
        "--rfc5424",
        "--octet-count",
        "-t",
        "app",
        "-p",
        "user.err",
        "--msgid",
        "LOGIN",
        "octet counted message",
    )
    _logger(
        "--server",
        "127.0.0.1",
        "--port",
        tcp_port,
        "--tcp",
        "--rfc3164",
        "-t",
        "cron",
        "-p",
        "cron.info",
        "newline framed message",
    )
    rows = _wait_rows(database, 4)
    assert len(rows) == 4, [r.raw for r in rows]
    by_message = {row.message: row for row in rows}
    ssh = by_message["Failed password for root from 203.0.113.7 port 50522 ssh2"]
    assert (ssh.source_format, ssh.transport, ssh.app) == ("rfc5424", "udp", "sshd")
    assert (ssh.severity, ssh.level, ssh.category) == (7, "high", "authentication")
    assert (ssh.src_ip, ssh.src_port) == ("203.0.113.7", 50522)
    assert abs(ssh.occurred_at - sent_at) < timedelta(minutes=1)  # the sender's own time, with its offset
    assert ssh.system_id is not None and ssh.raw.startswith("<34>1 ")
    bsd = by_message["Đăng nhập thất bại: người dùng quản trị"]
    assert (bsd.source_format, bsd.transport, bsd.level, bsd.severity) == ("rfc3164", "udp", "medium", 4)
    # RFC 3164 has no zone: read as Hà Nội time; logger writes local time of a UTC machine, so allow the offset.
    assert abs(bsd.occurred_at - sent_at) < timedelta(hours=8)
    octet = by_message["octet counted message"]
    assert (octet.source_format, octet.transport, octet.rule, octet.level) == ("rfc5424", "tcp", "LOGIN", "medium")
    newline = by_message["newline framed message"]
    assert (newline.source_format, newline.transport, newline.level) == ("rfc3164", "tcp", "info")
    # The serious event of a known system is mirrored for the event rules.
    with database.reading() as session:
        mirrored = list(session.scalars(select(Event)))
    assert [(e.category, e.type, e.severity) for e in mirrored] == [("security", "authentication", "warning")]


def test_cef_samples_over_tcp_and_the_octet_counting_sample(database: Database, listener: Listener) -> None:
    assert listener.tcp_address
    payload = (DATA / "tenzir_checkpoint.log").read_bytes() + (DATA / "pycef_testdata-syslog.txt").read_bytes()
    payload += (DATA / "rfc6587-octet-counting.txt").read_bytes()
    with socket.create_connection(listener.tcp_address) as conn:
        conn.sendall(payload)
    rows = _wait_rows(database, 5)
    assert [row.source_format for row in rows] == ["cef", "cef", "cef", "cef", "rfc5424"]
    accept, _smtp, drop, pycef, secure_auth = rows
    assert (accept.src_ip, accept.src_port, accept.dst_ip, accept.dst_port) == (
        "192.168.101.100",
        49363,
        "52.173.84.157",
        443,
    )
    assert accept.occurred_at == datetime(2018, 11, 26, 22, 17, 32, tzinfo=UTC)
    assert accept.app == "Check Point VPN-1 & FireWall-1"
    assert (drop.level, drop.src_ip, drop.dst_ip) == ("critical", "fd00::555", "::1")  # cp_severity=Very-High
    assert pycef.host == "arcsightfwd.davidbianco.io" and pycef.rule == "2 Test event 1"
    assert secure_auth.host == "192.168.2.132" and secure_auth.app == "SecureAuth0"
    assert secure_auth.occurred_at == datetime(2015, 8, 5, 21, 58, 59, 693000, tzinfo=UTC)


def test_hostile_input_never_stops_the_listener(database: Database, listener: Listener) -> None:
    assert listener.udp_address and listener.tcp_address
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.sendto(b"\xff\xfe\x00\x01binary\x00junk", listener.udp_address)  # binary, NUL, bad UTF-8
    udp.sendto(b"<13>Nov 27 10:00:00 host app: " + b"A" * 10_000, listener.udp_address)  # over max_frame
    udp.close()
    # A client that never finishes its frame: the others are still served; it is cut off after the idle time.
    stalled = socket.create_connection(listener.tcp_address)
    stalled.sendall(b"500 <13>1 2026-11-27T10:00:00+07:00 host app - - - never finished")
    with socket.create_connection(listener.tcp_address) as conn:
        conn.sendall(b"x" * 9000 + b"\n")  # a huge line
        conn.sendall(b"\xc3\x28 invalid utf-8 line\n")
        conn.sendall(b"<13>1 2026-11-27T10:00:00+07:00 ok-host app - - - still served\n")
    with socket.create_connection(listener.tcp_address) as conn:
        conn.sendall(b"12345678901 <13>1 a frame announcing 12 GB, then the connection ends\n")
    rows = _wait_rows(database, 7, timeout=15)
    stalled.close()
    formats = [(row.source_format, row.transport) for row in rows]
    assert ("rfc5424", "tcp") in formats
    assert any(row.message == "still served" for row in rows)
    unparsed = [row for row in rows if row.source_format == "unparsed"]
    assert len(unparsed) >= 5
    reasons = {row.extra.get("reason") for row in unparsed}
    assert {"not_text", "too_long"} <= reasons
    assert all("\x00" not in row.raw for row in rows)
    assert any("never finished" in row.raw for row in unparsed)  # the stalled frame kept when it was cut off
    assert any("\\xff\\xfe" in row.raw for row in unparsed)  # the bytes kept, shown as \xNN


def test_a_full_queue_drops_and_counts(database: Database, clock: FrozenClock) -> None:
    own = Listener(database, clock, Settings(queue_size=5, flush_seconds=0.05))
    for number in range(20):  # nothing takes from the queue: the writer is not started
        own.offer(f"<13>Nov 27 10:00:00 host app: flood {number}".encode(), "udp", "127.0.0.1:9")
    assert own.stats.snapshot()["dropped"] == 15
    batch = []
    while not own.queue.empty():
        item = own.queue.get_nowait()
        assert item is not None
        batch.append(item)
    own.write(batch)
    assert len(_rows(database)) == 5
