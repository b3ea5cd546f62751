"""Security events per second through the syslog listener, over UDP and over TCP, on SQLite and PostgreSQL.

For each backend, on a fresh database (schema, province, catalog) with three registered systems:
1. the listener (cityops.soc.listener, the same code as `cityops soc listen`) runs in this process on 127.0.0.1;
2. a sender in its own process sends CITYOPS_BENCH_SOC_EVENTS messages (default 50,000) as fast as it can: a mix
   of RFC 5424, RFC 3164 and CEF lines, some high-severity — over UDP, then the same over one TCP connection
   (newline framing);
3. the rate is the events stored divided by the time from the first message sent to the last one stored;
   "dropped" counts what the listener dropped (queue full) plus what UDP lost before the listener saw it.

Aim (issue 8): at least 5,000 events/s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from bench._support import Result, each_backend
from cityops.accounts.service import SYSTEM
from cityops.clock import system_clock
from cityops.db.engine import Database
from cityops.settings import Settings
from cityops.setup import ensure_ready
from cityops.soc import service
from cityops.soc.listener import Background, Listener
from cityops.soc.models import SecurityEvent

EVENTS = int(os.environ.get("CITYOPS_BENCH_SOC_EVENTS", "50000"))
TARGET = 5_000.0

SENDER = r"""
import socket, sys
kind, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = [
    b"<34>1 2026-11-27T10:00:00.123+07:00 portal.nghean.gov.vn sshd 123 LOGIN - "
    b"Failed password for root from 203.0.113.%d port 4%04d ssh2",
    b"<86>Nov 27 10:00:01 mail.nghean.gov.vn postfix/smtpd[42]: connect from unknown[198.51.100.%d] %d",
    b"<132>Nov 27 10:00:02 fw01 CEF:0|Fortinet|FortiGate|7.2|13|Port scan|7|"
    b"src=192.0.2.%d spt=%d dst=10.0.0.5 dpt=443 act=deny",
]
if kind == "udp":
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    for n in range(count):
        sock.sendto(lines[n % 3] % (n % 250, n % 10000), (host, port))
else:
    sock = socket.create_connection((host, port))
    chunk = []
    for n in range(count):
        chunk.append(lines[n % 3] % (n % 250, n % 10000) + b"\n")
        if len(chunk) == 500:
            sock.sendall(b"".join(chunk)); chunk = []
    sock.sendall(b"".join(chunk))
    sock.close()
"""


def _stored(database: Database) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(SecurityEvent)) or 0)


def _measure(database: Database, listener: Listener, transport: str, address: tuple[str, int]) -> tuple[float, int]:
    before = _stored(database)
    dropped_before = listener.stats.snapshot()["dropped"]
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", SENDER, transport, address[0], str(address[1]), str(EVENTS)], check=True, timeout=600
    )
    last, last_change = before, time.monotonic()
    while time.monotonic() - last_change < 2.0:  # until nothing more arrives for 2 s
        time.sleep(0.1)
        now_stored = _stored(database)
        if now_stored != last:
            last, last_change = now_stored, time.monotonic()
        if now_stored - before >= EVENTS:
            last_change = time.monotonic()
            break
    stored = last - before
    seconds = last_change - started
    lost = EVENTS - stored - (listener.stats.snapshot()["dropped"] - dropped_before)
    dropped = EVENTS - stored
    print(
        f"  {transport}: {stored:,} stored in {seconds:.2f} s, {dropped:,} dropped "
        f"({max(0, lost):,} before the listener)"
    )
    return stored / seconds if seconds else 0.0, dropped


def run_backend(backend: str, url: str, data_dir: Path) -> list[Result]:
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=url)
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        ensure_ready(settings, database)
        with database.writing() as session:
            for code, host in (("cong_thong_tin", "portal.nghean.gov.vn"), ("thu_dien_tu", "mail.nghean.gov.vn")):
                service.create_system(
                    session,
                    SYSTEM,
                    system_clock(),
                    {"code": code, "name_vi": code, "owner_agency": "so_khcn", "hosts": [host]},
                )
        listener = Listener(database, system_clock)
        background = Background(listener, ("127.0.0.1", 0), ("127.0.0.1", 0))
        try:
            print(f"[{backend}] {EVENTS:,} events per transport …", flush=True)
            assert listener.udp_address and listener.tcp_address
            udp_rate, udp_dropped = _measure(database, listener, "udp", listener.udp_address)
            tcp_rate, tcp_dropped = _measure(database, listener, "tcp", listener.tcp_address)
        finally:
            background.stop()
    finally:
        database.dispose()
    return [
        Result("soc listener UDP", udp_rate, "events/s", backend, TARGET),
        Result("soc listener UDP dropped", udp_dropped, "events", backend),
        Result("soc listener TCP", tcp_rate, "events/s", backend, TARGET),
        Result("soc listener TCP dropped", tcp_dropped, "events", backend),
    ]


def run() -> list[Result]:
    """SQLite, then PostgreSQL (skipped when not reachable)."""
    return each_backend(run_backend, "soc")


if __name__ == "__main__":
    for result in run():
        print(result)
