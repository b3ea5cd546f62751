"""What the Open311 GeoReport v2 reads find: the services (active feedback categories), one service definition,
the requests (citizen reports) by filters, by id or by token — each already in the specification's shape.

A request shows only what is public: the rounded point, the place text and commune (never the exact address),
the handler's public answer; never the citizen's name, phone, e-mail or exact address (`ReportContact` is not
even read here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.feedback.models import FeedbackCategory, Report, ReportPhoto
from cityops.feedback.open311_shapes import address_of, definition_out, moment, name_of, service_out
from cityops.geo.models import Subject
from cityops.i18n import format_moment, translate
from cityops.incidents.models import Incident

MAX_REQUESTS = 1000  # the specification's default limit of GET requests
MAX_DESCRIPTION = 4000  # the GeoReport v2 request schema's limit (the public form takes longer ones)


@dataclass(frozen=True)
class RequestFilter:
    """GET requests' filters, already checked: ids override every other filter; the window is [start, end]."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


def services(session: Session, lang: str) -> list[dict[str, Any]]:
    """GET services: every active category, in the order of the form."""
    rows = session.scalars(
        select(FeedbackCategory)
        .where(FeedbackCategory.active.is_(True))
        .order_by(FeedbackCategory.position, FeedbackCategory.code)
    )
    return [service_out(category, lang) for category in rows]


def active_category(session: Session, code: str) -> FeedbackCategory | None:
    """The active category of a service code, if any."""
    return session.scalar(
        select(FeedbackCategory).where(FeedbackCategory.code == code, FeedbackCategory.active.is_(True))
    )


def service_codes(session: Session) -> set[str]:
    """Every category's code, active or not (old requests keep theirs)."""
    return set(session.scalars(select(FeedbackCategory.code)))


def definition(session: Session, code: str, lang: str) -> dict[str, Any] | None:
    """GET services/{code}: the service definition, or None for an unknown or inactive code."""
    category = active_category(session, code)
    return None if category is None else definition_out(category, lang)


def _query() -> Any:
    return (
        select(Report, FeedbackCategory, Agency, Subject, Incident.status)
        .join(FeedbackCategory, FeedbackCategory.id == Report.category_id)
        .join(Agency, Agency.id == Report.agency_id)
        .outerjoin(Subject, Subject.id == Report.subject_id)
        .outerjoin(Incident, Incident.id == Report.incident_id)
    )


def _first_photos(session: Session, report_ids: Sequence[int]) -> dict[int, int]:
    if not report_ids:
        return {}
    rows = session.execute(
        select(ReportPhoto.report_id, func.min(ReportPhoto.id))
        .where(ReportPhoto.report_id.in_(report_ids))
        .group_by(ReportPhoto.report_id)
    )
    return {report_id: photo_id for report_id, photo_id in rows}


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def _status_notes(report: Report, incident_status: str | None, lang: str) -> str | None:
    if report.answer:
        return report.answer
    if incident_status:
        return translate(f"open311.status_notes.{incident_status}", lang)
    return None


def _request_out(row: Any, photo_id: int | None, lang: str, public_url: str) -> dict[str, Any]:
    report, category, agency, subject, incident_status = row
    base = public_url.rstrip("/")
    notice = (
        translate("open311.notice.expected", lang, moment=format_moment(report.expected_at, lang))
        if report.expected_at is not None and report.status == "open"
        else None
    )
    return {
        "service_request_id": report.tracking_code,
        "status": report.status,
        "status_notes": _status_notes(report, incident_status, lang),
        "service_name": name_of(category, "name", lang),
        "service_code": category.code,
        "description": _shortened(report.description),
        "agency_responsible": name_of(agency, "name", lang),
        "service_notice": notice,
        "requested_datetime": moment(report.requested_at),
        "updated_datetime": moment(report.updated_at),
        "expected_datetime": moment(report.expected_at),
        "address": address_of(report.place_text, name_of(subject, "name", lang) if subject is not None else ""),
        "address_id": subject.code if subject is not None else None,
        "zipcode": None,
        "lat": report.public_latitude,
        "long": report.public_longitude,
        "media_url": f"{base}/report/{report.tracking_code}/photos/{photo_id}" if photo_id is not None else None,
    }


def _shape(session: Session, rows: Sequence[Any], lang: str, public_url: str) -> list[dict[str, Any]]:
    photos = _first_photos(session, [row[0].id for row in rows])
    return [_request_out(row, photos.get(row[0].id), lang, public_url) for row in rows]


def requests(session: Session, chosen: RequestFilter, lang: str, public_url: str) -> list[dict[str, Any]]:
    """GET requests: by ids (every other filter ignored, as the specification says), or by service codes, statuses
    and the requested time window; newest first, at most MAX_REQUESTS."""
    query = _query()
    if chosen.ids:
        query = query.where(Report.tracking_code.in_(chosen.ids))
    else:
        if chosen.service_codes:
            query = query.where(FeedbackCategory.code.in_(chosen.service_codes))
        if chosen.statuses:
            query = query.where(Report.status.in_(chosen.statuses))
        if chosen.start is not None:
            query = query.where(Report.requested_at >= chosen.start)
        if chosen.end is not None:
            query = query.where(Report.requested_at <= chosen.end)
    rows = session.execute(query.order_by(Report.requested_at.desc(), Report.id.desc()).limit(MAX_REQUESTS)).all()
    return _shape(session, rows, lang, public_url)


def one_request(session: Session, request_id: str, lang: str, public_url: str) -> dict[str, Any] | None:
    """GET requests/{id}: one report by its tracking code, or None."""
    row = session.execute(_query().where(Report.tracking_code == request_id)).first()
    return None if row is None else _shape(session, [row], lang, public_url)[0]


def by_token(session: Session, token: str) -> dict[str, Any] | None:
    """GET tokens/{token}: the request id a token stands for, or None."""
    code = session.scalar(select(Report.tracking_code).where(Report.token == token))
    return None if code is None else {"service_request_id": code, "token": token}
