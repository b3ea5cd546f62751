"""Sending what waits in the outbox: e-mail over SMTP, signed webhook posts, retried with back-off, else dead.

`deliver_due` (run by every worker each tick) claims the pending deliveries whose time has come with one
conditional UPDATE (`claim_owner`/`claim_until`; on PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED), so
of two workers each delivery is claimed by one. It sends them outside any transaction, then records the outcome
only if its claim still holds.

- 2xx from a webhook, or an SMTP server that accepts the message: `sent`.
- A webhook's 4xx other than 408/429, a 3xx (redirects are not followed), an address the SMTP server refuses
  for good (5xx), a webhook disabled or whose secret cannot be read: `dead` at once.
- 5xx, 408, 429, timeouts, connection errors, temporary SMTP failures: tried again after 1, 2, 4, 8, 16 minutes
  (a webhook's Retry-After is honoured up to RETRY_AFTER_CAP); the MAX_ATTEMPTS-th failure makes it `dead`.
- No SMTP host configured: e-mails stay `pending`, untried (no attempt counted), with last_error
  `smtp_not_configured`; they go out on the first tick after an SMTP host is set.

Errors are stored as `<code>` or `<code>:<detail>`; `service.error_text` says them in Vietnamese or English.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import and_, or_, select, update

from cityops.clock import Clock
from cityops.crypto import SecretsUnreadable
from cityops.db.engine import Database
from cityops.i18n import translate
from cityops.notifications.models import DEAD, PENDING, SENT, Delivery, Webhook
from cityops.notifications.service import webhook_secret
from cityops.outbound import GuardedTransport, OutboundRefused
from cityops.settings import Settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6  # the 6th failure is final: tried at 0, +1, +2, +4, +8, +16 minutes
FIRST_WAIT = timedelta(minutes=1)
RETRY_AFTER_CAP = timedelta(minutes=60)
CLAIM_FOR = timedelta(minutes=5)  # longer than a batch can take: BATCH × the slowest send
BATCH = 10
MAX_PER_TICK = 200
SEND_TIMEOUT = 10.0  # seconds, for one webhook post or one SMTP conversation
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Outcome:
    """How one send went: sent, or an error code with detail, whether to try again, and the wait asked for."""

    sent: bool
    error: str = ""
    retry: bool = True
    wait: timedelta | None = None


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 1, 2, 4, 8, 16 minutes …"""
    return FIRST_WAIT * (2 ** max(attempts - 1, 0))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Cityops-Signature value: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliver_due(db: Database, clock: Clock, settings: Settings | None, *, owner: str) -> int:
    """Claim the deliveries that are due and send them; the number sent."""
    if settings is None:  # no secret key to sign with, no SMTP: nothing can be sent
        return 0
    email_ready = bool(settings.smtp_host)
    if not email_ready:
        _note_no_smtp(db)
    sent = handled = 0
    while handled < MAX_PER_TICK:
        claimed = _claim(db, clock(), owner, email_ready)
        if not claimed:
            break
        handled += len(claimed)
        for delivery_id in claimed:
            sent += _deliver_one(db, clock, settings, owner, delivery_id)
    return sent


def _note_no_smtp(db: Database) -> None:
    """Say on the waiting e-mails why they wait (a write only when some do not say it yet)."""
    unsaid = and_(Delivery.channel == "email", Delivery.status == PENDING, Delivery.last_error != "smtp_not_configured")
    with db.reading() as session:
        if session.scalar(select(Delivery.id).where(unsaid).limit(1)) is None:
            return
    with db.writing() as session:
        session.execute(
            update(Delivery)
            .where(unsaid)
            .values(last_error="smtp_not_configured")
            .execution_options(synchronize_session=False)
        )


def _claim(db: Database, now: datetime, owner: str, email_ready: bool) -> list[int]:
    """Claim up to BATCH due deliveries for this worker: one conditional UPDATE, so each is claimed once."""
    due = and_(
        Delivery.status == PENDING,
        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        or_(Delivery.claim_until.is_(None), Delivery.claim_until < now),
    )
    if not email_ready:
        due = and_(due, Delivery.channel != "email")
    picked = (
        select(Delivery.id)
        .where(due)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)  # PostgreSQL: rows another worker is claiming are skipped
    )
    with db.writing() as session:
        rows = session.execute(
            update(Delivery)
            .where(Delivery.id.in_(picked), due)
            .values(claim_owner=owner, claim_until=now + CLAIM_FOR)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        ).all()
    return sorted(row[0] for row in rows)


def _deliver_one(db: Database, clock: Clock, settings: Settings, owner: str, delivery_id: int) -> int:
    with db.reading() as session:
        row = session.get(Delivery, delivery_id)
        if row is None or row.claim_owner != owner or row.status != PENDING:
            return 0
        webhook = session.get(Webhook, row.webhook_id) if row.webhook_id is not None else None
        channel, target, payload, attempts = row.channel, row.target, dict(row.payload or {}), row.attempts
        hook = (webhook.url, webhook.enabled, webhook.secret) if webhook is not None else None
    try:
        if channel == "email":
            outcome = send_email(settings, delivery_id, target, payload, clock())
        elif channel == "webhook" and hook is not None:
            url, enabled, stored_secret = hook
            if not enabled:
                outcome = Outcome(False, "webhook_disabled", retry=False)
            else:
                secret = webhook_secret(settings.resolved_secret_key, stored_secret)
                outcome = post_webhook(url, secret, delivery_id, payload, clock())
        else:
            outcome = Outcome(False, "no_target", retry=False)
    except SecretsUnreadable:
        outcome = Outcome(False, "secret_unreadable", retry=False)
    except Exception as exc:  # a bug must not stop the other deliveries; the row says what happened
        log.exception("delivery %s failed unexpectedly", delivery_id)
        outcome = Outcome(False, f"unexpected:{type(exc).__name__}")
    return _record(db, clock(), owner, delivery_id, attempts, outcome)


