"""Telling people: one call, `notify`, makes the in-app notifications and queues the e-mails and webhook posts.

Every message has a *kind* (``alert.fired``, ``incident.assigned`` …) and is written from the templates
``notify.<kind>.title`` and ``notify.<kind>.body`` of the translations, in Vietnamese and English. A *key*
makes it once only: the same key for the same user is one notification, however many workers send it, and one
e-mail and one webhook post per target. Deliveries wait in the outbox (`notification_deliveries`) for
`notifications.delivery`, which the worker runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityops.accounts.models import User
from cityops.accounts.service import Actor, audit
from cityops.crypto import decrypt_json, encrypt_json
from cityops.i18n import both, catalog, translate
from cityops.notifications.models import DEAD, PENDING, SENT, Delivery, Notification, Preference, Webhook

# Kinds sent by e-mail unless the user turns it off; the others only when the user turns it on.
EMAIL_BY_DEFAULT = frozenset(
    {
        "alert.fired",
        "incident.assigned",
        "incident.deadline_soon",
        "incident.overdue",
        "incident.escalated",
        "notifications.test",
    }
)


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def wants(session: Session, user_id: int, kind: str, channel: str) -> bool:
    """Whether the user receives this kind by this channel: their preference, else the kind's default."""
    chosen = session.get(Preference, (user_id, kind, channel))
    if chosen is not None:
        return chosen.enabled
    return channel == "in_app" or (channel == "email" and kind in EMAIL_BY_DEFAULT)


