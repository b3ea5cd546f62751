"""Notifications API: my notifications and unread count, marking read, my preferences; webhooks and the outbox.

Everyone who receives notifications (`receive_notifications`) reads and marks their own; another user's answers
404 as if it did not exist. Administrators (`manage_notifications`) manage webhooks (the secret is write-only)
and see the deliveries, replaying dead ones.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.i18n import translate
from cityops.notifications import service
from cityops.notifications.schemas import (
    DeliveryList,
    DeliveryOut,
    Marked,
    NotificationList,
    NotificationOut,
    PreferencesIn,
    PreferencesOut,
    UnreadCount,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)
from cityops.web.deps import client_ip, language, parts, require
from cityops.web.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["notifications"])
NOT_FOUND = {"notification_not_found": 404, "webhook_not_found": 404, "delivery_not_found": 404}
WEBHOOK_CODES = frozenset(
    {"webhook_name_empty", "webhook_bad_url", "webhook_bad_secret", "webhook_secret_missing", "unknown_kind"}
)
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in"},
    403: {"description": "The role may not do this, or no CSRF token"},
}


def problem_of(exc: service.NotificationError, *, webhook: bool = False) -> Problem:
    """The API problem for a refused request: 404 for what the caller cannot see, 409, else 422 (nothing stored)."""
    if exc.code in NOT_FOUND:
        return Problem(404, exc.code, id=str(exc.params.get("id", "")))
    if exc.code == "delivery_not_dead":
        return Problem(409, exc.code, id=str(exc.params.get("id", "")), extra={"status": exc.params.get("status")})
    code = "webhook_invalid" if webhook and exc.code in WEBHOOK_CODES else "notification_invalid"
    return Problem(422, code, reason_vi=exc.message_vi, reason_en=exc.message_en, extra={"reason": exc.code})


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:  # an API key has no notifications of its own
        raise Problem(403, "forbidden")
    return principal.user_id


# --- my notifications -------------------------------------------------------------------------------------


@router.get("/notifications", response_model=NotificationList, responses=RESPONSES, summary="Thông báo của tôi")
async def my_notifications(
    request: Request,
    principal: Principal = Depends(require("receive_notifications")),
    unread: bool = Query(default=False, description="Only the unread ones"),
    limit: int = Query(default=50, ge=1, le=service.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    """The caller's notifications, newest first; `unread=true` for the unread ones only."""
    user_id, lang = _user_id(principal), language(request)

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            rows, total = service.my_notifications(session, user_id, unread_only=unread, limit=limit, offset=offset)
            return {
                "items": [service.notification_out(row, lang) for row in rows],
                "total": total,
                "unread": service.unread_count(session, user_id),
                "limit": limit,
                "offset": offset,
            }

    return await run_in_threadpool(run)


@router.get("/notifications/unread-count", response_model=UnreadCount, responses=RESPONSES, summary="Số chưa đọc")
async def unread_count(request: Request, principal: Principal = Depends(require("receive_notifications"))) -> Any:
    """How many of the caller's notifications are unread."""
    user_id = _user_id(principal)

    def run() -> dict[str, int]:
        with parts(request).db.reading() as session:
            return {"unread": service.unread_count(session, user_id)}

    return await run_in_threadpool(run)


@router.post("/notifications/read-all", response_model=Marked, responses=RESPONSES, summary="Đánh dấu tất cả đã đọc")
async def read_all(request: Request, principal: Principal = Depends(require("receive_notifications"))) -> Any:
    """Mark every unread notification of the caller read."""
    user_id, app_parts = _user_id(principal), parts(request)

    def run() -> dict[str, int]:
        with app_parts.db.writing() as session:
            return {"marked": service.mark_all_read(session, user_id, app_parts.clock())}

    return await run_in_threadpool(run)


@router.post(
    "/notifications/test",
    response_model=UnreadCount,
    responses=RESPONSES,
    summary="Gửi thông báo thử / Send a test notification",
)
async def send_test(request: Request, principal: Principal = Depends(require("receive_notifications"))) -> Any:
    """Send the caller a test notification: in the app, by e-mail to their address, and to every webhook."""
    user_id, app_parts = _user_id(principal), parts(request)

    def run() -> dict[str, int]:
        with app_parts.db.writing() as session:
            service.send_test(session, user_id, app_parts.clock())
            return {"unread": service.unread_count(session, user_id)}

    return await run_in_threadpool(run)


