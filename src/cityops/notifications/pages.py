"""Notification pages: my notifications, the nav badge, my preferences; webhooks and the outbox for administrators.

Plain forms with a CSRF token (no JavaScript needed); the badge is an htmx partial. A form without its token
changes nothing and answers 403 with the page and a message; a wrong entry answers 422 with the form as typed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.i18n import translate
from cityops.notifications import service
from cityops.notifications.models import DEAD
from cityops.web.deps import client_ip, language, parts
from cityops.web.pages import form_csrf_ok, render, require_page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 30
ALL_KINDS = (*service.KINDS, service.TEST_KIND)


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value.replace("\x00", "").strip()[:limit] if isinstance(value, str) else ""


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) < 7 and int(text) > 0 else 1


def _user(principal: Principal) -> int:
    assert principal.user_id is not None  # require_page lets only logged-in users through
    return principal.user_id


# --- my notifications -------------------------------------------------------------------------------------


def _list_context(request: Request, principal: Principal) -> dict[str, Any]:
    lang, user_id = language(request), _user(principal)
    unread_only = request.query_params.get("unread") == "1"
    page = _page_number(request)
    with parts(request).db.reading() as session:
        rows, total = service.my_notifications(
            session, user_id, unread_only=unread_only, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        unread = service.unread_count(session, user_id)
    return {
        "items": [service.notification_out(row, lang) for row in rows],
        "total": total,
        "unread": unread,
        "unread_only": unread_only,
        "page": page,
        "pages": max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        "notice": translate("notifications.list.marked", lang) if request.query_params.get("marked") else "",
        "error": "",
    }


@router.get("/notifications")
async def notifications_page(
    request: Request, principal: Principal = Depends(require_page("receive_notifications"))
) -> Response:
    """The user's notifications, newest first, unread ones marked; `?unread=1` for those only."""
    context = await run_in_threadpool(_list_context, request, principal)
    return render(request, "notifications/list.html", context)


async def _mark(request: Request, principal: Principal, notification_id: int | None) -> Response:
    app_parts, user_id = parts(request), _user(principal)
    form = await request.form()
    if not form_csrf_ok(request, form):
        context = await run_in_threadpool(_list_context, request, principal)
        context["error"] = translate("login.csrf", language(request))
        return render(request, "notifications/list.html", context, status_code=403)

    def run() -> None:
        with app_parts.db.writing() as session:
            if notification_id is None:
                service.mark_all_read(session, user_id, app_parts.clock())
            else:
                service.mark_read(session, user_id, notification_id, app_parts.clock())

    try:
        await run_in_threadpool(run)
    except service.NotificationError as exc:
        raise HTTPException(404) from exc
    back = "/notifications?marked=1" + ("&unread=1" if _text(form, "unread", 1) == "1" else "")
    return RedirectResponse(back, status_code=303)


@router.post("/notifications/read-all")
async def read_all(request: Request, principal: Principal = Depends(require_page("receive_notifications"))) -> Response:
    """Mark every notification read, back to the list."""
    return await _mark(request, principal, None)


@router.post("/notifications/{notification_id}/read")
async def read_one(
    request: Request, notification_id: int, principal: Principal = Depends(require_page("receive_notifications"))
) -> Response:
    """Mark one notification read, back to the list; another user's answers 404."""
    return await _mark(request, principal, notification_id)


@router.get("/notifications/badge")
async def badge(request: Request, principal: Principal = Depends(require_page("receive_notifications"))) -> Response:
    """The nav link's text with the unread count, for htmx; 401 with HX-Redirect once the session has ended."""
    user_id = _user(principal)

    def run() -> int:
        with parts(request).db.reading() as session:
            return service.unread_count(session, user_id)

    count = await run_in_threadpool(run)
    response = render(request, "notifications/_badge.html", {"count": count})
    response.headers["Cache-Control"] = "no-store"
    return response


# --- preferences ------------------------------------------------------------------------------------------


