"""Feeds API: list, create, change, pause and resume feeds; their run log; run a scheduled pull now.

Everyone logged in may read the feeds they may see (officers: their agency subtree's; province-wide roles: all);
admins and operators (manage_feeds) change them. A feed another agency owns answers 404 to an officer, as if it
did not exist. Secrets in settings are encrypted at rest and never in an answer: a set one shows as the mask.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from cityops.accounts.roles import Principal
from cityops.accounts.service import AccountError, Actor
from cityops.connectors.runner import run_feed
from cityops.feeds import service
from cityops.feeds.schemas import ERROR_FIELDS, FeedIn, FeedList, FeedOut, FeedPatch, RunList, RunOut
from cityops.web.deps import client_ip, language, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["feeds"])
MAX_RUNS = 500
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in, or no valid key"},
    403: {"description": "The role may not change feeds, or no CSRF token"},
    404: {"description": "No such feed that the caller may see (feed_not_found)"},
}


def problem_of(exc: service.FeedError | AccountError, agency: str = "") -> Problem:
    """The API problem for a refused feed: 404 unknown, 409 taken code, 422 otherwise (nothing stored)."""
    if isinstance(exc, AccountError):
        return Problem(422, "feed_unknown_agency", agency=agency[:64], extra={"field": "agency"})
    if exc.code == "unknown_feed":
        return Problem(404, "feed_not_found", feed=str(exc.params.get("feed", "")))
    if exc.code == "exists":
        return Problem(409, "feed_exists", feed=str(exc.params.get("feed", "")), extra={"field": "code"})
    return Problem(
        422,
        "feed_invalid",
        reason_vi=exc.message_vi,
        reason_en=exc.message_en,
        extra={"reason": exc.code, "field": ERROR_FIELDS.get(exc.code, "")},
    )


def _listing(request: Request, principal: Principal) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        feeds = service.visible_feeds(session, principal)
        last = service.last_runs(session, [feed.id for feed in feeds])
        return {"items": [service.feed_out(session, feed, lang, last.get(feed.id)) for feed in feeds]}


def _one(request: Request, principal: Principal, code: str) -> dict[str, Any]:
    with parts(request).db.reading() as session:
        feed = service.visible_feed(session, principal, code)
        last = service.last_runs(session, [feed.id]).get(feed.id)
        return service.feed_out(session, feed, language(request), last)


@router.get("/feeds", response_model=FeedList, summary="Feeds / Nguồn dữ liệu")
async def list_feeds(request: Request, principal: Principal = Depends(require("read_data"))) -> dict[str, Any]:
    """The feeds the caller may see, by code, each with its schedule, coverage, indicators and last run."""
    return await run_in_threadpool(_listing, request, principal)


@router.get("/feeds/{code}", response_model=FeedOut, responses=RESPONSES, summary="One feed / Một nguồn dữ liệu")
async def get_feed(request: Request, code: str, principal: Principal = Depends(require("read_data"))) -> dict[str, Any]:
    """One feed; its secrets show only as set (the mask) or not set (null)."""

    def run() -> dict[str, Any]:
        try:
            return _one(request, principal, code)
        except service.FeedError as exc:
            raise problem_of(exc) from exc

    return await run_in_threadpool(run)


@router.post(
    "/feeds",
    status_code=201,
    response_model=FeedOut,
    responses={
        **RESPONSES,
        409: {"description": "A feed with this code exists (feed_exists)"},
        422: {"description": "A field or the kind's settings are not valid (feed_invalid): nothing stored"},
    },
    summary="Create a feed / Tạo nguồn dữ liệu",
)
async def create_feed(
    request: Request, body: FeedIn, principal: Principal = Depends(require("manage_feeds"))
) -> dict[str, Any]:
    """Create a feed (admins, operators). The kind's settings are checked by its schema; secrets are encrypted."""
    app_parts = parts(request)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                feed = service.create_feed(
                    session,
                    actor,
                    moment,
                    code=body.code,
                    agency_code=body.agency,
                    indicator_codes=body.indicators,
                    name=body.name,
                    kind=body.kind,
                    description=body.description,
                    settings=body.settings,
                    secret_key=app_parts.settings.resolved_secret_key,
                    cadence=body.cadence,
                    grace_minutes=body.grace_minutes,
                    coverage=body.coverage,
                    subject_codes=body.subjects,
                    poll_seconds=body.poll_seconds,
                    paused=body.paused,
                )
                code = feed.code
        except (service.FeedError, AccountError) as exc:
            raise problem_of(exc, body.agency) from exc
        return _one(request, principal, code)

    return await run_in_threadpool(run)


# The API's names for the service's fields.
PATCH_FIELDS = {"indicators": "indicator_codes", "subjects": "subject_codes"}


