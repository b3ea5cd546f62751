"""What an operator's monitoring needs: liveness, readiness, Prometheus metrics, and JSON logs with request ids.

- `GET /healthz`: the process answers (liveness; no database, nothing about the installation).
- `GET /readyz`: the database answers and its schema is the one this code expects (readiness: 503 otherwise).
- `GET /metrics`: Prometheus text, only with `Authorization: Bearer <CITYOPS_METRICS_TOKEN>` (absent token: 404).
  Counters and histograms of this process (requests by route and status class, their latency, observations
  accepted and rejected, requests refused by admission) and gauges read from the database at each scrape (late
  feeds, deliveries waiting, alert rules due, open incidents overdue, live subscribers). With several processes
  each has its own counters: scrape each, or sum them in Prometheus.
- Every request gets a request id (`X-Request-ID`: the caller's when it is a short token, else a new one), sent back
  in the answer and written in each log line of that request. `configure_logging("json")` makes the log lines JSON
  objects (time, level, logger, message, request_id, and the exception when there is one).
"""

from __future__ import annotations

import contextvars
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityops import __version__
from cityops.db.engine import Database
from cityops.web.deps import parts
from cityops.web.problems import Problem

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("cityops_request_id", default="")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)


class Metrics:
    """One app's metrics, in a registry of its own (several apps in one process, as in the tests, stay apart)."""

    def __init__(self, database: Database, clock: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cityops_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "cityops_http_request_seconds",
            "Time to answer an HTTP request (to the end of its body)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.observations = Counter(
            "cityops_observations", "Observations received by ingest", ["outcome"], registry=self.registry
        )
        self.refused = Counter(
            "cityops_admission_refused", "Requests answered 503 because the process was full", registry=self.registry
        )
        self.registry.register(_DatabaseGauges(database, clock))


class _DatabaseGauges(Collector):
    """Gauges read from the database at each scrape: what piles up when something is wrong."""

    def __init__(self, database: Database, clock: Any) -> None:
        self.database, self.clock = database, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from cityops.alerts.models import AlertRule
        from cityops.feeds.models import LATE, FeedExpectation
        from cityops.incidents.models import OPEN_STATUSES, Incident
        from cityops.live.bus import bus_for
        from cityops.notifications.models import PENDING, Delivery

        now = self.clock()
        try:
            with self.database.reading() as session:
                late = session.scalar(
                    select(func.count(func.distinct(FeedExpectation.feed_id))).where(FeedExpectation.state == LATE)
                )
                waiting = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == PENDING))
                due = session.scalar(
                    select(func.count())
                    .select_from(AlertRule)
                    .where(AlertRule.enabled.is_(True), AlertRule.due_at <= now)
                )
                overdue = session.scalar(
                    select(func.count())
                    .select_from(Incident)
                    .where(Incident.status.in_(OPEN_STATUSES), Incident.deadline_at < now)
                )
        except Exception:  # a scrape must answer even when the database does not: readiness tells that
            log.exception("metrics: the database gauges could not be read")
            return
        for name, help_text, value in (
            ("cityops_feeds_late", "Feeds with at least one period late now", late),
            ("cityops_deliveries_waiting", "Notification deliveries (e-mail, webhooks) waiting to be sent", waiting),
            ("cityops_alert_rules_due", "Alert rules due for evaluation and not yet evaluated", due),
            ("cityops_incidents_overdue", "Open incidents past their deadline", overdue),
            (
                "cityops_live_subscribers",
                "Open live pages (server-sent event streams) in this process",
                bus_for(self.database.engine.url).subscriber_count,
            ),
        ):
            yield GaugeMetricFamily(name, help_text, value=float(value or 0))


class RequestContext:
    """Outermost middleware: the request id, and each request counted and timed by its route's template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _GOOD_ID.match(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def identified_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, identified_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "other")
            if template != "/live/events":  # a stream lasts as long as the page: not a latency
                self.metrics.latency.labels(template).observe(time.perf_counter() - started)
            self.metrics.requests.labels(scope["method"], template, f"{status // 100}xx").inc()
            REQUEST_ID.reset(token)


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema is this code's."""
    from cityops.db.migrate import head_revision

    def check() -> tuple[bool, str]:
        try:
            with parts(request).db.reading() as session:
                revision = str(session.execute(text("SELECT version_num FROM alembic_version")).scalar() or "")
        except Exception as exc:
            return False, type(exc).__name__
        return revision == head_revision(), revision

    ready, detail = await run_in_threadpool(check)
    body = {"status": "ready" if ready else "not_ready", "schema": detail}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics, for the bearer of the metrics token."""
    token = parts(request).settings.metrics_token
    given = request.headers.get("authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Problem(404, "not_found")
    body = await run_in_threadpool(generate_latest, metrics_of(request).registry)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


# --- logs ------------------------------------------------------------------------------------------------------------


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    """Log lines as JSON objects (`json`) or plain text (`text`), each with its request id when there is one."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
