"""The application factory: routes, problem answers, size limits, language and CSRF cookie."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityops import __version__, outbound
from cityops.clock import Clock, system_clock
from cityops.db.engine import Database
from cityops.i18n import LANGUAGES, translate
from cityops.settings import Settings
from cityops.web.admission import Admission
from cityops.web.deps import AppParts, language
from cityops.web.observability import Metrics, RequestContext
from cityops.web.observability import router as observability_router
from cityops.web.pages import LoginRequired, PageForbidden
from cityops.web.problems import PROBLEM_CODES, Problem
from cityops.web.security import CSRF_COOKIE, LANGUAGE_COOKIE, new_csrf_seed

WEB_DIR = Path(__file__).parent
log = logging.getLogger("cityops.web")

STATUS_CODES = {
    400: "invalid_body",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class BodySizeLimit:
    """Refuse bodies over the limit with 413, whether announced by Content-Length or streamed. Paths in `wider`
    have a limit of their own (the citizen's form carries up to five photos)."""

    def __init__(self, app: ASGIApp, limit: int, wider: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        self.wider = wider or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Limited(self.app, self.wider.get(scope["path"], self.default))(scope, receive, send)


class _Limited:
    """One request's body limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = self.limit + 1
                if announced > self.limit:
                    request = Request(scope)
                    response = Problem(413, "body_too_large", limit=self.limit).response(
                        _query_language(request), request.url.path
                    )
                    await response(scope, receive, send)
                    return
        received = 0
        over = started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise Problem(413, "body_too_large", limit=self.limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except Exception:
            # The Problem comes back wrapped in an ExceptionGroup when read below the HTTP middleware.
            if not over or started:
                raise
            await Problem(413, "body_too_large", limit=self.limit).response()(scope, receive, send)


def csp(settings: Settings) -> str:
    """The Content-Security-Policy of every answer: scripts, styles, fonts and data from the app itself only (no inline
    script anywhere); inline styles allowed (Leaflet, ECharts and htmx set them); images also from the optional tile
    server; no plug-ins, no framing, forms posted to the app only."""
    images = "'self' data: blob:"
    if settings.map_tile_url:
        parts = urlsplit(settings.map_tile_url.replace("{", "").replace("}", ""))
        if parts.scheme in ("http", "https") and parts.netloc:
            images += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; font-src 'self'; connect-src 'self'; media-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def _query_language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else "vi"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/openapi.json"))


def _nul_refusal(request: Request) -> Response | None:
    """A problem for an API path or query parameter holding NUL, which no code has and PostgreSQL cannot compare."""
    if not _is_api(request):
        return None
    if "\x00" in request.scope["path"]:
        return Problem(404, "not_found").response(language(request), request.url.path)
    if any("\x00" in name + value for name, value in request.query_params.multi_items()):
        return Problem(422, "validation_failed", reason="NUL (U+0000)").response(language(request), request.url.path)
    return None


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    database: Database | None = None,
    worker: bool = False,
) -> FastAPI:
    """Build the web application on the given settings, clock and database.

    With `worker`, the app runs the scheduled work (cityops.worker.Worker) while it serves: `cityops serve` and
    `cityops demo` ask for it when CITYOPS_EMBEDDED_WORKER is on; apps built for tests do not.
    """
    from cityops.accounts import api as accounts_api
    from cityops.accounts import pages as accounts_pages
    from cityops.alerts import api as alerts_api
    from cityops.alerts import pages as alerts_pages
    from cityops.boards import pages as boards_pages
    from cityops.cameras import api as cameras_api
    from cityops.cameras import pages as cameras_pages
    from cityops.catalog import api as catalog_api
    from cityops.catalog import pages as catalog_pages
    from cityops.connectors.spreadsheet import api as spreadsheet_api
    from cityops.connectors.spreadsheet import pages as spreadsheet_pages
    from cityops.feedback import api as feedback_api
    from cityops.feedback import open311 as feedback_open311
    from cityops.feedback import pages as feedback_pages
    from cityops.feedback import stats_pages as feedback_stats_pages
    from cityops.feeds import api as feeds_api
    from cityops.feeds import pages as feeds_pages
    from cityops.geo import api as geo_api
    from cityops.geo import pages as geo_pages
    from cityops.health import api as health_api
    from cityops.health import pages as health_pages
    from cityops.incidents import api as incidents_api
    from cityops.incidents import pages as incidents_pages
    from cityops.insights import api as insights_api
    from cityops.insights import pages as insights_pages
    from cityops.live import api as live_api
    from cityops.notifications import api as notifications_api
    from cityops.notifications import pages as notifications_pages
    from cityops.observations import api as observations_api
    from cityops.reports import api as reports_api
    from cityops.reports import open_data as reports_open_data
    from cityops.reports import pages as reports_pages
    from cityops.soc import api as soc_api
    from cityops.soc import pages as soc_pages
    from cityops.wall import pages as wall_pages
    from cityops.web import pages as shell_pages

    settings = settings or Settings()
    outbound.configure(settings.outbound_allow)
    database = database or Database(settings.resolved_database_url)
    templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    app = FastAPI(
        title="cityops — Trung tâm Giám sát, Điều hành Thông minh",
        version=__version__,
        description="Data-sharing and read API of the provincial Intelligent Operations Center. "
        "API chia sẻ và khai thác dữ liệu của Trung tâm Giám sát, Điều hành Thông minh tỉnh.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=_embedded_worker(settings, database, clock) if worker else None,
    )
    app.state.parts = AppParts(settings=settings, db=database, clock=clock, templates=templates)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    for router in (
        observations_api.router,
        catalog_api.router,
        geo_api.router,
        feeds_api.router,
        spreadsheet_api.router,
        health_api.router,
        alerts_api.router,
        incidents_api.router,
        notifications_api.router,
        feedback_api.router,
        cameras_api.router,
        feedback_open311.router,
        accounts_api.router,
        accounts_pages.router,
        catalog_pages.router,
        feeds_pages.router,
        spreadsheet_pages.router,
        health_pages.router,
        alerts_pages.router,
        incidents_pages.router,
        notifications_pages.router,
        feedback_pages.router,
        feedback_stats_pages.router,
        cameras_pages.router,
        live_api.router,
        observability_router,
        boards_pages.router,
        wall_pages.router,
        reports_api.router,
        reports_pages.router,
        reports_open_data.router,
        soc_api.router,
        soc_pages.router,
        insights_api.router,
        insights_pages.router,
        geo_pages.router,
        shell_pages.router,
    ):
        app.include_router(router)
    _install_handlers(app)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/docs/problems", include_in_schema=False)
    async def problem_types(request: Request) -> HTMLResponse:
        # Where a problem's "type" points: every code with its meaning, in the reader's language.
        lang = language(request)
        items = "".join(
            f"<dt id='{code}'><code>{code}</code></dt><dd>{translate(f'problem.{code}.title', lang)}</dd>"
            for code in PROBLEM_CODES
        )
        return HTMLResponse(
            f"<!doctype html><html lang='{lang}'><meta charset='utf-8'><title>cityops — problems</title>"
            f"<link rel='stylesheet' href='/static/app.css'><main><h1>{translate('problems.title', lang)}</h1>"
            f"<dl>{items}</dl><p><a href='/api/docs'>API</a></p></main></html>"
        )

    @app.get("/api/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        # Swagger UI from the app's own static files, started by a script file: nothing from the internet, no inline
        # script (the Content-Security-Policy allows none).
        return HTMLResponse(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>cityops API</title>'
            '<link rel="icon" href="/static/favicon.svg"><link rel="stylesheet" href="/static/vendor/swagger-ui.css">'
            '</head><body><div id="swagger-ui"></div><script src="/static/vendor/swagger-ui-bundle.js"></script>'
            '<script src="/static/swagger-init.js"></script></body></html>'
        )

    content_security_policy = csp(settings)

    @app.middleware("http")
    async def per_request(request: Request, call_next: Any) -> Response:
        request.state.csrf_seed = request.cookies.get(CSRF_COOKIE) or new_csrf_seed()
        response: Response = _nul_refusal(request) or await call_next(request)
        chosen = request.query_params.get("lang")
        if chosen in LANGUAGES and request.cookies.get(LANGUAGE_COOKIE) != chosen:
            response.set_cookie(
                LANGUAGE_COOKIE, chosen, max_age=365 * 86400, samesite="lax", secure=settings.cookie_secure
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", content_security_policy)
        return response

    # The public report form: five photos at their largest, the text and the multipart framing.
    report_limit = max(settings.max_body_bytes, 5 * settings.max_photo_bytes + 1024 * 1024)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes, wider={"/report": report_limit})
    metrics = app.state.metrics = Metrics(database, clock)
    app.add_middleware(Admission, limit=settings.max_concurrent_requests, on_refused=metrics.refused.inc)
    app.add_middleware(RequestContext, metrics=metrics)  # outermost: the request id and the timing cover it all
    return app


def _embedded_worker(
    settings: Settings, database: Database, clock: Clock
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan that runs the worker beside the web app: started with it, stopped (leases given up) with it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from cityops.worker import Worker

        stop = asyncio.Event()
        running = Worker(database, clock, settings.resolved_secret_key, settings=settings)
        task = asyncio.create_task(running.run(stop, settings.worker_tick_seconds), name="cityops-worker")
        try:
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, timeout=30)
            except TimeoutError:  # a round stuck on a slow source: the process is ending anyway
                log.warning("the embedded worker did not stop within 30 s")

    return lifespan


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI description, with the Bearer key scheme agency systems use, so "Try it out" works."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "agencyKey": {"type": "http", "scheme": "bearer", "description": "cok_… key issued by the IOC"}
        }
        schema["security"] = [{"agencyKey": []}, {}]
        app.openapi_schema = schema
    return app.openapi_schema


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        return exc.response(language(request), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": ""}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return Problem(
            422,
            "validation_failed",
            reason=f"{where}: {first.get('msg', '')}"[:200],
            extra={
                "errors": [
                    {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
                    for error in errors[:20]
                ]
            },
        ).response(language(request), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        code = STATUS_CODES.get(exc.status_code, "invalid_body")
        params: dict[str, Any] = {"method": request.method} if code == "method_not_allowed" else {}
        if code == "body_too_large":
            params["limit"] = app.state.parts.settings.max_body_bytes
        if code == "invalid_body":
            params["reason"] = str(exc.detail)[:200]
        problem = Problem(exc.status_code, code, headers=dict(exc.headers or {}), **params)
        if _is_api(request):
            return problem.response(language(request), request.url.path)
        lang = language(request)
        return HTMLResponse(
            f"<!doctype html><html lang='{lang}'><meta charset='utf-8'><title>{exc.status_code}"
            f"</title><p>{problem.body(lang)['detail']}</p><p><a href='/'>"
            f"{translate('nav.home', lang)}</a></p></html>",
            status_code=exc.status_code,
        )

    @app.exception_handler(LoginRequired)
    async def on_login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):
            # A partial refresh after the session ended: send the whole page to log-in, not into the table.
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(PageForbidden)
    async def on_page_forbidden(request: Request, _exc: PageForbidden) -> Response:
        lang = language(request)
        return HTMLResponse(
            f"<!doctype html><html lang='{lang}'><meta charset='utf-8'><title>403</title>"
            f"<p>{translate('error.forbidden_page', lang)}</p></html>",
            status_code=403,
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        reference = secrets.token_hex(6)
        log.exception("unexpected error %s on %s %s", reference, request.method, request.url.path)
        return Problem(500, "internal_error", request_id=reference).response(language(request), request.url.path)


def app_from_environment() -> FastAPI:
    """The app built from the environment's settings: what each process of `cityops serve --workers N` runs (uvicorn
    imports it by name in every process). The schema was made ready by the parent before the processes started."""
    from cityops.web.observability import configure_logging

    settings = Settings()
    configure_logging(settings.log_format)
    return create_app(settings, worker=settings.embedded_worker)