def _change(request: Request, principal: Principal, code: str, changes: dict[str, Any]) -> dict[str, Any]:
    app_parts = parts(request)
    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()
    try:
        with app_parts.db.writing() as session:
            service.visible_feed(session, principal, code)
            service.update_feed(
                session, actor, moment, code, changes, secret_key=app_parts.settings.resolved_secret_key
            )
    except service.FeedError as exc:
        raise problem_of(exc) from exc
    return _one(request, principal, code)


@router.patch(
    "/feeds/{code}",
    response_model=FeedOut,
    responses={**RESPONSES, 422: {"description": "A change is not valid (feed_invalid): nothing stored"}},
    summary="Change a feed / Sửa nguồn dữ liệu",
)
async def patch_feed(
    request: Request, code: str, body: FeedPatch, principal: Principal = Depends(require("manage_feeds"))
) -> dict[str, Any]:
    """Change the fields sent (admins, operators). In `settings`, a secret sent empty or as the mask keeps its
    stored value; settings sent replace the others. Agency and kind cannot change: create another feed."""
    fixed = sorted(body.model_extra or {})
    if fixed:
        raise problem_of(service.FeedError("not_updatable", field=fixed[0][:40]))
    changes = {PATCH_FIELDS.get(name, name): value for name, value in body.model_dump(exclude_unset=True).items()}
    return await run_in_threadpool(_change, request, principal, code, changes)


@router.post("/feeds/{code}/pause", response_model=FeedOut, responses=RESPONSES, summary="Pause / Tạm dừng")
async def pause_feed(
    request: Request, code: str, principal: Principal = Depends(require("manage_feeds"))
) -> dict[str, Any]:
    """Pause a feed: no scheduled pulls, and no lateness is claimed for it until it resumes."""
    return await run_in_threadpool(_change, request, principal, code, {"paused": True})


@router.post("/feeds/{code}/resume", response_model=FeedOut, responses=RESPONSES, summary="Resume / Tiếp tục")
async def resume_feed(
    request: Request, code: str, principal: Principal = Depends(require("manage_feeds"))
) -> dict[str, Any]:
    """Resume a paused feed."""
    return await run_in_threadpool(_change, request, principal, code, {"paused": False})


@router.get("/feeds/{code}/runs", response_model=RunList, responses=RESPONSES, summary="Run log / Nhật ký chạy")
async def feed_runs(
    request: Request,
    code: str,
    principal: Principal = Depends(require("read_data")),
    limit: int = Query(default=50, ge=1, le=MAX_RUNS),
) -> dict[str, Any]:
    """The feed's latest runs, newest first: when, what started it, how many items came, were kept and rejected,
    and for a failure its code, whether retrying can help, and the message in Vietnamese and English."""

    def run() -> dict[str, Any]:
        try:
            with parts(request).db.reading() as session:
                feed = service.visible_feed(session, principal, code)
                return {
                    "feed": feed.code,
                    "items": [service.run_out(r) for r in service.recent_runs(session, feed.id, limit)],
                }
        except service.FeedError as exc:
            raise problem_of(exc) from exc

    return await run_in_threadpool(run)


def run_now(request: Request, principal: Principal, code: str) -> dict[str, Any]:
    """Pull a scheduled feed now (retrying transient errors), store what came, log and audit the run."""
    app_parts = parts(request)
    secret_key = app_parts.settings.resolved_secret_key
    try:
        with app_parts.db.reading() as session:
            feed = service.visible_feed(session, principal, code)
            feed_id, kind = feed.id, feed.kind
    except service.FeedError as exc:
        raise problem_of(exc) from exc
    if not service.is_scheduled(kind):
        raise Problem(422, "feed_not_pullable", feed=code, kind=kind)
    try:
        # One attempt: the operator waits for the answer and sees the error at once (the schedule retries).
        result = run_feed(app_parts.db, feed_id, app_parts.clock, secret_key, trigger="manual", attempts=1)
    except service.FeedError as exc:  # deleted meanwhile
        raise problem_of(exc) from exc
    with app_parts.db.writing() as session:
        feed = service.get_feed(session, code)
        service.audit_manual_run(session, Actor.of(principal, client_ip(request)), app_parts.clock(), feed, result)
    return result


@router.post(
    "/feeds/{code}/run",
    response_model=RunOut,
    responses={**RESPONSES, 422: {"description": "The feed's kind is not pulled on a schedule (feed_not_pullable)"}},
    summary="Run a pull now / Chạy ngay",
)
async def run_feed_now(
    request: Request, code: str, principal: Principal = Depends(require("manage_feeds"))
) -> dict[str, Any]:
    """Run a scheduled feed's pull now (admins, operators) and answer the run as logged."""
    return await run_in_threadpool(run_now, request, principal, code)