def notify(
    session: Session,
    now: datetime,
    *,
    user_ids: Iterable[int],
    kind: str,
    key: str,
    params: dict[str, Any] | None = None,
    link: str = "",
) -> list[int]:
    """Notify these users once per key; queue e-mail (by preference) and webhook posts. The users newly told."""
    params = params or {}
    title_vi, title_en = both(f"notify.{kind}.title", **params)
    body_vi, body_en = both(f"notify.{kind}.body", **params)
    insert = _insert(session)
    told: list[int] = []
    for user in session.scalars(select(User).where(User.id.in_(sorted(set(user_ids))), User.is_active.is_(True))):
        if not wants(session, user.id, kind, "in_app"):
            continue
        notification_id = session.execute(
            insert(Notification)
            .values(
                user_id=user.id,
                kind=kind,
                key=key,
                title_vi=title_vi,
                title_en=title_en,
                body_vi=body_vi,
                body_en=body_en,
                link=link,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(Notification.id)
        ).scalar()
        if notification_id is None:
            continue
        told.append(user.id)
        if user.email and wants(session, user.id, kind, "email"):
            vi = user.language != "en"
            _queue(
                session,
                now,
                key=f"email:{user.id}:{key}",
                channel="email",
                target=user.email,
                notification_id=notification_id,
                payload={
                    "subject": title_vi if vi else title_en,
                    "text": body_vi if vi else body_en,
                    "link": link,
                    "language": "vi" if vi else "en",
                },
            )
    if told:
        recipients = list(session.execute(select(User.username, User.phone).where(User.id.in_(told))))
        for webhook in session.scalars(select(Webhook).where(Webhook.enabled.is_(True))):
            if webhook.kinds and kind not in webhook.kinds:
                continue
            _queue(
                session,
                now,
                key=f"webhook:{webhook.id}:{key}",
                channel="webhook",
                target=webhook.url,
                webhook_id=webhook.id,
                payload={
                    "kind": kind,
                    "key": key,
                    "title_vi": title_vi,
                    "title_en": title_en,
                    "body_vi": body_vi,
                    "body_en": body_en,
                    "link": link,
                    "recipients": [{"username": name, "phone": phone} for name, phone in recipients],
                    "created_at": now.isoformat(),
                },
            )
    session.flush()
    return told


def _queue(
    session: Session,
    now: datetime,
    *,
    key: str,
    channel: str,
    target: str,
    payload: dict[str, Any],
    notification_id: int | None = None,
    webhook_id: int | None = None,
) -> None:
    session.execute(
        _insert(session)(Delivery)
        .values(
            key=key[:255],
            channel=channel,
            target=target,
            payload=payload,
            notification_id=notification_id,
            webhook_id=webhook_id,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            last_error="",
            claim_owner="",
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )


def operators(session: Session) -> list[int]:
    """The users who run the center (operators and admins): the last step of every escalation."""
    return list(session.scalars(select(User.id).where(User.role.in_(("operator", "admin")), User.is_active.is_(True))))


def agency_users(session: Session, agency_id: int, *, heads_only: bool = False) -> list[int]:
    """The active users of an agency (officers and handlers), or only its heads."""
    query = select(User.id).where(User.agency_id == agency_id, User.is_active.is_(True))
    if heads_only:
        query = query.where(User.is_agency_head.is_(True))
    return list(session.scalars(query))


# --- what a user reads --------------------------------------------------------------------------------------

# The kinds a user may choose to receive, in the order the preferences page shows them.
KINDS = (
    "alert.fired",
    "incident.assigned",
    "incident.deadline_soon",
    "incident.overdue",
    "incident.escalated",
    "incident.status",
    "incident.comment",
)
TEST_KIND = "notifications.test"  # the test message a user sends themselves; always in-app and by e-mail
CHOSEN_CHANNELS = ("in_app", "email")
MAX_PAGE = 200
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", re.ASCII)


class NotificationError(ValueError):
    """A refused request: a code, and its message in both languages (`notifications.error.<code>`)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def message_vi(self) -> str:
        return translate(f"notifications.error.{self.code}", "vi", **self.params)

    @property
    def message_en(self) -> str:
        return translate(f"notifications.error.{self.code}", "en", **self.params)


def notification_out(row: Notification, language: str) -> dict[str, Any]:
    """One notification as the API shows it: in the reader's language and in both."""
    english = language == "en"
    return {
        "id": row.id,
        "kind": row.kind,
        "title": (row.title_en or row.title_vi) if english else row.title_vi,
        "body": (row.body_en or row.body_vi) if english else row.body_vi,
        "title_vi": row.title_vi,
        "title_en": row.title_en,
        "body_vi": row.body_vi,
        "body_en": row.body_en,
        "link": row.link,
        "created_at": row.created_at,
        "read_at": row.read_at,
        "unread": row.read_at is None,
    }


def my_notifications(
    session: Session, user_id: int, *, unread_only: bool = False, limit: int = 50, offset: int = 0
) -> tuple[list[Notification], int]:
    """A user's notifications, newest first, and how many there are in all (with the same filter)."""
    where = [Notification.user_id == user_id]
    if unread_only:
        where.append(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(Notification).where(*where)) or 0
    rows = session.scalars(
        select(Notification)
        .where(*where)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(min(max(limit, 1), MAX_PAGE))
        .offset(max(offset, 0))
    )
    return list(rows), int(total)


def unread_count(session: Session, user_id: int) -> int:
    """How many of the user's notifications are unread."""
    query = select(func.count()).select_from(Notification)
    return int(session.scalar(query.where(Notification.user_id == user_id, Notification.read_at.is_(None))) or 0)


def mark_read(session: Session, user_id: int, notification_id: int, now: datetime) -> Notification:
    """Mark one of the user's notifications read (once: reading it again keeps the first moment)."""
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        raise NotificationError("notification_not_found", id=notification_id)
    if row.read_at is None:
        row.read_at = now
        session.flush()
    return row


def mark_all_read(session: Session, user_id: int, now: datetime) -> int:
    """Mark every unread notification of the user read; how many were."""
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def send_test(session: Session, user_id: int, now: datetime) -> bool:
    """Send the user a test notification (in-app, by e-mail when they have an address, to every webhook)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotificationError("notification_not_found", id=user_id)
    told = notify(
        session,
        now,
        user_ids=[user_id],
        kind=TEST_KIND,
        key=f"test:{user_id}:{now.isoformat()}",
        params={"name": user.full_name or user.username},
        link="/notifications/preferences",
    )
    return bool(told)


# --- preferences ------------------------------------------------------------------------------------------


def preferences_of(session: Session, user_id: int) -> dict[str, Any]:
    """The user's address and, per kind, whether each channel is on (their choice or the kind's default)."""
    user = session.get(User, user_id)
    return {
        "email": user.email if user is not None else "",
        "kinds": [
            {"kind": kind, **{channel: wants(session, user_id, kind, channel) for channel in CHOSEN_CHANNELS}}
            for kind in KINDS
        ],
    }


def check_email(text: str) -> str:
    """The address, trimmed; "" for none. Refused: anything that is not one plain ASCII address."""
    address = text.strip()
    if address and (len(address) > 254 or not _EMAIL.fullmatch(address)):
        raise NotificationError("invalid_email", email=address[:80])
    return address


def set_preferences(
    session: Session,
    actor: Actor,
    now: datetime,
    user_id: int,
    *,
    email: str | None = None,
    choices: dict[tuple[str, str], bool] | None = None,
) -> dict[str, Any]:
    """Change the user's address (when given) and the channels chosen per kind; nothing is stored if any is wrong."""
    choices = choices or {}
    for kind, channel in choices:
        if kind not in KINDS:
            raise NotificationError("unknown_kind", kind=kind[:40])
        if channel not in CHOSEN_CHANNELS:
            raise NotificationError("unknown_channel", channel=channel[:20])
    address = check_email(email) if email is not None else None
    user = session.get(User, user_id)
    if user is None:
        raise NotificationError("notification_not_found", id=user_id)
    changed: dict[str, Any] = {}
    if address is not None and address != user.email:
        changed["email"] = {"before": user.email, "after": address}
        user.email = address
    for (kind, channel), enabled in sorted(choices.items()):
        if wants(session, user_id, kind, channel) == enabled:
            continue
        row = session.get(Preference, (user_id, kind, channel))
        if row is None:
            session.add(Preference(user_id=user_id, kind=kind, channel=channel, enabled=enabled))
        else:
            row.enabled = enabled
        changed[f"{kind}.{channel}"] = enabled
    if changed:
        audit(session, actor, "notification_preferences.update", "user", user_id, now, changed)
    session.flush()
    return preferences_of(session, user_id)


# --- webhooks ---------------------------------------------------------------------------------------------

WEBHOOK_SECRET_MIN = 16


def webhook_out(webhook: Webhook) -> dict[str, Any]:
    """A webhook as shown: never its secret, only whether one is set."""
    return {
        "id": webhook.id,
        "name": webhook.name,
        "url": webhook.url,
        "kinds": list(webhook.kinds or []),
        "enabled": webhook.enabled,
        "secret_set": bool(webhook.secret),
        "created_by": webhook.created_by,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
    }


def list_webhooks(session: Session) -> list[Webhook]:
    """Every webhook, by name."""
    return list(session.scalars(select(Webhook).order_by(Webhook.name, Webhook.id)))


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    """One webhook, or webhook_not_found."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotificationError("webhook_not_found", id=webhook_id)
    return webhook


def _check_webhook(fields: dict[str, Any]) -> dict[str, Any]:
    """The webhook's fields, cleaned; WebhookError-style NotificationError on the first wrong one."""
    clean: dict[str, Any] = {}
    if "name" in fields:
        name = str(fields["name"] or "").strip()
        if not name:
            raise NotificationError("webhook_name_empty")
        clean["name"] = name[:255]
    if "url" in fields:
        url = str(fields["url"] or "").strip()
        parts = urlsplit(url)
        if (
            len(url) > 500
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c in url for c in " \r\n")
        ):
            raise NotificationError("webhook_bad_url", url=url[:120])
        clean["url"] = url
    if "kinds" in fields:
        kinds = [str(kind) for kind in fields["kinds"] or []]
        unknown = [kind for kind in kinds if kind not in (*KINDS, TEST_KIND)]
        if unknown:
            raise NotificationError("unknown_kind", kind=unknown[0][:40])
        clean["kinds"] = sorted(set(kinds), key=lambda kind: (*KINDS, TEST_KIND).index(kind))
    if "enabled" in fields:
        clean["enabled"] = bool(fields["enabled"])
    if fields.get("secret"):
        secret = str(fields["secret"])
        if len(secret) < WEBHOOK_SECRET_MIN or len(secret) > 500 or not secret.isprintable():
            raise NotificationError("webhook_bad_secret", minimum=WEBHOOK_SECRET_MIN)
        clean["secret"] = secret
    return clean