def _preferences_context(request: Request, principal: Principal) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        chosen = service.preferences_of(session, _user(principal))
    return {
        "email": chosen["email"],
        "kinds": [{**item, "name": translate(f"notifications.kind.{item['kind']}", lang)} for item in chosen["kinds"]],
        "errors": {},
        "notice": "",
        "error": "",
    }


@router.get("/notifications/preferences")
async def preferences_page(
    request: Request, principal: Principal = Depends(require_page("receive_notifications"))
) -> Response:
    """Which kinds come in the app and by e-mail, and the user's address."""
    context = await run_in_threadpool(_preferences_context, request, principal)
    lang = language(request)
    if request.query_params.get("saved") == "1":
        context["notice"] = translate("notifications.preferences.saved", lang)
    if request.query_params.get("tested") == "1":
        context["notice"] = translate("notifications.preferences.tested", lang)
    return render(request, "notifications/preferences.html", context)


@router.post("/notifications/preferences")
async def save_preferences(
    request: Request, principal: Principal = Depends(require_page("receive_notifications"))
) -> Response:
    """Save the preferences form: every kind's two boxes and the address; on error the form as typed, 422."""
    app_parts, lang, user_id = parts(request), language(request), _user(principal)
    form = await request.form()
    context = await run_in_threadpool(_preferences_context, request, principal)
    if not form_csrf_ok(request, form):
        context["error"] = translate("login.csrf", lang)
        return render(request, "notifications/preferences.html", context, status_code=403)
    ticked = set(form.getlist("chosen"))
    choices = {
        (kind, channel): f"{kind}:{channel}" in ticked for kind in service.KINDS for channel in service.CHOSEN_CHANNELS
    }
    email = _text(form, "email", 300)

    def run() -> None:
        with app_parts.db.writing() as session:
            service.set_preferences(
                session,
                Actor.of(principal, client_ip(request)),
                app_parts.clock(),
                user_id,
                email=email,
                choices=choices,
            )

    try:
        await run_in_threadpool(run)
    except service.NotificationError as exc:
        context["email"] = email
        for item in context["kinds"]:
            for channel in service.CHOSEN_CHANNELS:
                item[channel] = choices[(item["kind"], channel)]
        context["errors"] = {"email": translate(f"notifications.error.{exc.code}", lang, **exc.params)}
        return render(request, "notifications/preferences.html", context, status_code=422)
    return RedirectResponse("/notifications/preferences?saved=1", status_code=303)


@router.post("/notifications/test")
async def send_test(
    request: Request, principal: Principal = Depends(require_page("receive_notifications"))
) -> Response:
    """Send the user a test notification, back to the preferences page."""
    app_parts, user_id = parts(request), _user(principal)
    form = await request.form()
    if not form_csrf_ok(request, form):
        context = await run_in_threadpool(_preferences_context, request, principal)
        context["error"] = translate("login.csrf", language(request))
        return render(request, "notifications/preferences.html", context, status_code=403)

    def run() -> None:
        with app_parts.db.writing() as session:
            service.send_test(session, user_id, app_parts.clock())

    await run_in_threadpool(run)
    return RedirectResponse("/notifications/preferences?tested=1", status_code=303)


# --- webhooks (administrators) ------------------------------------------------------------------------------


def _blank_webhook() -> dict[str, Any]:
    return {"name": "", "url": "", "kinds": [], "enabled": True, "secret_set": False}


def _kind_names(lang: str) -> list[dict[str, str]]:
    return [{"kind": kind, "name": translate(f"notifications.kind.{kind}", lang)} for kind in ALL_KINDS]


def _webhooks_context(request: Request, form_values: dict[str, Any] | None = None) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        hooks = [service.webhook_out(hook) for hook in service.list_webhooks(session)]
    names = {item["kind"]: item["name"] for item in _kind_names(lang)}
    for hook in hooks:
        hook["kind_names"] = [names.get(kind, kind) for kind in hook["kinds"]]
    notice = ""
    for flag in ("created", "saved", "deleted"):
        if request.query_params.get(flag) == "1":
            notice = translate(f"notifications.webhooks.{flag}", lang)
    return {
        "webhooks": hooks,
        "form": form_values or _blank_webhook(),
        "kinds": _kind_names(lang),
        "error": "",
        "field_error": "",
        "notice": notice,
    }


