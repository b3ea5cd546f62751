"""Admission: bounded work in the web process, so that overload is answered at once instead of queued without end.

At most `limit` requests are inside the app at a time; one more is answered at once with `503 overloaded` and
`Retry-After`, which well-behaved clients (the connectors, the agencies' systems) honour. Server-sent-event streams
(long-lived, and nearly free while idle), cameras' live views (capped per camera) and static files are not
counted. Under three times its capacity the process thus keeps its memory bounded and everything it acknowledged
stored (bench/load.py).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cityops.web.problems import Problem

EXEMPT_PREFIXES = ("/live/events", "/static/")
RETRY_AFTER_SECONDS = 1


def _is_live_video(path: str) -> bool:
    """A camera's live view: a long stream, capped per camera by the cameras' own viewer limit."""
    return path.startswith("/cameras/") and path.endswith("/live")


class Admission:
    """Let at most `limit` requests in at once; answer the others 503 with Retry-After. One event loop: no lock."""

    def __init__(self, app: ASGIApp, limit: int, on_refused: Callable[[], None] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.on_refused = on_refused
        self.inside = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(EXEMPT_PREFIXES) or _is_live_video(path):
            await self.app(scope, receive, send)
            return
        if self.inside >= self.limit:
            self.refused += 1
            if self.on_refused is not None:
                self.on_refused()
            request = Request(scope)
            language = "en" if request.query_params.get("lang") == "en" else "vi"
            problem = Problem(503, "overloaded", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, limit=self.limit)
            await problem.response(language, request.url.path)(scope, receive, send)
            return
        self.inside += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inside -= 1
