"""Real local receivers for notification tests: an HTTP server that checks webhook signatures, an SMTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from cityops.settings import Settings

SECRET = "bí-mật-của-cổng-sms-2026"


@dataclass
class Post:
    """One webhook post as the receiver saw it."""

    delivery: str
    event: str
    timestamp: str
    signed: bool
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    """An HTTP endpoint answering each post with the next status of its script (then `then` forever)."""

    url: str = ""
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    then: int = 200
    secret: str = SECRET
    posts: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: Any, raw: bytes) -> tuple[int, dict[str, str]]:
        timestamp = headers.get("X-Cityops-Timestamp", "")
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(headers.get("X-Cityops-Signature", ""), f"sha256={expected}")
        with self.lock:
            status, extra = self.script.pop(0) if self.script else (self.then, {})
            self.posts.append(
                Post(
                    headers.get("X-Cityops-Delivery", ""),
                    headers.get("X-Cityops-Event", ""),
                    timestamp,
                    signed,
                    json.loads(raw),
                    status,
                )
            )
        return (status if signed else 401), extra

    def sent(self) -> list[Post]:
        with self.lock:
            return [post for post in self.posts if 200 <= post.status < 300 and post.signed]


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    """Serve the receiver on 127.0.0.1 (a free port) in a thread for the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, extra = receiver.answer(self.headers, raw)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """What a local SMTP server received."""

    port: int = 0
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [message for rcpt, message in self.messages if address in rcpt]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for the block."""
    mailbox = Mailbox(port=_free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def with_smtp(settings: Settings, mailbox: Mailbox | None) -> Settings:
    """The test settings, sending e-mail to the mailbox (or configured without SMTP)."""
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1" if mailbox else "",
            "smtp_port": mailbox.port if mailbox else 25,
            "public_url": "https://ioc.nghean.gov.vn/",
            "smtp_sender": "ioc@nghean.gov.vn",
        }
    )