def _webhook_form(form: FormData) -> dict[str, Any]:
    return {
        "name": _text(form, "name", 255),
        "url": _text(form, "url", 500),
        "secret": form.get("secret") if isinstance(form.get("secret"), str) else "",
        "kinds": [kind for kind in form.getlist("kinds") if isinstance(kind, str)][:20],
        "enabled": form.get("enabled") == "1",
    }


def _shown(values: dict[str, Any], secret_set: bool = False) -> dict[str, Any]:
    # What the form shows again: never the secret typed.
    return {**{name: value for name, value in values.items() if name != "secret"}, "secret_set": secret_set}


@router.get("/admin/webhooks")
async def webhooks_page(
    request: Request, principal: Principal = Depends(require_page("manage_notifications"))
) -> Response:
    """Every webhook (secret only as set) and the form that adds one."""
    return render(request, "notifications/webhooks.html", await run_in_threadpool(_webhooks_context, request))


@router.post("/admin/webhooks")
async def create_webhook(
    request: Request, principal: Principal = Depends(require_page("manage_notifications"))
) -> Response:
    """Add a webhook from the form; on error the form as typed (without the secret), 422."""
    app_parts, lang = parts(request), language(request)
    form = await request.form()
    values = _webhook_form(form)
    if not form_csrf_ok(request, form):
        context = await run_in_threadpool(_webhooks_context, request, _shown(values))
        context["error"] = translate("login.csrf", lang)
        return render(request, "notifications/webhooks.html", context, status_code=403)

    def run() -> None:
        with app_parts.db.writing() as session:
            service.create_webhook(
                session,
                Actor.of(principal, client_ip(request)),
                app_parts.clock(),
                app_parts.settings.resolved_secret_key,
                **values,
            )

    try:
        await run_in_threadpool(run)
    except service.NotificationError as exc:
        context = await run_in_threadpool(_webhooks_context, request, _shown(values))
        context["field_error"] = translate(f"notifications.error.{exc.code}", lang, **exc.params)
        return render(request, "notifications/webhooks.html", context, status_code=422)
    return RedirectResponse("/admin/webhooks?created=1", status_code=303)


def _edit_context(request: Request, webhook_id: int) -> dict[str, Any] | None:
    lang = language(request)
    with parts(request).db.reading() as session:
        try:
            hook = service.webhook_out(service.get_webhook(session, webhook_id))
        except service.NotificationError:
            return None
    return {"webhook": hook, "form": hook, "kinds": _kind_names(lang), "error": "", "field_error": ""}


@router.get("/admin/webhooks/{webhook_id}")
async def webhook_page(
    request: Request, webhook_id: int, principal: Principal = Depends(require_page("manage_notifications"))
) -> Response:
    """One webhook's form: change it, or delete it."""
    context = await run_in_threadpool(_edit_context, request, webhook_id)
    if context is None:
        raise HTTPException(404)
    return render(request, "notifications/webhook.html", context)


@router.post("/admin/webhooks/{webhook_id}")
async def save_webhook(
    request: Request, webhook_id: int, principal: Principal = Depends(require_page("manage_notifications"))
) -> Response:
    """Save one webhook's form; an empty secret keeps the stored one."""
    app_parts, lang = parts(request), language(request)
    form = await request.form()
    values = _webhook_form(form)
    context = await run_in_threadpool(_edit_context, request, webhook_id)
    if context is None:
        raise HTTPException(404)
    if not form_csrf_ok(request, form):
        context.update(form=_shown(values, context["webhook"]["secret_set"]), error=translate("login.csrf", lang))
        return render(request, "notifications/webhook.html", context, status_code=403)

    def run() -> None:
        with app_parts.db.writing() as session:
            service.update_webhook(
                session,
                Actor.of(principal, client_ip(request)),
                app_parts.clock(),
                app_parts.settings.resolved_secret_key,
                webhook_id,
                values,
            )

    try:
        await run_in_threadpool(run)
    except service.NotificationError as exc:
        if exc.code == "webhook_not_found":
            raise HTTPException(404) from exc
        context.update(
            form=_shown(values, context["webhook"]["secret_set"]),
            field_error=translate(f"notifications.error.{exc.code}", lang, **exc.params),
        )
        return render(request, "notifications/webhook.html", context, status_code=422)
    return RedirectResponse("/admin/webhooks?saved=1", status_code=303)