def create_webhook(
    session: Session,
    actor: Actor,
    now: datetime,
    secret_key: str,
    *,
    name: str,
    url: str,
    secret: str,
    kinds: list[str] | None = None,
    enabled: bool = True,
) -> Webhook:
    """Add a webhook; its secret is required and stored encrypted."""
    if not secret:
        raise NotificationError("webhook_secret_missing", minimum=WEBHOOK_SECRET_MIN)
    clean = _check_webhook({"name": name, "url": url, "secret": secret, "kinds": kinds or [], "enabled": enabled})
    webhook = Webhook(
        name=clean["name"],
        url=clean["url"],
        secret=encrypt_json(secret_key, {"secret": clean["secret"]}),
        kinds=clean["kinds"],
        enabled=clean["enabled"],
        created_by=actor.label,
        created_at=now,
    )
    session.add(webhook)
    session.flush()
    audit(
        session,
        actor,
        "webhook.create",
        "webhook",
        webhook.id,
        now,
        {"name": webhook.name, "url": webhook.url, "kinds": webhook.kinds, "enabled": webhook.enabled},
    )
    return webhook


def update_webhook(
    session: Session, actor: Actor, now: datetime, secret_key: str, webhook_id: int, changes: dict[str, Any]
) -> Webhook:
    """Change the fields given; an empty or absent secret keeps the stored one."""
    webhook = get_webhook(session, webhook_id)
    clean = _check_webhook(changes)
    recorded: dict[str, Any] = {}
    for name, value in clean.items():
        if name == "secret":
            webhook.secret = encrypt_json(secret_key, {"secret": value})
            recorded["secret_changed"] = True
        elif getattr(webhook, name) != value:
            recorded[name] = {"before": getattr(webhook, name), "after": value}
            setattr(webhook, name, value)
    if recorded:
        webhook.updated_at = now
        audit(session, actor, "webhook.update", "webhook", webhook.id, now, {"name": webhook.name, **recorded})
    session.flush()
    return webhook


