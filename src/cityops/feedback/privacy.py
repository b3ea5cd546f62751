"""Personal data of reports (Law on Personal Data Protection 2025): how a phone or e-mail is normalised, the
retention that removes the contact of closed reports after `feedback_retention_days`, and what an administrator
(`manage_personal_data`) may export or erase about one phone number or e-mail address.

The audit log records every export and erasure without the phone or e-mail in clear: it keeps an HMAC of it
(keyed with the server's secret key), so two requests about the same person can be matched, not read back.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cityops.accounts.service import SYSTEM, Actor, audit
from cityops.clock import Clock
from cityops.db.engine import Database
from cityops.feedback.models import CLOSED, FeedbackCategory, Report, ReportContact, ReportPhoto
from cityops.settings import Settings

# Vietnamese mobile numbers: 03x, 05x, 07x, 08x, 09x and 10 digits; landlines 02xx and 11 digits.
_MOBILE = re.compile(r"0[35789][0-9]{8}", re.ASCII)
_LANDLINE = re.compile(r"02[0-9]{9}", re.ASCII)
_PHONE_PUNCTUATION = re.compile(r"[\s.\-()/]")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+",
    re.ASCII,
)
PURGE_BATCH = 500


def normalise_phone(raw: str) -> str | None:
    """A Vietnamese phone number as stored ("0912345678"): spaces, dots, dashes and brackets dropped, +84 or 84
    turned into 0; None when it is not a mobile (or landline) number."""
    digits = _PHONE_PUNCTUATION.sub("", raw.strip())
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    return None


def normalise_email(raw: str) -> str | None:
    """An e-mail address in lower case, or None when it does not look like one."""
    text = raw.strip().lower()
    if len(text) > 254 or not _EMAIL.fullmatch(text) or ".." in text:
        return None
    return text


def fingerprint(secret: str, value: str) -> str:
    """What the audit log keeps of a phone or e-mail: an HMAC-SHA256, not the value."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


# --- retention -------------------------------------------------------------------------------------------


def purge_expired(db: Database, clock: Clock, settings: Settings | None) -> int:
    """Remove the personal data of reports closed more than `feedback_retention_days` ago (0 keeps it); how many
    reports. Cheap when there is nothing to do: one indexed query."""
    days = settings.feedback_retention_days if settings is not None else 365
    if days <= 0:
        return 0
    now = clock()
    cutoff = now - timedelta(days=days)
    with db.writing() as session:
        due = list(
            session.scalars(
                select(Report)
                .where(
                    Report.status == CLOSED,
                    Report.closed_at < cutoff,
                    Report.personal_data_removed_at.is_(None),
                    Report.id.in_(select(ReportContact.report_id)),
                )
                .order_by(Report.id)
                .limit(PURGE_BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        for report in due:
            contact = session.get(ReportContact, report.id)
            if contact is not None:
                session.delete(contact)
            report.personal_data_removed_at = now
            audit(
                session,
                SYSTEM,
                "report.personal_data_expired",
                "report",
                report.id,
                now,
                {
                    "tracking_code": report.tracking_code,
                    "closed_at": report.closed_at.isoformat() if report.closed_at else None,
                    "retention_days": days,
                },
            )
    return len(due)


# --- export and erasure ------------------------------------------------------------------------------------


def _contacts(session: Session, phone: str | None, email: str | None) -> list[ReportContact]:
    conditions = []
    if phone:
        conditions.append(ReportContact.phone == phone)
    if email:
        conditions.append(ReportContact.email == email)
    if not conditions:
        return []
    return list(session.scalars(select(ReportContact).where(or_(*conditions)).order_by(ReportContact.report_id)))


def _subject_details(secret: str, phone: str | None, email: str | None, count: int) -> dict[str, Any]:
    details: dict[str, Any] = {"reports": count}
    if phone:
        details["phone_hmac"] = fingerprint(secret, phone)
    if email:
        details["email_hmac"] = fingerprint(secret, email)
    return details


def export_personal_data(
    session: Session, actor: Actor, now: datetime, secret: str, *, phone: str | None = None, email: str | None = None
) -> dict[str, Any]:
    """Everything held about one phone and/or e-mail (already normalised): each report with its contact, text,
    place (exact), photos and answer. Audited (`personal_data.export`) without the phone or e-mail in clear."""
    contacts = _contacts(session, phone, email)
    reports: list[dict[str, Any]] = []
    for contact in contacts:
        report = session.get(Report, contact.report_id)
        if report is None:
            continue
        category = session.get(FeedbackCategory, report.category_id)
        photos = session.scalars(select(ReportPhoto).where(ReportPhoto.report_id == report.id).order_by(ReportPhoto.id))
        reports.append(
            {
                "tracking_code": report.tracking_code,
                "category": category.code if category else None,
                "description": report.description,
                "place_text": report.place_text,
                "latitude": report.latitude,
                "longitude": report.longitude,
                "requested_at": report.requested_at.isoformat(),
                "status": report.status,
                "answer": report.answer,
                "answered_at": report.answered_at.isoformat() if report.answered_at else None,
                "rating": report.rating,
                "rating_comment": report.rating_comment,
                "photos": [
                    {"id": photo.id, "url": f"/report/{report.tracking_code}/photos/{photo.id}", "sha256": photo.sha256}
                    for photo in photos
                ],
                "contact": {
                    "name": contact.name,
                    "phone": contact.phone,
                    "email": contact.email,
                    "address": contact.address,
                    "consent_at": contact.consent_at.isoformat(),
                },
            }
        )
    audit(
        session,
        actor,
        "personal_data.export",
        "personal_data",
        "-",
        now,
        _subject_details(secret, phone, email, len(reports)),
    )
    return {"phone": phone, "email": email, "exported_at": now.isoformat(), "reports": reports}


def erase_personal_data(
    session: Session, actor: Actor, now: datetime, secret: str, *, phone: str | None = None, email: str | None = None
) -> dict[str, Any]:
    """Erase the contact of every report filed with this phone and/or e-mail (the report's text, place and photos
    stay: they are the public record); audited (`personal_data.erase`) without the phone or e-mail in clear."""
    contacts = _contacts(session, phone, email)
    codes: list[str] = []
    for contact in contacts:
        report = session.get(Report, contact.report_id)
        session.delete(contact)
        if report is not None:
            report.personal_data_removed_at = now
            codes.append(report.tracking_code)
    session.flush()
    audit(
        session,
        actor,
        "personal_data.erase",
        "personal_data",
        "-",
        now,
        {**_subject_details(secret, phone, email, len(codes)), "tracking_codes": codes},
    )
    return {"erased": len(codes), "tracking_codes": codes, "erased_at": now.isoformat()}