@router.post("/admin/webhooks/{webhook_id}/delete")
async def delete_webhook(
    request: Request, webhook_id: int, principal: Principal = Depends(require_page("manage_notifications"))
) -> Response:
    """Delete a webhook and its waiting posts."""
    app_parts, lang = parts(request), language(request)
    form = await request.form()
    if not form_csrf_ok(request, form):
        context = await run_in_threadpool(_edit_context, request, webhook_id)
        if context is None:
            raise HTTPException(404)
        context["error"] = translate("login.csrf", lang)
        return render(request, "notifications/webhook.html", context, status_code=403)

    def run() -> None:
        with app_parts.db.writing() as session:
            service.delete_webhook(session, Actor.of(principal, client_ip(request)), app_parts.clock(), webhook_id)

    try:
        await run_in_threadpool(run)
    except service.NotificationError as exc:
        raise HTTPException(404) from exc
    return RedirectResponse("/admin/webhooks?deleted=1", status_code=303)


# --- deliveries (administrators) ----------------------------------------------------------------------------


def _deliveries_context(request: Request) -> dict[str, Any]:
    lang = language(request)
    status = request.query_params.get("status", DEAD)
    status = status if status in (*service.STATUSES, "all") else DEAD
    page = _page_number(request)
    with parts(request).db.reading() as session:
        rows, total = service.list_deliveries(
            session, status="" if status == "all" else status, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    items = [service.delivery_out(row, lang) for row in rows]
    for item in items:
        item["status_label"] = translate(f"notifications.status.{item['status']}", lang)
        item["channel_label"] = translate(f"notifications.channel.{item['channel']}", lang)
    replayed = request.query_params.get("replayed", "")
    return {
        "items": items,
        "status": status,
        "statuses": (DEAD, "pending", "sent", "all"),
        "total": total,
        "page": page,
        "pages": max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        "notice": translate("notifications.deliveries.replayed", lang, id=replayed) if replayed.isdigit() else "",
        "error": "",
    }


@router.get("/admin/deliveries")
async def deliveries_page(
    request: Request, principal: Principal = Depends(require_page("manage_notifications"))
) -> Response:
    """The outbox: dead deliveries by default (what, where, attempts, last error), each with a replay button."""
    return render(request, "notifications/deliveries.html", await run_in_threadpool(_deliveries_context, request))


@router.post("/admin/deliveries/{delivery_id}/replay")
async def replay(
    request: Request, delivery_id: int, principal: Principal = Depends(require_page("manage_notifications"))
) -> Response:
    """Send a dead delivery again (attempts reset); back to the dead letters."""
    app_parts, lang = parts(request), language(request)
    form = await request.form()
    if not form_csrf_ok(request, form):
        context = await run_in_threadpool(_deliveries_context, request)
        context["error"] = translate("login.csrf", lang)
        return render(request, "notifications/deliveries.html", context, status_code=403)

    def run() -> None:
        with app_parts.db.writing() as session:
            service.replay(session, Actor.of(principal, client_ip(request)), app_parts.clock(), delivery_id)

    try:
        await run_in_threadpool(run)
    except service.NotificationError as exc:
        if exc.code == "delivery_not_found":
            raise HTTPException(404) from exc
        context = await run_in_threadpool(_deliveries_context, request)
        context["error"] = translate(f"notifications.error.{exc.code}", lang, **exc.params)
        return render(request, "notifications/deliveries.html", context, status_code=409)
    return RedirectResponse(f"/admin/deliveries?replayed={delivery_id}", status_code=303)
