"""A simulated iGate / LGSP endpoint: the public-service centre's statistics, answered the way the provincial data
platform (LGSP) answers, for the demo's http_pull feeds to pull.

    GET /lgsp/igate/v1/ho-so/thong-ke-thang?page=1&size=200&tuNgay=2026-11-27T10:05:00.000001+07:00
    Authorization: Bearer <token>

    {"status": "success", "message": "",
     "data": {"items": [{"maBanGhi": "thong-ke-thang:16681:11/2026", "maDonVi": "16681",
                         "tenDonVi": "Phường Thành Vinh", "kyBaoCao": "11/2026", "soHoSoTiepNhan": 512, …,
                         "tyLeDungHan": 97.4, "ngayCapNhat": "2026-11-27T10:05:00.000001+07:00"}],
              "page": 1, "size": 200, "total": 1572, "nextPage": 2}}

One resource per period type (thong-ke-thang for months, hien-trang for the state now, …). A record holds one unit's
figures for one period (for the state now: the unit's latest figures); each figure is named the iGate way
(`soHoSoTiepNhan` for hcc.ho_so_tiep_nhan, `tyLeDungHan` for hcc.ty_le_dung_han). Records are ordered by
`ngayCapNhat`, stamped strictly increasing, so `tuNgay` (strictly after) returns exactly what changed since the
last pull. Without the right bearer token the answer is 401; a `tuNgay` that is not a moment is 400.
The server is the standard library's, in a thread, on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cityops.clock import LOCAL_TZ
from cityops.observations.periods import Period

BASE_PATH = "/lgsp/igate/v1/ho-so"
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
FEED_PAGE_SIZE = 200  # what the demo's feeds ask for


@dataclass(frozen=True)
class Resource:
    """One statistics resource of the endpoint: its path, and the field that names a record's period."""

    name: str
    period_type: str
    period_field: str

    @property
    def path(self) -> str:
        return f"{BASE_PATH}/{self.name}"


RESOURCES = {
    resource.period_type: resource
    for resource in (
        Resource("hien-trang", "instant", "thoiDiem"),
        Resource("thong-ke-ngay", "day", "ngay"),
        Resource("thong-ke-thang", "month", "kyBaoCao"),
        Resource("thong-ke-quy", "quarter", "kyBaoCao"),
        Resource("thong-ke-nam", "year", "kyBaoCao"),
    )
}


def field_name(indicator_code: str) -> str:
    """The iGate name of an indicator's figure: hcc.ho_so_tiep_nhan → soHoSoTiepNhan, hcc.ty_le_dung_han →
    tyLeDungHan."""
    words = indicator_code.split(".", 1)[-1].split("_")
    if words[:2] == ["ty", "le"]:
        return "tyLe" + "".join(word.capitalize() for word in words[2:])
    return "so" + "".join(word.capitalize() for word in words)


def period_text(period: Period, moment: datetime) -> str:
    """A period written as iGate writes it: 27/11/2026 10:05:00 (the state at a moment), 27/11/2026, 11/2026,
    Quý 4/2026, Năm 2026."""
    if period.type == "instant":
        return moment.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M:%S")
    start = period.start.astimezone(LOCAL_TZ)
    if period.type == "day":
        return start.strftime("%d/%m/%Y")
    if period.type == "month":
        return start.strftime("%m/%Y")
    if period.type == "quarter":
        return f"Quý {(start.month - 1) // 3 + 1}/{start.year}"
    return f"Năm {start.year}"


def feed_settings(base_url: str, token: str, period_type: str, indicator_codes: Iterable[str]) -> dict[str, Any]:
    """The settings of an http_pull feed that pulls one resource of this endpoint (see connectors/http_pull)."""
    resource = RESOURCES[period_type]
    period: dict[str, Any] = {"path": resource.period_field}
    if period_type in ("instant", "day"):
        period["format"] = "dd/mm/yyyy"
    return {
        "url": f"{base_url}{resource.path}",
        "auth": "bearer",
        "token": token,
        "paging": "page",
        "page_param": "page",
        "size_param": "size",
        "page_size": FEED_PAGE_SIZE,
        "since_param": "tuNgay",
        "cursor_path": "ngayCapNhat",
        "timeout_seconds": 30,
        "mapping": {
            "records": "data.items",
            "subject": "maDonVi",
            "period": period,
            "source_ref": "maBanGhi",
            "observations": [
                {"indicator": {"value": code}, "value": field_name(code)} for code in sorted(indicator_codes)
            ],
        },
    }


