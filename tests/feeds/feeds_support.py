"""What the feed-management tests share: an agency's REST endpoint on 127.0.0.1 that wants a bearer token, the
http_pull settings that read it, and a logged-in client ready to change things (CSRF header included)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi.testclient import TestClient

from conftest import csrf_header, login

VISITS = "yte.luot_kham_ngoai_tru"  # outpatient visits, a day figure owned by Sở Y tế
BEDS = "yte.giuong_benh"
TOKEN = "tok-7f3a9c-secret-value"  # looked for everywhere it must not appear
NEW_TOKEN = "tok-2c81d0-replaced-value"


@dataclass
class AgencyEndpoint:
    """A real HTTP server playing an agency's REST API: JSON records for the right bearer token, 401 otherwise."""

    token: str
    records: list[dict[str, Any]] = field(default_factory=list)
    seen_tokens: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def agency_endpoint(token: str, records: list[dict[str, Any]]) -> Iterator[AgencyEndpoint]:
    """Serve the records on 127.0.0.1 until the block ends."""
    endpoint = AgencyEndpoint(token, records)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            endpoint.seen_tokens.append(given)
            status, body = (200, {"data": endpoint.records}) if given == endpoint.token else (401, {"error": "auth"})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="agency-endpoint", daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/api/luot-kham"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def pull_settings(url: str, token: str | None = TOKEN) -> dict[str, Any]:
    """http_pull settings reading {"data": [{"don_vi", "ngay", "so_luot"}]} with a bearer token."""
    settings: dict[str, Any] = {
        "url": url,
        "auth": "bearer",
        "mapping": {
            "records": "data",
            "subject": "don_vi",
            "period": "ngay",
            "observations": [{"indicator": {"value": VISITS}, "value": "so_luot"}],
        },
    }
    if token is not None:
        settings["token"] = token
    return settings


def signed_in(client: TestClient, app: Any, username: str) -> dict[str, str]:
    """Log a persona in; the CSRF header its page scripts would send with a change."""
    login(client, username)
    return csrf_header(client, app)
