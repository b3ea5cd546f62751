"""Server-sent events: `GET /live/events?topics=values,alerts,incidents,reports` (docs/live.md).

Each message is `event: <topic>` + `data: <json>`; a comment `: ping` every PING_SECONDS keeps proxies and the
browser sure the stream is alive; `retry:` tells the browser how soon to come back. A `Last-Event-ID` header is
accepted and ignored: nothing is replayed (a page re-reads what it shows when it reconnects). The stream ends when
the client goes, when it falls too far behind (the bus drops it) or when the server stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from cityops.accounts.roles import Principal
from cityops.live import overview
from cityops.live.bus import TOPICS, Bus, bus_for, close_all
from cityops.web.deps import parts, require
from cityops.web.pages import render, require_page
from cityops.web.problems import Problem

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
PING_SECONDS = 15.0
RETRY_MS = 2000


def bus_of(request: Request) -> Bus:
    """The bus of the app's database."""
    return bus_for(parts(request).db.engine.url)


def parse_topics(raw: str | None) -> list[str]:
    """The asked topics (all when none is given), in the contract's order; a problem for an unknown one."""
    if not raw or not raw.strip():
        return list(TOPICS)
    asked = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [topic for topic in asked if topic not in TOPICS]
    if unknown:
        raise Problem(422, "validation_failed", reason=f"topics: {', '.join(unknown)[:80]} ∉ {', '.join(TOPICS)}")
    return [topic for topic in TOPICS if topic in asked]


async def stream(bus: Bus, topics: list[str], ping_seconds: float = PING_SECONDS) -> AsyncIterator[bytes]:
    """The event stream of one client: subscribed before the first bytes go out, so nothing after them is missed."""
    async with bus.subscribe(topics) as subscription:
        yield f"retry: {RETRY_MS}\n: live {','.join(topics)}\n\n".encode()
        messages = aiter(subscription)
        while True:
            try:
                message = await asyncio.wait_for(anext(messages), timeout=ping_seconds)
            except TimeoutError:
                yield b": ping\n\n"
                continue
            except StopAsyncIteration:
                return
            yield message.frame


@router.get("/live/events")
async def live_events(
    request: Request,
    topics: str | None = Query(default=None, max_length=200),
    _principal: Principal = Depends(require("read_data")),
) -> StreamingResponse:
    """Server-sent events of the asked topics for a logged-in user (or key) who may read data."""
    chosen = parse_topics(topics)
    _hook_server_exit()
    return StreamingResponse(
        stream(bus_of(request), chosen),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"},
    )


_hooked = False


def _hook_server_exit() -> None:
    """End the open streams when uvicorn is asked to stop (Ctrl+C, SIGTERM): it waits for open responses before
    it stops, and an event stream never ends by itself."""
    global _hooked
    if _hooked:
        return
    _hooked = True
    try:
        from uvicorn.server import Server
    except ImportError:  # pragma: no cover - served by another server
        return
    original = Server.handle_exit

    def handle_exit(self: Any, sig: int, frame: Any) -> None:
        close_all()
        original(self, sig, frame)

    Server.handle_exit = handle_exit  # type: ignore[method-assign]


@router.get("/partials/overview")
async def overview_partial(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The overview's cards, re-read by the home page when live.js hears a change (or every minute)."""
    app_parts = parts(request)

    def read() -> overview.Overview:
        with app_parts.db.reading() as session:
            return overview.build(session, principal, app_parts.clock())

    return render(request, "overview_cards.html", {"overview": await run_in_threadpool(read)})
