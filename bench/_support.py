"""What every benchmark shares: the result record, the machine, a PostgreSQL database, the real server."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

POSTGRES_ADMIN_URL = os.environ.get("CITYOPS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SERVER_START_TIMEOUT = 60.0


# Units whose figures are better when higher (rates, ratios); every other unit is better when lower (times, memory,
# growth, losses).
HIGHER_IS_BETTER = ("/s", "ratio")


@dataclass(frozen=True)
class Result:
    """One measured figure, with the project's target when it has one (issue 10) and a note on what limits it."""

    name: str
    value: float
    unit: str
    backend: str
    target: float | None = None
    note: str = ""

    @property
    def higher_is_better(self) -> bool:
        return any(mark in self.unit for mark in HIGHER_IS_BETTER)

    @property
    def passed(self) -> bool | None:
        """Whether the target is met; None without a target."""
        if self.target is None:
            return None
        if self.value != self.value:  # NaN: nothing was measured
            return False
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def as_dict(self, machine: str) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "machine": machine}


class ServiceMissing(Exception):
    """A service a part of a benchmark needs is not reachable."""


# --- the machine ------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    except OSError:
        match = None
    return f"{int(match[1]) / 1024**2:.1f} GiB" if match else "unknown"


def postgres_version() -> str | None:
    """The PostgreSQL server's version, or None when it is not reachable."""
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]).split()[0] if row else None


def machine_description() -> str:
    """Cores, memory, system, Python, SQLite and PostgreSQL versions, on one line."""
    return ", ".join(
        [
            f"{os.cpu_count()} cores ({_cpu_model()})",
            f"{_memory_gib()} memory",
            f"{platform.system()} {platform.release()}",
            f"Python {platform.python_version()}",
            f"SQLite {sqlite3.sqlite_version}",
            f"PostgreSQL {postgres_version() or 'not reachable'}",
        ]
    )


# --- PostgreSQL -------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def postgres_database(prefix: str = "cityops_bench") -> Iterator[str]:
    """A fresh PostgreSQL database, dropped on the way out; ServiceMissing when the server is not reachable."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        where = POSTGRES_ADMIN_URL.split("@")[-1]
        raise ServiceMissing(f"PostgreSQL at {where} is not usable: {_first_line(exc)}") from exc
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", POSTGRES_ADMIN_URL)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the real server --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running server: where it answers, and its process."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the server's process has used so far; 0 where /proc is missing."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the server's process now, in MB (10⁶ bytes); 0 where /proc is missing."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0.0
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match[1]) * 1024 / 1e6 if match else 0.0


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on one connection: cheap enough that a few of them in one asyncio loop
    load the server, not this process (httpx costs about a millisecond of CPU a request)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body; reconnects when the server closed the connection."""
        if self.writer is None or self.reader is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            self.writer = None
            raise ConnectionError("the server closed the connection")
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        content = await self.reader.readexactly(length) if length else b""
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.writer = None
        return int(status_line.split()[1]), headers, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@contextmanager
def running_server(
    data_dir: Path, database_url: str, ready_headers: dict[str, str], port: int | None = None
) -> Iterator[Server]:
    """`cityops serve` in its own process on a free port (or the given one), once /api/v1/me answers 200."""
    port = port or free_port()
    env = {**os.environ, "CITYOPS_DATA_DIR": str(data_dir), "CITYOPS_DATABASE_URL": database_url}
    log_path = data_dir / "server.log"
    command = [sys.executable, "-m", "cityops.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        # cwd is the data directory, so that no stray .env file changes the settings.
        process = subprocess.Popen(command, env=env, cwd=data_dir, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(process, base_url, ready_headers, log_path)
        yield Server(base_url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str, headers: dict[str, str], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{base_url}/api/v1/me", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {SERVER_START_TIMEOUT:.0f} s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


# --- what every benchmark module repeats -------------------------------------------------------------


def percentile(values: list[float], percent: int) -> float:
    """The percentile of the values (NaN when there are none)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def each_backend(run_backend: Callable[[str, str, Path], list[Result]], prefix: str) -> list[Result]:
    """`run_backend(name, database URL, data dir)` on SQLite in a temporary folder, then on PostgreSQL in a fresh
    database (skipped, and said, when the server is not reachable)."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix=f"cityops-bench-{prefix}-") as folder:
        sqlite_dir = Path(folder) / "sqlite"
        results += run_backend("sqlite", f"sqlite:///{sqlite_dir / 'cityops.db'}", sqlite_dir)
        try:
            with postgres_database() as url:
                results += run_backend("postgresql", url, Path(folder) / "postgresql")
        except ServiceMissing as exc:
            print(f"[postgresql] skipped: {exc}", flush=True)
    return results