class _Store:
    """The endpoint's records per resource, each stamped when it last changed (strictly increasing stamps)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.records: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self.last_stamp: datetime | None = None

    def _stamp(self) -> datetime:
        stamp = self.clock().astimezone(LOCAL_TZ)
        if self.last_stamp is not None and stamp <= self.last_stamp:
            stamp = self.last_stamp + timedelta(microseconds=1)
        self.last_stamp = stamp
        return stamp

    def put(self, resource: Resource, records: Iterable[dict[str, Any]]) -> int:
        count = 0
        with self.lock:
            table = self.records.setdefault(resource.name, {})
            for record in records:
                # The state now has one record per unit (its latest figures); a statistic one per unit and period.
                period = "" if resource.period_type == "instant" else str(record[resource.period_field])
                key = (str(record["maDonVi"]), period)
                stamp = self._stamp()
                table[key] = {
                    **record,
                    "maBanGhi": f"{resource.name}:{key[0]}:{period or 'hien-tai'}",
                    "ngayCapNhat": stamp.isoformat(timespec="microseconds"),
                    "_stamp": stamp,
                }
                count += 1
        return count

    def changed_since(self, resource: Resource, since: datetime | None) -> list[dict[str, Any]]:
        with self.lock:
            rows = list(self.records.get(resource.name, {}).values())
        rows.sort(key=lambda row: row["_stamp"])
        if since is not None:
            rows = [row for row in rows if row["_stamp"] > since]
        return [{key: value for key, value in row.items() if key != "_stamp"} for row in rows]


class LgspEndpoint:
    """The simulated endpoint: start() serves it in a thread, publish() changes its records, stop() ends it."""

    def __init__(self, token: str, clock: Callable[[], datetime], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.store = _Store(clock)
        self.server = ThreadingHTTPServer((host, port), _handler_for(self))
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LgspEndpoint:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="cityops-demo-lgsp")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def publish(self, period_type: str, records: Iterable[dict[str, Any]]) -> int:
        """Add or change records of the resource for a period type; returns how many."""
        return self.store.put(RESOURCES[period_type], records)

    def answer(self, path: str, query: Mapping[str, list[str]], authorization: str) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of a GET."""
        if not hmac.compare_digest(authorization.encode(), f"Bearer {self.token}".encode()):
            return 401, _error("Unauthorized: thiếu hoặc sai mã truy cập (bearer token)")
        resource = next((item for item in RESOURCES.values() if item.path == path.rstrip("/")), None)
        if resource is None:
            return 404, _error(f"Không có tài nguyên {path[:100]}")
        try:
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("size", [str(DEFAULT_PAGE_SIZE)])[0])
        except ValueError:
            return 400, _error("page và size phải là số nguyên")
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return 400, _error(f"page ≥ 1 và 1 ≤ size ≤ {MAX_PAGE_SIZE}")
        since = None
        if query.get("tuNgay"):
            try:
                since = datetime.fromisoformat(query["tuNgay"][0])
            except ValueError:
                return 400, _error("tuNgay không phải là thời điểm (ISO 8601)")
            if since.tzinfo is None:
                since = since.replace(tzinfo=LOCAL_TZ)
        rows = self.store.changed_since(resource, since)
        items = rows[(page - 1) * size : page * size]
        more = page * size < len(rows)
        body = {"page": page, "size": size, "total": len(rows), "nextPage": page + 1 if more else None}
        return 200, {"status": "success", "message": "", "data": {"items": items, **body}}


def _error(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "data": None}


def _handler_for(endpoint: LgspEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "LGSP-demo/1.0"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, body = endpoint.answer(parts.path, parse_qs(parts.query), self.headers.get("Authorization", ""))
            content = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="lgsp"')
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the demo's console is for what the demo does

    return Handler
