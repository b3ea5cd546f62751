"""Citizen reports: the one way in (`submit_report`, used by the public form, Open311 and the demo) and the rules
of their life.

- **Submitting** checks everything at once (category, description, place, photos, contact, attributes) and raises
  `FeedbackError` with every problem (nothing is stored then); else it routes the report (category + commune,
  `routing.py`), stores it with its contact (apart) and its photos (re-encoded without metadata, `photos.py`), gives
  it a tracking code (`PA-7K3M-Q9XD`) and an Open311 token, opens its incident
  (`incidents.service.create_from_report`), suggests a likely duplicate and writes `report.create` to the audit log.
- **Answering**: `on_incident_status` is called by `incidents.service.change_status` for citizen incidents: the
  resolution (or rejection reason) becomes the public answer, the report is closed for Open311 and marked on time
  or late against `expected_at` (the incident's deadline); reopening opens it again.
- **Rating**: once answered, the citizen may rate the result once (1–5 and a comment).
- **Seeing**: `public_view` never holds personal data; `handler_view` adds the contact only for those who handle
  the report (`handle_incidents` in the responsible agency's subtree, or `manage_incidents`).
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cityops import live
from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.feedback import photos as photo_files
from cityops.feedback.categories import attributes_of, name_of
from cityops.feedback.models import CLOSED, OPEN, FeedbackCategory, Report, ReportContact, ReportPhoto
from cityops.feedback.privacy import normalise_email, normalise_phone
from cityops.feedback.routing import responsible_agency
from cityops.geo import geometry
from cityops.geo.models import Subject
from cityops.geo.service import nearest_commune, province_communes, province_geometry
from cityops.i18n import both, fold, translate
from cityops.incidents.models import IN_PROGRESS, REJECTED, RESOLVED, Incident, IncidentEvent
from cityops.settings import Settings

MIN_DESCRIPTION, MAX_DESCRIPTION = 15, 5000
MIN_WORDS = 3
MAX_PLACE_TEXT, MAX_NAME, MAX_ADDRESS, MAX_ATTRIBUTE_TEXT = 255, 255, 500, 500
MAX_RATING_COMMENT = 2000
DUPLICATE_KM, DUPLICATE_HOURS = 0.2, 48
PUBLIC_DECIMALS = 3  # about 100 m
BORDER_TOLERANCE_KM = 1.0  # the province's boundary is simplified
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
SEVERITY_OF = {"low": "low", "medium": "medium", "high": "high"}
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_REPEATED = re.compile(r"(\S)\1{7,}")
_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class ReportError:
    """One thing wrong with a submitted report: which field, a code, what to tell the citizen (vi and en)."""

    field: str
    code: str
    message_vi: str
    message_en: str


class FeedbackError(ValueError):
    """A report refused: every problem found, so a form can show them all at once."""

    def __init__(self, errors: list[ReportError]) -> None:
        super().__init__("; ".join(error.code for error in errors))
        self.errors = errors


class ReportNotFound(LookupError):
    """No report by that id or code that the asker may see (whether it exists is not told)."""


@dataclass(frozen=True)
class PhotoIn:
    filename: str
    content: bytes
    content_type: str = ""


@dataclass(frozen=True)
class ContactIn:
    name: str = ""
    phone: str = ""
    email: str = ""
    address: str = ""

    @property
    def given(self) -> bool:
        return any(value.strip() for value in (self.name, self.phone, self.email, self.address))


@dataclass
class Submission:
    """What a citizen sends, from whichever door."""

    category_code: str
    description: str
    latitude: float | None = None
    longitude: float | None = None
    subject_code: str | None = None  # a commune or ward code, when no point is given (or to confirm it)
    place_text: str = ""
    contact: ContactIn = field(default_factory=ContactIn)
    photos: list[PhotoIn] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    source: str = "web"  # web, open311, demo
    api_key_id: int | None = None
    device_id: str = ""


def error(field_name: str, code: str, /, **params: Any) -> ReportError:
    """A ReportError with its messages from the translations (`feedback.err.<code>`)."""
    message_vi, message_en = both(f"feedback.err.{code}", **params)
    return ReportError(field_name, code, message_vi, message_en)


def _clean(value: Any, limit: int | None = None) -> str:
    text = value.replace("\x00", "").strip() if isinstance(value, str) else ""
    return text[:limit] if limit else text


# --- checking ----------------------------------------------------------------------------------------------


def description_errors(text: str) -> list[ReportError]:
    """Why a description is refused: empty, only links, no letters, a run of one character, too short, no words,
    too long. At most one error (the first that applies)."""
    text = _clean(text)
    if not text:
        return [error("description", "description_required")]
    if len(text) > MAX_DESCRIPTION:
        return [error("description", "description_too_long", max=MAX_DESCRIPTION)]
    without_links = _URL.sub(" ", text)
    if _URL.search(text) and len(_WORD.findall(without_links)) < MIN_WORDS:
        return [error("description", "description_links_only")]
    if not any(character.isalpha() for character in text):
        return [error("description", "description_no_letters")]
    if _REPEATED.search(text) or len({character.lower() for character in text if character.isalpha()}) < 4:
        return [error("description", "description_repeated")]
    if len(text) < MIN_DESCRIPTION:
        return [error("description", "description_too_short", min=MIN_DESCRIPTION)]
    if len(_WORD.findall(without_links)) < MIN_WORDS:
        return [error("description", "description_no_words", min=MIN_WORDS)]
    return []


@cache
def _province_shape(province_code: str) -> dict[str, Any] | None:
    return province_geometry(province_code)


def in_province(settings: Settings, latitude: float, longitude: float) -> bool:
    """Whether a point is inside the province (with a little tolerance: the boundary is simplified)."""
    shape = _province_shape(settings.province_code)
    if shape is None:
        return True
    if geometry.contains(shape, longitude, latitude):
        return True
    return geometry.distance_km(shape, longitude, latitude) <= BORDER_TOLERANCE_KM


def _short_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name.replace("\x00", "")
    return (name[:60] or "?").strip() or "?"


def _attribute_value(attribute: dict[str, Any], raw: Any, language_name: str) -> tuple[Any, ReportError | None]:
    code, datatype = attribute["code"], attribute["datatype"]
    field_name = f"attribute_{code}"
    keys = [str(value["key"]) for value in attribute.get("values", [])]
    if datatype == "multivaluelist":
        chosen = raw if isinstance(raw, list) else [raw]
        chosen = [_clean(str(item), 64) for item in chosen if _clean(str(item))]
        if any(item not in keys for item in chosen):
            return None, error(field_name, "attribute_value", name=language_name)
        return chosen, None
    text = _clean(str(raw) if isinstance(raw, (int, float)) else raw)
    if datatype == "singlevaluelist":
        return (text, None) if text in keys else (None, error(field_name, "attribute_value", name=language_name))
    if datatype == "number":
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            return None, error(field_name, "attribute_number", name=language_name)
        return number, None
    if len(text) > MAX_ATTRIBUTE_TEXT:
        return None, error(field_name, "attribute_too_long", name=language_name, max=MAX_ATTRIBUTE_TEXT)
    return text, None


def _empty(raw: Any) -> bool:
    if raw is None:
        return True
    if isinstance(raw, list):
        return not any(_clean(str(item)) for item in raw)
    return isinstance(raw, str) and not _clean(raw)


def attribute_errors(category: FeedbackCategory, given: dict[str, Any]) -> tuple[dict[str, Any], list[ReportError]]:
    """The answers to the category's attributes, checked: unknown codes, required ones missing, values not in the
    list, numbers that are not numbers."""
    definitions = {attribute["code"]: attribute for attribute in attributes_of(category)}
    answers: dict[str, Any] = {}
    errors: list[ReportError] = []
    for code in sorted(set(given) - set(definitions)):
        errors.append(error("attributes", "attribute_unknown", code=_clean(str(code), 64)))
    for code, attribute in definitions.items():
        raw = given.get(code)
        label = attribute.get("description_vi", code)
        if _empty(raw):
            if attribute.get("required"):
                errors.append(error(f"attribute_{code}", "attribute_required", name=label))
            continue
        value, problem = _attribute_value(attribute, raw, label)
        if problem is not None:
            errors.append(problem)
        else:
            answers[code] = value
    return answers, errors


@dataclass
class _Checked:
    category: FeedbackCategory | None = None
    description: str = ""
    latitude: float | None = None
    longitude: float | None = None
    commune: Subject | None = None
    place_text: str = ""
    phone: str = ""
    email: str = ""
    photos: list[photo_files.CleanPhoto] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    errors: list[ReportError] = field(default_factory=list)


def _check(session: Session, settings: Settings, submission: Submission) -> _Checked:
    checked = _Checked()
    errors = checked.errors
    # What: the category and its attributes, the description.
    code = _clean(submission.category_code, 64)
    category = (
        session.scalar(select(FeedbackCategory).where(FeedbackCategory.code == code, FeedbackCategory.active.is_(True)))
        if code
        else None
    )
    if category is None:
        errors.append(error("category", "category_unknown" if code else "category_required", code=code))
    checked.category = category
    errors.extend(description_errors(submission.description))
    checked.description = _clean(submission.description, MAX_DESCRIPTION)
    if category is not None:
        checked.attributes, problems = attribute_errors(category, dict(submission.attributes or {}))
        errors.extend(problems)
    # Where: a point in the province, or a commune; the place in words.
    latitude, longitude = submission.latitude, submission.longitude
    point_given = latitude is not None or longitude is not None
    subject_code = _clean(submission.subject_code or "", 16)
    communes = province_communes(session, settings.province_code)
    if point_given:
        try:
            lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]
            valid = math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180
        except (TypeError, ValueError):
            valid = False
        if not valid:
            errors.append(error("point", "point_invalid"))
        elif not in_province(settings, lat, lon):
            errors.append(error("point", "point_outside"))
        else:
            checked.latitude, checked.longitude = lat, lon
    if subject_code:
        match = next((commune for commune in communes if commune.code == subject_code.zfill(5)), None)
        if match is None:
            errors.append(error("commune", "commune_unknown", code=subject_code))
        else:
            checked.commune = session.get(Subject, match.id)
    elif checked.latitude is not None and checked.longitude is not None:
        nearest = nearest_commune(communes, checked.latitude, checked.longitude)
        checked.commune = session.get(Subject, nearest.id) if nearest else None
    if not point_given and not subject_code:
        errors.append(error("place", "place_required"))
    place_text = _clean(submission.place_text)
    if len(place_text) > MAX_PLACE_TEXT:
        errors.append(error("place_text", "place_text_too_long", max=MAX_PLACE_TEXT))
    checked.place_text = place_text[:MAX_PLACE_TEXT]
    # Photos: how many, how large, what they really are.
    given_photos = [photo for photo in submission.photos if photo.content or photo.filename]
    if len(given_photos) > photo_files.MAX_PHOTOS:
        errors.append(error("photos", "photos_too_many", max=photo_files.MAX_PHOTOS, count=len(given_photos)))
    for photo in given_photos:
        name = _short_name(photo.filename)
        if len(photo.content) > settings.max_photo_bytes:
            megabytes = f"{settings.max_photo_bytes / 1024 / 1024:.0f}"
            errors.append(error("photos", "photo_too_large", name=name, max_mb=megabytes))
            continue
        try:
            checked.photos.append(photo_files.clean(photo.content))
        except photo_files.PhotoRefused as exc:
            errors.append(error("photos", f"photo_{exc.code}", name=name))
    # Who (optional): contact checked, normalised.
    contact = submission.contact
    if contact.phone.strip():
        phone = normalise_phone(contact.phone)
        if phone is None:
            errors.append(error("phone", "phone_invalid"))
        checked.phone = phone or ""
    if contact.email.strip():
        email = normalise_email(contact.email)
        if email is None:
            errors.append(error("email", "email_invalid"))
        checked.email = email or ""
    if len(_clean(contact.name)) > MAX_NAME:
        errors.append(error("name", "name_too_long", max=MAX_NAME))
    if len(_clean(contact.address)) > MAX_ADDRESS:
        errors.append(error("address", "address_too_long", max=MAX_ADDRESS))
    return checked


def validate(session: Session, settings: Settings, submission: Submission) -> list[ReportError]:
    """Every problem of a submission, without storing anything (a form uses it to show all errors at once)."""
    return _check(session, settings, submission).errors


# --- submitting --------------------------------------------------------------------------------------------


def new_tracking_code() -> str:
    """A short code without look-alike characters, e.g. PA-7K3M-Q9XD."""
    letters = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"PA-{letters[:4]}-{letters[4:]}"


def normalise_code(code: str) -> str:
    """A tracking code as typed ("pa 7k3m q9xd", "PA7K3MQ9XD") in its printed form; "" when it cannot be one."""
    letters = re.sub(r"[^0-9A-Z]", "", code.upper()).removeprefix("PA")
    if len(letters) != 8 or any(character not in CODE_ALPHABET for character in letters):
        return ""
    return f"PA-{letters[:4]}-{letters[4:]}"


def _unique_code(session: Session) -> str:
    while True:
        code = new_tracking_code()
        if session.scalar(select(Report.id).where(Report.tracking_code == code)) is None:
            return code


def _incident_description(checked: _Checked, report: Report) -> str:
    """The incident's description: the citizen's words, the place in words and the answers — no personal data."""
    category = checked.category
    lines = [checked.description, ""]
    if checked.place_text:
        lines.append(f"Địa điểm: {checked.place_text}")
    for attribute in attributes_of(category) if category else []:
        if attribute["code"] in checked.attributes:
            value = checked.attributes[attribute["code"]]
            labels = {str(item["key"]): item["name_vi"] for item in attribute.get("values", [])}
            shown = (
                ", ".join(labels.get(str(v), str(v)) for v in value)
                if isinstance(value, list)
                else labels.get(str(value), str(value))
            )
            lines.append(f"{attribute['description_vi']}: {shown}")
    lines.append(f"Mã phản ánh: {report.tracking_code} · /feedback/reports/{report.id}")
    return "\n".join(lines).strip()


def find_duplicate(session: Session, report: Report, now: datetime) -> Report | None:
    """An open report of the same category within DUPLICATE_KM and DUPLICATE_HOURS (the nearest); without a point,
    one of the same commune with the same place in words."""
    since = now - timedelta(hours=DUPLICATE_HOURS)
    base = select(Report).where(
        Report.category_id == report.category_id,
        Report.status == OPEN,
        Report.requested_at >= since,
        Report.id != report.id,
        Report.duplicate_of_id.is_(None),
    )
    if report.latitude is not None and report.longitude is not None:
        spread = DUPLICATE_KM / 111.0 * 2  # a box first (degrees), then the exact distance
        candidates = session.scalars(
            base.where(
                Report.latitude.between(report.latitude - spread, report.latitude + spread),
                Report.longitude.between(report.longitude - spread, report.longitude + spread),
            )
        ).all()
        near = [
            (geometry.haversine_km(report.latitude, report.longitude, other.latitude or 0, other.longitude or 0), other)
            for other in candidates
        ]
        near = [item for item in near if item[0] <= DUPLICATE_KM]
        return min(near, key=lambda item: (item[0], item[1].id))[1] if near else None
    key = fold(report.place_text)
    if report.subject_id is None or not key:
        return None
    for other in session.scalars(base.where(Report.subject_id == report.subject_id).order_by(Report.id)):
        if fold(other.place_text) == key:
            return other
    return None


def submit_report(session: Session, settings: Settings, now: datetime, submission: Submission) -> Report:
    """Check, route, store (photos stripped of metadata), open its incident; raise FeedbackError with every
    problem when refused (nothing is stored then)."""
    from cityops.incidents import service as incidents  # incidents.service calls back into this module

    checked = _check(session, settings, submission)
    if checked.errors:
        raise FeedbackError(checked.errors)
    category = checked.category
    assert category is not None
    commune = checked.commune
    agency = responsible_agency(session, category, commune)
    latitude, longitude = checked.latitude, checked.longitude
    report = Report(
        tracking_code=_unique_code(session),
        token=secrets.token_urlsafe(24),
        category_id=category.id,
        description=checked.description,
        attributes=checked.attributes,
        latitude=latitude,
        longitude=longitude,
        public_latitude=round(latitude, PUBLIC_DECIMALS) if latitude is not None else None,
        public_longitude=round(longitude, PUBLIC_DECIMALS) if longitude is not None else None,
        subject_id=commune.id if commune else None,
        place_text=checked.place_text,
        agency_id=agency.id,
        status=OPEN,
        source=_clean(submission.source, 16) or "web",
        api_key_id=submission.api_key_id,
        device_id=_clean(submission.device_id, 128),
        requested_at=now,
        updated_at=now,
        answer="",
        answered_by="",
        rating_comment="",
    )
    session.add(report)
    session.flush()
    actor = Actor(f"report:{report.tracking_code}", api_key_id=submission.api_key_id)
    contact = submission.contact
    if contact.given:
        session.add(
            ReportContact(
                report_id=report.id,
                name=_clean(contact.name, MAX_NAME),
                phone=checked.phone,
                email=checked.email,
                address=_clean(contact.address, MAX_ADDRESS),
                consent_at=now,
            )
        )
    written: list[str] = []
    try:
        for photo in checked.photos:
            key = photo_files.store(settings.data_dir, photo)
            written.append(key)
            session.add(
                ReportPhoto(
                    report_id=report.id,
                    storage_key=key,
                    content_type=photo.content_type,
                    size=len(photo.content),
                    width=photo.width,
                    height=photo.height,
                    sha256=photo.sha256,
                    created_at=now,
                )
            )
        duplicate = find_duplicate(session, report, now)
        report.duplicate_of_id = duplicate.id if duplicate else None
        severity = SEVERITY_OF.get(str(checked.attributes.get("muc_do", "")), "medium")
        title = category.name_vi + (f" — {commune.name_vi}" if commune else "")
        incident = incidents.create_from_report(
            session,
            actor,
            now,
            source_ref=f"feedback_report:{report.id}",
            title=title,
            description=_incident_description(checked, report),
            category_code=category.incident_category,
            severity=severity,
            agency_code=agency.code,
            subject_code=commune.code if commune else None,
            latitude=latitude,
            longitude=longitude,
            place_text=checked.place_text,
        )
        report.incident_id = incident.id
        report.expected_at = incident.deadline_at
        audit(
            session,
            actor,
            "report.create",
            "report",
            report.id,
            now,
            {
                "tracking_code": report.tracking_code,
                "category": category.code,
                "agency": agency.code,
                "commune": commune.code if commune else None,
                "source": report.source,
                "photos": len(written),
                "contact": contact.given,
                "incident_id": incident.id,
                "duplicate_of": duplicate.tracking_code if duplicate else None,
            },
        )
        session.flush()
        live.report_stored(session, report)
    except BaseException:
        for key in written:
            photo_files.remove(settings.data_dir, key)
        raise
    return report


# --- answering, rating, merging ---------------------------------------------------------------------------


def on_incident_status(session: Session, incident: Incident, now: datetime) -> int:
    """Called when a citizen incident changes status: resolved, closed or rejected → the reports of it (and of the
    incidents merged into it) get the public answer, `answered_at`, `on_time` and Open311 status closed;
    reopened → open again. How many reports changed."""
    merged = select(Incident.id).where(Incident.merged_into_id == incident.id)
    reports = list(
        session.scalars(select(Report).where(or_(Report.incident_id == incident.id, Report.incident_id.in_(merged))))
    )
    agency = session.get(Agency, incident.agency_id)
    for report in reports:
        if incident.status in (RESOLVED, "closed", REJECTED):
            if incident.status == REJECTED:
                answer = incident.reject_reason
            else:
                answer = incident.resolution or report.answer or translate("feedback.page.answer_done", "vi")
            if report.status != CLOSED or report.answer != answer:
                report.answer = answer
                if report.answered_at is None:
                    report.answered_at = now
                    report.on_time = report.expected_at is None or now <= report.expected_at
                report.answered_by = (agency.name_vi if agency else "")[:128]
                report.status = CLOSED
                report.closed_at = report.closed_at or now
                report.updated_at = now
        elif incident.status == IN_PROGRESS and report.status == CLOSED:
            report.status = OPEN
            report.closed_at = None
            report.answered_at = None
            report.on_time = None
            report.updated_at = now
    session.flush()
    return len(reports)


def rate(session: Session, now: datetime, code: str, rating: Any, comment: str = "") -> Report:
    """The citizen's rating of the answer: 1–5 and an optional comment, once, only when answered."""
    report = by_code(session, code)
    errors: list[ReportError] = []
    try:
        value = int(str(rating).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= 5:
        errors.append(error("rating", "rating_invalid"))
    text = _clean(comment)
    if len(text) > MAX_RATING_COMMENT:
        errors.append(error("rating_comment", "rating_comment_too_long", max=MAX_RATING_COMMENT))
    if report.answered_at is None or report.status != CLOSED:
        errors = [error("rating", "rating_not_answered")]
    elif report.rating is not None:
        errors = [error("rating", "rating_twice")]
    if errors:
        raise FeedbackError(errors)
    report.rating, report.rating_comment, report.rated_at, report.updated_at = value, text, now, now
    audit(
        session,
        Actor(f"report:{report.tracking_code}"),
        "report.rate",
        "report",
        report.id,
        now,
        {"tracking_code": report.tracking_code, "rating": value},
    )
    return report


def merge_duplicate(session: Session, principal: Principal, actor: Actor, now: datetime, report_id: int) -> Report:
    """Merge a report's incident into the incident of the report it likely duplicates
    (`incidents.service.merge`); the report then follows the other's answer. IncidentError when the incidents
    cannot be merged; FeedbackError when there is nothing to merge."""
    from cityops.incidents import service as incidents

    report = staff_report(session, principal, report_id)
    original = session.get(Report, report.duplicate_of_id) if report.duplicate_of_id else None
    if original is None or report.incident_id is None or original.incident_id is None:
        raise FeedbackError([error("merge", "merge_nothing")])
    incidents.merge(session, principal, actor, now, report.incident_id, into_id=original.incident_id)
    report.updated_at = now
    audit(
        session,
        actor,
        "report.merge",
        "report",
        report.id,
        now,
        {"tracking_code": report.tracking_code, "into": original.tracking_code},
    )
    return report


# --- seeing ------------------------------------------------------------------------------------------------


def by_code(session: Session, code: str) -> Report:
    """A report by its tracking code (as typed); ReportNotFound otherwise."""
    printed = normalise_code(code)
    report = session.scalar(select(Report).where(Report.tracking_code == printed)) if printed else None
    if report is None:
        raise ReportNotFound(code[:40])
    return report


def may_handle(principal: Principal, report: Report, incident: Incident | None = None) -> bool:
    """Who handles a report (and sees its contact): `manage_incidents`, or `handle_incidents` in the subtree of
    the responsible agency (the report's, or its incident's after a reassignment)."""
    if principal.can("manage_incidents"):
        return True
    if not principal.can("handle_incidents"):
        return False
    agencies = {report.agency_id} | ({incident.agency_id} if incident is not None else set())
    return bool(agencies & set(principal.agency_ids))


def may_see(principal: Principal, report: Report, incident: Incident | None = None) -> bool:
    """Province-wide roles see every report (without contact unless they handle it); agency users their own."""
    if principal.province_wide or may_handle(principal, report, incident):
        return True
    agencies = {report.agency_id} | ({incident.agency_id} if incident is not None else set())
    return principal.can("read_data") and bool(agencies & set(principal.agency_ids))


def staff_report(session: Session, principal: Principal, report_id: int) -> Report:
    """A report the principal may see; ReportNotFound otherwise (another agency's report is "not found")."""
    report = session.get(Report, report_id)
    incident = session.get(Incident, report.incident_id) if report and report.incident_id else None
    if report is None or not may_see(principal, report, incident):
        raise ReportNotFound(str(report_id))
    return report


def _state(report: Report, incident: Incident | None) -> str:
    if report.status == CLOSED:
        return "rejected" if incident is not None and incident.status == REJECTED else "answered"
    if incident is None:
        return "received"
    if incident.merged_into_id is not None:
        return "merged"
    return "in_progress" if incident.status in ("assigned", IN_PROGRESS) else "received"


def _names(item: Any, language: str) -> str:
    if item is None:
        return ""
    return str(item.name_en if language == "en" and item.name_en else item.name_vi)


def public_view(report: Report, language: str = "vi", session: Session | None = None) -> dict[str, Any]:
    """What anyone may see of a report: never its name, phone, e-mail or exact address (nor the exact point)."""
    session = session or Session.object_session(report)
    if session is None:
        raise ValueError("public_view needs a session")
    category = session.get(FeedbackCategory, report.category_id)
    commune = session.get(Subject, report.subject_id) if report.subject_id else None
    agency = session.get(Agency, report.agency_id)
    incident = session.get(Incident, report.incident_id) if report.incident_id else None
    state = _state(report, incident)
    t = lambda key, **params: translate(f"feedback.{key}", language, **params)  # noqa: E731
    photos = session.scalars(select(ReportPhoto).where(ReportPhoto.report_id == report.id).order_by(ReportPhoto.id))
    original = session.get(Report, report.duplicate_of_id) if report.duplicate_of_id else None
    merged_into = None
    if incident is not None and incident.merged_into_id is not None:
        merged_into = session.scalar(
            select(Report.tracking_code).where(Report.incident_id == incident.merged_into_id).order_by(Report.id)
        )
    timeline: list[dict[str, Any]] = [
        {"at": report.requested_at, "kind": "received", "text": t("timeline.received")},
        {"at": report.requested_at, "kind": "routed", "text": t("timeline.routed", agency=_names(agency, language))},
    ]
    if incident is not None:
        started = session.scalar(
            select(IncidentEvent.at)
            .where(IncidentEvent.incident_id == incident.id, IncidentEvent.action.in_(("assigned", "status")))
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
        if started is not None and state != "received":
            timeline.append(
                {
                    "at": started,
                    "kind": "in_progress",
                    "text": t("timeline.in_progress", agency=_names(agency, language)),
                }
            )
    if merged_into:
        timeline.append({"at": report.updated_at, "kind": "merged", "text": t("timeline.merged", code=merged_into)})
    if report.answered_at is not None:
        kind = "rejected" if state == "rejected" else "answered"
        timeline.append({"at": report.answered_at, "kind": kind, "text": t(f"timeline.{kind}")})
    if report.rated_at is not None:
        timeline.append({"at": report.rated_at, "kind": "rated", "text": t("timeline.rated", rating=report.rating)})
    public_attributes: dict[str, Any] = {}
    for attribute in attributes_of(category) if category else []:
        value = (report.attributes or {}).get(attribute["code"])
        if value is not None and attribute["datatype"].endswith("list"):
            labels = {str(item["key"]): item[f"name_{language}"] for item in attribute.get("values", [])}
            values = value if isinstance(value, list) else [value]
            shown = ", ".join(labels.get(str(v), str(v)) for v in values)
            public_attributes[attribute[f"description_{language}"]] = shown
    return {
        "tracking_code": report.tracking_code,
        "category": category.code if category else "",
        "category_name": name_of(category, language) if category else "",
        "group": category.group if category else "",
        "description": report.description,
        "attributes": public_attributes,
        "status": report.status,
        "state": state,
        "state_label": t(f"state.{state}"),
        "commune_code": commune.code if commune else None,
        "commune_name": _names(commune, language),
        "place_text": report.place_text,
        "latitude": report.public_latitude,
        "longitude": report.public_longitude,
        "agency_code": agency.code if agency else "",
        "agency_name": _names(agency, language),
        "requested_at": report.requested_at,
        "updated_at": report.updated_at,
        "expected_at": report.expected_at,
        "answer": report.answer,
        "answered_at": report.answered_at,
        "on_time": report.on_time,
        "rating": report.rating,
        "rated_at": report.rated_at,
        "can_rate": report.status == CLOSED and report.answered_at is not None and report.rating is None,
        "duplicate_of": original.tracking_code if original else None,
        "merged_into": merged_into,
        "photos": [
            {
                "id": photo.id,
                "url": f"/report/{report.tracking_code}/photos/{photo.id}",
                "content_type": photo.content_type,
                "width": photo.width,
                "height": photo.height,
            }
            for photo in photos
        ],
        "timeline": timeline,
    }


def handler_view(session: Session, principal: Principal, report: Report, language: str = "vi") -> dict[str, Any]:
    """The staff's view: the public view, the exact point, the answers, the incident, the duplicate suggestion,
    and — only for those who handle it — the citizen's contact."""
    incident = session.get(Incident, report.incident_id) if report.incident_id else None
    handles = may_handle(principal, report, incident)
    view = public_view(report, language, session)
    contact = session.get(ReportContact, report.id) if handles else None
    original = session.get(Report, report.duplicate_of_id) if report.duplicate_of_id else None
    original_incident = session.get(Incident, original.incident_id) if original and original.incident_id else None
    view.update(
        {
            "id": report.id,
            "exact_latitude": report.latitude,
            "exact_longitude": report.longitude,
            "answers": dict(report.attributes or {}),
            "source": report.source,
            "incident_id": report.incident_id,
            "incident_status": incident.status if incident else None,
            "rating_comment": report.rating_comment,
            "personal_data_removed_at": report.personal_data_removed_at,
            "can_handle": handles,
            "contact": None
            if contact is None
            else {
                "name": contact.name,
                "phone": contact.phone,
                "email": contact.email,
                "address": contact.address,
                "consent_at": contact.consent_at,
            },
            "duplicate": None
            if original is None
            else {"id": original.id, "tracking_code": original.tracking_code, "incident_id": original.incident_id},
            "can_merge": bool(
                handles
                and original_incident is not None
                and incident is not None
                and incident.merged_into_id is None
                and original_incident.status not in ("closed", REJECTED)
            ),
        }
    )
    return view


def photo_of(session: Session, code: str, photo_id: int) -> ReportPhoto:
    """A photo of a report by the report's tracking code; ReportNotFound otherwise."""
    report = by_code(session, code)
    photo = session.scalar(select(ReportPhoto).where(ReportPhoto.id == photo_id, ReportPhoto.report_id == report.id))
    if photo is None:
        raise ReportNotFound(str(photo_id))
    return photo