@router.get(
    "/notifications/preferences", response_model=PreferencesOut, responses=RESPONSES, summary="Tùy chọn nhận tin"
)
async def get_preferences(request: Request, principal: Principal = Depends(require("receive_notifications"))) -> Any:
    """The caller's e-mail address and, per kind, whether it comes in the app and by e-mail."""
    user_id, lang = _user_id(principal), language(request)

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            return preferences_out(service.preferences_of(session, user_id), lang)

    return await run_in_threadpool(run)


def preferences_out(chosen: dict[str, Any], lang: str) -> dict[str, Any]:
    """The preferences with each kind's name in the reader's language."""
    return {
        "email": chosen["email"],
        "kinds": [{**item, "name": translate(f"notifications.kind.{item['kind']}", lang)} for item in chosen["kinds"]],
    }


@router.put(
    "/notifications/preferences",
    response_model=PreferencesOut,
    responses={**RESPONSES, 422: {"description": "A wrong address, kind or channel (notification_invalid)"}},
    summary="Đổi tùy chọn nhận tin",
)
async def put_preferences(
    request: Request, body: PreferencesIn, principal: Principal = Depends(require("receive_notifications"))
) -> Any:
    """Change the address (when sent; "" for none) and the channels of the kinds listed; nothing stored on error."""
    user_id, app_parts, lang = _user_id(principal), parts(request), language(request)
    choices = {
        (item.kind, channel): value
        for item in body.kinds
        for channel, value in (("in_app", item.in_app), ("email", item.email))
        if value is not None
    }

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                chosen = service.set_preferences(
                    session,
                    Actor.of(principal, client_ip(request)),
                    app_parts.clock(),
                    user_id,
                    email=body.email,
                    choices=choices,
                )
        except service.NotificationError as exc:
            raise problem_of(exc) from exc
        return preferences_out(chosen, lang)

    return await run_in_threadpool(run)


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationOut,
    responses={**RESPONSES, 404: {"description": "No such notification of the caller (notification_not_found)"}},
    summary="Đánh dấu đã đọc",
)
async def read_one(
    request: Request, notification_id: int, principal: Principal = Depends(require("receive_notifications"))
) -> Any:
    """Mark one of the caller's notifications read."""
    user_id, app_parts, lang = _user_id(principal), parts(request), language(request)

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                row = service.mark_read(session, user_id, notification_id, app_parts.clock())
                return service.notification_out(row, lang)
        except service.NotificationError as exc:
            raise problem_of(exc) from exc

    return await run_in_threadpool(run)


# --- webhooks ---------------------------------------------------------------------------------------------

ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RESPONSES,
    404: {"description": "No such webhook (webhook_not_found)"},
    422: {"description": "A wrong name, URL, secret or kind (webhook_invalid): nothing stored"},
}


@router.get("/webhooks", response_model=WebhookList, responses=RESPONSES, summary="Webhook")
async def list_webhooks(request: Request, principal: Principal = Depends(require("manage_notifications"))) -> Any:
    """Every webhook; secrets show only as set."""

    def run() -> dict[str, Any]:
        with parts(request).db.reading() as session:
            return {"items": [service.webhook_out(hook) for hook in service.list_webhooks(session)]}

    return await run_in_threadpool(run)