def delete_webhook(session: Session, actor: Actor, now: datetime, webhook_id: int) -> None:
    """Remove a webhook and the posts still waiting for it."""
    webhook = get_webhook(session, webhook_id)
    audit(session, actor, "webhook.delete", "webhook", webhook.id, now, {"name": webhook.name, "url": webhook.url})
    session.execute(delete(Delivery).where(Delivery.webhook_id == webhook.id))
    session.delete(webhook)
    session.flush()


def webhook_secret(secret_key: str, stored: str) -> str:
    """A webhook's stored secret in clear (raises crypto.SecretsUnreadable when the secret key has changed)."""
    return str(decrypt_json(secret_key, stored).get("secret", ""))


# --- deliveries (the outbox) --------------------------------------------------------------------------------

STATUSES = (PENDING, SENT, DEAD)


def error_text(last_error: str, language: str) -> str:
    """A delivery's last error in the reader's language: ours are `<code>` or `<code>:<detail>`."""
    if not last_error:
        return ""
    code, _, detail = last_error.partition(":")
    key = f"notifications.delivery_error.{code}"
    if key in catalog(language):
        return translate(key, language, detail=detail)
    return last_error


def delivery_out(row: Delivery, language: str) -> dict[str, Any]:
    """One delivery as shown to administrators: what, where, how it went."""
    payload = row.payload or {}
    what = payload.get("subject") or payload.get("title_en" if language == "en" else "title_vi") or ""
    return {
        "id": row.id,
        "key": row.key,
        "channel": row.channel,
        "target": row.target,
        "webhook_id": row.webhook_id,
        "kind": payload.get("kind", ""),
        "what": what,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_error": row.last_error,
        "last_error_text": error_text(row.last_error, language),
        "last_error_vi": error_text(row.last_error, "vi"),
        "last_error_en": error_text(row.last_error, "en"),
        "created_at": row.created_at,
        "sent_at": row.sent_at,
    }


def list_deliveries(
    session: Session, *, status: str = "", channel: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[Delivery], int]:
    """Deliveries, newest first, by status and channel; and how many match."""
    where = []
    if status:
        if status not in STATUSES:
            raise NotificationError("unknown_status", status=status[:20])
        where.append(Delivery.status == status)
    if channel:
        if channel not in ("email", "webhook"):
            raise NotificationError("unknown_channel", channel=channel[:20])
        where.append(Delivery.channel == channel)
    total = session.scalar(select(func.count()).select_from(Delivery).where(*where)) or 0
    rows = session.scalars(
        select(Delivery)
        .where(*where)
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
        .limit(min(max(limit, 1), MAX_PAGE))
        .offset(max(offset, 0))
    )
    return list(rows), int(total)


def replay(session: Session, actor: Actor, now: datetime, delivery_id: int) -> Delivery:
    """Send a dead delivery again: pending now, attempts reset."""
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise NotificationError("delivery_not_found", id=delivery_id)
    if row.status != DEAD:
        raise NotificationError("delivery_not_dead", id=delivery_id, status=row.status)
    before = {"attempts": row.attempts, "last_error": row.last_error}
    row.status = PENDING
    row.attempts = 0
    row.next_attempt_at = now
    row.claim_owner = ""
    row.claim_until = None
    audit(session, actor, "delivery.replay", "delivery", row.id, now, {"key": row.key, "target": row.target, **before})
    session.flush()
    return row