def _record(db: Database, now: datetime, owner: str, delivery_id: int, attempts: int, outcome: Outcome) -> int:
    """Write the outcome, only while this worker's claim holds (a run-out claim may have passed to another)."""
    values: dict[str, Any] = {"attempts": attempts + 1, "claim_owner": "", "claim_until": None}
    if outcome.sent:
        values.update(status=SENT, sent_at=now, last_error="", next_attempt_at=None)
    elif not outcome.retry or attempts + 1 >= MAX_ATTEMPTS:
        values.update(status=DEAD, last_error=outcome.error[:2000], next_attempt_at=None)
    else:
        wait = backoff(attempts + 1)
        if outcome.wait is not None:
            wait = max(wait, min(outcome.wait, RETRY_AFTER_CAP))
        values.update(last_error=outcome.error[:2000], next_attempt_at=now + wait)
    with db.writing() as session:
        result = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.claim_owner == owner, Delivery.status == PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return 1 if outcome.sent and int(getattr(result, "rowcount", 0) or 0) else 0


# --- e-mail ---------------------------------------------------------------------------------------------------


def absolute_link(settings: Settings, link: str) -> str:
    """The link as a reader outside the app follows it: under the public URL."""
    if not link or link.startswith(("http://", "https://")):
        return link
    return settings.public_url.rstrip("/") + "/" + link.lstrip("/")


def email_message(settings: Settings, delivery_id: int, target: str, payload: dict[str, Any]) -> EmailMessage:
    """The e-mail of one delivery: UTF-8 subject and plain-text body in the user's language, link made absolute."""
    language = "en" if payload.get("language") == "en" else "vi"
    subject = " ".join(str(payload.get("subject") or translate("notifications.email.subject", language)).split())
    lines = [str(payload.get("text") or "").strip()]
    link = absolute_link(settings, str(payload.get("link") or ""))
    if link:
        lines.append(translate("notifications.email.open", language, url=link))
    preferences = absolute_link(settings, "/notifications/preferences")
    lines.append("-- \n" + translate("notifications.email.footer", language, url=preferences))
    message = EmailMessage()
    message["Subject"] = subject[:250]
    message["From"] = settings.smtp_sender
    message["To"] = target
    message["Message-ID"] = f"<cityops-delivery-{delivery_id}@{settings.smtp_sender.rpartition('@')[2] or 'cityops'}>"
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = language
    message.set_content("\n\n".join(line for line in lines if line) + "\n", charset="utf-8")
    if payload.get("html"):  # a report's e-mail (reports.service): an HTML part beside the text
        message.add_alternative(str(payload["html"]), subtype="html", charset="utf-8")
    reports_dir = (settings.data_dir / "reports").resolve()
    for item in payload.get("attachments") or []:  # files of a made report, by their path under <data dir>/reports
        path = (reports_dir / str(item.get("path", ""))).resolve()
        if path.is_relative_to(reports_dir) and path.is_file():
            maintype, _, subtype = str(item.get("type") or "application/octet-stream").partition("/")
            message.add_attachment(
                path.read_bytes(), maintype=maintype, subtype=subtype, filename=str(item.get("filename") or path.name)
            )
    return message


def send_email(settings: Settings, delivery_id: int, target: str, payload: dict[str, Any], now: datetime) -> Outcome:
    """Hand one message to the SMTP server (STARTTLS and log-in when configured)."""
    message = email_message(settings, delivery_id, target, payload)
    message["Date"] = format_datetime(now)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SEND_TIMEOUT) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return Outcome(False, f"smtp_refused:{codes[0] if codes else ''}", retry=not permanent)
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, f"smtp_error:{exc.smtp_code}", retry=exc.smtp_code < 500)
    except TimeoutError:
        return Outcome(False, "timeout")
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, f"connection:{type(exc).__name__}")
    return Outcome(True)


# --- webhooks -------------------------------------------------------------------------------------------------


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value[:6]))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment - now, timedelta(0)) if moment.tzinfo else None


def post_webhook(url: str, secret: str, delivery_id: int, payload: dict[str, Any], now: datetime) -> Outcome:
    """Post the payload as JSON, signed; the outcome by the answer's status."""
    body = orjson.dumps(payload)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "cityops-webhooks/1",
        "X-Cityops-Event": str(payload.get("kind", "")),
        "X-Cityops-Delivery": str(delivery_id),
        "X-Cityops-Timestamp": str(timestamp),
        "X-Cityops-Signature": sign(secret, timestamp, body),
    }
    try:
        with httpx.Client(timeout=SEND_TIMEOUT, follow_redirects=False, transport=GuardedTransport()) as client:
            answer = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return Outcome(False, "timeout")
    except OutboundRefused:  # an internal address an admin did not allow: retrying cannot help
        return Outcome(False, "address_refused", retry=False)
    except httpx.HTTPError as exc:
        return Outcome(False, f"connection:{type(exc).__name__}")
    status = answer.status_code
    if 200 <= status < 300:
        return Outcome(True)
    if status >= 500 or status in RETRYABLE_STATUSES:
        return Outcome(False, f"http_status:{status}", wait=_retry_after(answer.headers.get("retry-after"), now))
    return Outcome(False, f"http_rejected:{status}", retry=False)