@router.post("/webhooks", status_code=201, response_model=WebhookOut, responses=ADMIN_RESPONSES, summary="Thêm")
async def create_webhook(
    request: Request, body: WebhookIn, principal: Principal = Depends(require("manage_notifications"))
) -> Any:
    """Add a webhook (audited). Posts are signed with its secret; `kinds` empty means every kind."""
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                hook = service.create_webhook(
                    session,
                    Actor.of(principal, client_ip(request)),
                    app_parts.clock(),
                    app_parts.settings.resolved_secret_key,
                    name=body.name,
                    url=body.url,
                    secret=body.secret,
                    kinds=body.kinds,
                    enabled=body.enabled,
                )
                return service.webhook_out(hook)
        except service.NotificationError as exc:
            raise problem_of(exc, webhook=True) from exc

    return await run_in_threadpool(run)


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, responses=ADMIN_RESPONSES, summary="Một webhook")
async def get_webhook(
    request: Request, webhook_id: int, principal: Principal = Depends(require("manage_notifications"))
) -> Any:
    """One webhook."""

    def run() -> dict[str, Any]:
        try:
            with parts(request).db.reading() as session:
                return service.webhook_out(service.get_webhook(session, webhook_id))
        except service.NotificationError as exc:
            raise problem_of(exc, webhook=True) from exc

    return await run_in_threadpool(run)


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut, responses=ADMIN_RESPONSES, summary="Sửa")
async def patch_webhook(
    request: Request,
    webhook_id: int,
    body: WebhookPatch,
    principal: Principal = Depends(require("manage_notifications")),
) -> Any:
    """Change the fields sent (audited); an empty secret keeps the stored one."""
    app_parts = parts(request)
    changes = {name: value for name, value in body.model_dump(exclude_unset=True).items() if value is not None}

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                hook = service.update_webhook(
                    session,
                    Actor.of(principal, client_ip(request)),
                    app_parts.clock(),
                    app_parts.settings.resolved_secret_key,
                    webhook_id,
                    changes,
                )
                return service.webhook_out(hook)
        except service.NotificationError as exc:
            raise problem_of(exc, webhook=True) from exc

    return await run_in_threadpool(run)


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=ADMIN_RESPONSES, summary="Xóa")
async def delete_webhook(
    request: Request, webhook_id: int, principal: Principal = Depends(require("manage_notifications"))
) -> None:
    """Remove a webhook and its waiting posts (audited)."""
    app_parts = parts(request)

    def run() -> None:
        try:
            with app_parts.db.writing() as session:
                service.delete_webhook(session, Actor.of(principal, client_ip(request)), app_parts.clock(), webhook_id)
        except service.NotificationError as exc:
            raise problem_of(exc, webhook=True) from exc

    await run_in_threadpool(run)


# --- deliveries -------------------------------------------------------------------------------------------


@router.get("/deliveries", response_model=DeliveryList, responses=RESPONSES, summary="Hộp thư đi / Outbox")
async def list_deliveries(
    request: Request,
    principal: Principal = Depends(require("manage_notifications")),
    status: str = Query(default="", max_length=20, description="pending, sent or dead"),
    channel: str = Query(default="", max_length=20, description="email or webhook"),
    limit: int = Query(default=50, ge=1, le=service.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> Any:
    """The e-mails and webhook posts, newest first; `status=dead` is the dead-letter list."""
    lang = language(request)

    def run() -> dict[str, Any]:
        try:
            with parts(request).db.reading() as session:
                rows, total = service.list_deliveries(
                    session, status=status, channel=channel, limit=limit, offset=offset
                )
                return {
                    "items": [service.delivery_out(row, lang) for row in rows],
                    "total": total,
                    "limit": limit,
                    "offset": offset,
                }
        except service.NotificationError as exc:
            raise problem_of(exc) from exc

    return await run_in_threadpool(run)


@router.post(
    "/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    responses={
        **RESPONSES,
        404: {"description": "No such delivery (delivery_not_found)"},
        409: {"description": "The delivery is not dead (delivery_not_dead)"},
    },
    summary="Gửi lại / Replay",
)
async def replay(
    request: Request, delivery_id: int, principal: Principal = Depends(require("manage_notifications"))
) -> Any:
    """Make a dead delivery pending again with its attempts reset (audited); the worker sends it."""
    app_parts, lang = parts(request), language(request)

    def run() -> dict[str, Any]:
        try:
            with app_parts.db.writing() as session:
                row = service.replay(session, Actor.of(principal, client_ip(request)), app_parts.clock(), delivery_id)
                return service.delivery_out(row, lang)
        except service.NotificationError as exc:
            raise problem_of(exc) from exc

    return await run_in_threadpool(run)
