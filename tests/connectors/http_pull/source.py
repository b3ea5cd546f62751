"""What the http_pull tests share: a real HTTP server on 127.0.0.1 playing an agency's REST endpoint (iGate /
LGSP style) as each test scripts it, a feed of kind http_pull pulling from it, and what a user would see after a
run (the stored values, the run log, the rejections)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.catalog.models import Indicator
from cityops.clock import FrozenClock
from cityops.connectors import runner
from cityops.db.engine import Database
from cityops.feeds.models import Feed, FeedRun
from cityops.feeds.service import create_feed
from cityops.geo.models import Subject
from cityops.observations.models import IngestRejection, Observation

SECRET_KEY = "test-secret"
AGENCY = "trung_tam_phuc_vu_hcc"
RECEIVED, ON_TIME = "hcc.ho_so_tiep_nhan", "hcc.ho_so_dung_han"
COMMUNE = "16681"  # Phường Thành Vinh
HOLD_LIMIT_SECONDS = 30.0  # a held answer waits at most this long for the test to end


@dataclass
class Seen:
    """One request the server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case


@dataclass
class Reply:
    """What the server answers: a status, a JSON body (or bytes as they are), headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # answer nothing until the test ends: slower than any timeout


class SourceServer:
    """A threaded HTTP server; `answer(seen)` decides each reply (script() sets it to a fixed sequence)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.answer: Callable[[Seen], Reply] = lambda seen: Reply(404, {"error": "not scripted"})
        self.released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.source = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "/igate/api/ho-so") -> str:
        return self.base + path

    def script(self, *replies: Reply) -> None:
        """Answer with these replies in turn; the last one again and again."""
        queue = list(replies)

        def next_reply(seen: Seen) -> Reply:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.answer = next_reply

    def __enter__(self) -> SourceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        source: SourceServer = self.server.source  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        seen = Seen(parts.path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in self.headers.items()})
        source.seen.append(seen)
        reply = source.answer(seen)
        if reply.hold:
            source.released.wait(HOLD_LIMIT_SECONDS)
            self.close_connection = True
            return
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body, ensure_ascii=False).encode()
        try:
            self.send_response_only(reply.status)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Date": self.date_time_string(),
                **reply.headers,
            }
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the agency's data -------------------------------------------------------------------------------


def record(
    subject: str = "40", period: str = "10/2026", received: Any = "1.234", on_time: Any = 1100, **extra: Any
) -> dict[str, Any]:
    """One record as iGate writes it: Vietnamese field names, numbers as text the Vietnamese way."""
    return {
        "maDonVi": subject,
        "kyBaoCao": period,
        "soTiepNhan": received,
        "soDungHan": on_time,
        "id": f"HS-{subject}-{period}",
        **extra,
    }


def answer(*records: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An iGate answer: records under data.items."""
    return {"status": "success", "data": {"items": list(records), **extra}}


MAPPING: dict[str, Any] = {
    "records": "data.items",
    "subject": "maDonVi",
    "period": "kyBaoCao",
    "source_ref": "id",
    "observations": [
        {"indicator": {"value": RECEIVED}, "value": "soTiepNhan"},
        {"indicator": {"value": ON_TIME}, "value": "soDungHan"},
    ],
}


def settings(source: SourceServer, **changes: Any) -> dict[str, Any]:
    """An http_pull feed's settings pulling from the test's server."""
    return {"url": source.url(), "timeout_seconds": 5, "mapping": MAPPING, **changes}


def make_feed(database: Database, clock: FrozenClock, feed_settings: dict[str, Any], code: str = "igate_pull") -> int:
    """Create the public-service centre's http_pull feed; its id."""
    with database.writing() as session:
        feed = create_feed(
            session,
            accounts.SYSTEM,
            clock(),
            code=code,
            agency_code=AGENCY,
            indicator_codes=[RECEIVED, ON_TIME],
            kind="http_pull",
            settings=feed_settings,
            secret_key=SECRET_KEY,
            cadence="monthly by day 5",
            poll_seconds=300,
        )
        return feed.id


def run(database: Database, feed_id: int, clock: FrozenClock, delays: list[float] | None = None) -> dict[str, Any]:
    """Run the feed once, as the worker does; the waits between attempts go to `delays` instead of sleeping."""
    waits = delays if delays is not None else []
    return runner.run_feed(database, feed_id, clock, SECRET_KEY, sleep=waits.append)


def stored(database: Database) -> dict[tuple[str, str, str], float | None]:
    """Every stored value: (indicator, subject, period) → value."""
    with database.reading() as session:
        rows = session.execute(
            select(Indicator.code, Subject.code, Observation.period_key, Observation.value)
            .join(Indicator, Indicator.id == Observation.indicator_id)
            .join(Subject, Subject.id == Observation.subject_id)
        )
        return {(indicator, subject, period): value for indicator, subject, period, value in rows}


def runs(database: Database, feed_id: int) -> list[FeedRun]:
    """A feed's runs, oldest first."""
    with database.reading() as session:
        return list(session.scalars(select(FeedRun).where(FeedRun.feed_id == feed_id).order_by(FeedRun.id)))


def rejections(database: Database, feed_id: int) -> list[IngestRejection]:
    """The rejected items stored for a feed."""
    with database.reading() as session:
        query = select(IngestRejection).where(IngestRejection.feed_id == feed_id).order_by(IngestRejection.id)
        return list(session.scalars(query))


def cursor_of(database: Database, feed_id: int) -> str:
    """The feed's kept "since" cursor."""
    with database.reading() as session:
        return session.get_one(Feed, feed_id).cursor
