"""Feedback pages: the public report form and a report's public page (no log-in), and the staff's report view.

Public (anonymous) routes, all Vietnamese first (`?lang=en` for English):
- `GET /report` — the form: category, description, commune and place in words (enough without JavaScript), an
  optional tap on the map (the vendored ECharts, with the province's boundary and communes served here), up to 5
  photos, an optional contact with the notice of how personal data is used and a consent tick;
- `POST /report` — checked as a whole (errors next to each field, what was typed kept, 422), rate-limited per
  client address (429 page saying when to try again), then a redirect to the report's page;
- `GET /report/{code}` — status in words, timeline, answer, photos, rating form once answered; never the contact;
  `POST /report/{code}/rating`; `GET /report/{code}/photos/{id}`;
- `GET /report/map/boundary.geojson`, `GET /report/map/communes.geojson` — what the map needs, nothing more.

Staff: `GET /feedback/reports/{id}` (contact only for those who handle it; another agency's report is a 404) and
`POST /feedback/reports/{id}/merge` (merge the likely duplicate's incidents).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import FileResponse, RedirectResponse, Response

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.feedback import limits, service
from cityops.feedback import photos as photo_files
from cityops.feedback.categories import active_categories, attributes_of, name_of
from cityops.geo import service as geo
from cityops.i18n import translate
from cityops.incidents.service import IncidentError
from cityops.web.deps import client_ip, language, parts
from cityops.web.pages import form_csrf_ok, form_text, render, require_page

router = APIRouter(include_in_schema=False)
GEOJSON = "application/geo+json"
TEXT_FIELDS = ("category", "description", "commune", "place_text", "latitude", "longitude", "name", "phone", "email")
MAX_FORM_FILES = 20
MAX_ID = 2**62


def _t(key: str, lang: str, **params: Any) -> str:
    return translate(f"feedback.{key}", lang, **params)


def _client_key(request: Request, what: str) -> str:
    return f"{what}:{client_ip(request) or 'unknown'}"


def _limited(request: Request, what: str) -> int | None:
    """Count this public POST of the client; the seconds to wait when over the limit."""
    settings = parts(request).settings
    with parts(request).db.writing() as session:
        return limits.hit(
            session,
            _client_key(request, what),
            parts(request).clock(),
            settings.feedback_rate_limit,
            settings.feedback_rate_window_seconds,
        )


def _too_many(request: Request, wait: int) -> Response:
    minutes = max((wait + 59) // 60, 1)
    context = {
        "body_vi": translate("feedback.limited.body", "vi", minutes=minutes),
        "body_en": translate("feedback.limited.body", "en", minutes=minutes),
    }
    response = render(request, "feedback/public_limited.html", context, status_code=429)
    response.headers["Retry-After"] = str(wait)
    return response


def _not_found(request: Request, code: str) -> Response:
    return render(request, "feedback/public_not_found.html", {"code": code[:40]}, status_code=404)


# --- the public form ---------------------------------------------------------------------------------------


@dataclass
class ReportForm:
    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)  # (field id, message)
    notice: str = ""

    def add(self, field_id: str, message: str) -> None:
        self.errors.setdefault(field_id, []).append(message)
        self.summary.append((field_id, message))


def _form_context(session: Session, settings: Any, lang: str, form: ReportForm) -> dict[str, Any]:
    categories = [
        {
            "code": category.code,
            "name": name_of(category, lang),
            "description": category.description_en if lang == "en" else category.description_vi,
            "group": category.group,
            "attributes": [
                {
                    **attribute,
                    "label": attribute.get(f"description_{lang}") or attribute["description_vi"],
                    "options": [
                        {"key": value["key"], "name": value.get(f"name_{lang}") or value["name_vi"]}
                        for value in attribute.get("values", [])
                    ],
                }
                for attribute in attributes_of(category)
            ],
        }
        for category in active_categories(session)
    ]
    communes = [
        {"code": commune.code, "name": commune.name_vi, "lat": commune.latitude, "lon": commune.longitude}
        for commune in geo.province_communes(session, settings.province_code)
    ]
    return {
        "form": form,
        "categories": categories,
        "communes": communes,
        "max_photos": photo_files.MAX_PHOTOS,
        "max_photo_mb": f"{settings.max_photo_bytes / 1024 / 1024:.0f}",
        "retention_days": settings.feedback_retention_days,
    }


def _blank() -> dict[str, Any]:
    return {name: "" for name in TEXT_FIELDS} | {"address": "", "consent": False, "attributes": {}}


@router.get("/report")
async def report_form(request: Request) -> Response:
    """The public form (no log-in)."""
    app_parts = parts(request)
    lang = language(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return _form_context(session, app_parts.settings, lang, ReportForm(_blank()))

    return render(request, "feedback/public_form.html", await run_in_threadpool(run))


def _values_of(form: FormData) -> dict[str, Any]:
    values = _blank()
    for name in TEXT_FIELDS:
        values[name] = form_text(form.get(name), 6000 if name == "description" else 600)
    values["address"] = form_text(form.get("address"), 600)
    values["consent"] = form.get("consent") in ("1", "on", "yes", "true")
    values["attributes"] = {
        key: form_text(value, 600)
        for key, value in form.multi_items()
        if key.startswith("attr.") and isinstance(value, str)
    }
    return values


def _number(text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return float("nan")


def _submission(values: dict[str, Any], photos: list[service.PhotoIn]) -> service.Submission:
    category = values["category"]
    prefix = f"attr.{category}."
    attributes = {
        key.removeprefix(prefix): value
        for key, value in values["attributes"].items()
        if key.startswith(prefix) and value
    }
    latitude, longitude = _number(values["latitude"]), _number(values["longitude"])
    return service.Submission(
        category_code=category,
        description=values["description"],
        latitude=latitude,
        longitude=longitude,
        subject_code=values["commune"] or None,
        place_text=values["place_text"],
        contact=service.ContactIn(
            name=values["name"], phone=values["phone"], email=values["email"], address=values["address"]
        ),
        photos=photos,
        attributes=attributes,
        source="web",
    )


def _field_id(error: service.ReportError, category: str) -> str:
    if error.field.startswith("attribute_"):
        return f"attr.{category}.{error.field.removeprefix('attribute_')}"
    return error.field


@router.post("/report")
async def report_submit(request: Request) -> Response:
    """Check and file a report; errors come back in the form (422) with what was typed; success redirects to the
    report's page."""
    app_parts = parts(request)
    settings = app_parts.settings
    lang = language(request)
    async with request.form(max_files=MAX_FORM_FILES, max_fields=200) as form:
        values = _values_of(form)
        photos: list[service.PhotoIn] = []
        for upload in form.getlist("photos"):
            if isinstance(upload, UploadFile) and (upload.filename or upload.size):
                content = await upload.read(settings.max_photo_bytes + 1)
                if upload.filename or content:
                    photos.append(service.PhotoIn(upload.filename or "", content, upload.content_type or ""))
        csrf_ok = form_csrf_ok(request, form)
    chosen_photos = len(photos)
    report_form_ = ReportForm(values)

    def show(status: int) -> Response:
        with app_parts.db.reading() as session:
            context = _form_context(session, settings, lang, report_form_)
        return render(request, "feedback/public_form.html", {**context, "photos_chosen": chosen_photos}, status)

    if not csrf_ok:
        report_form_.add("form", _t("form.csrf_failed", lang))
        return await run_in_threadpool(show, 403)
    wait = await run_in_threadpool(_limited, request, "report")
    if wait is not None:
        return _too_many(request, wait)
    submission = _submission(values, photos)
    consent_missing = submission.contact.given and not values["consent"]

    def run() -> str | list[service.ReportError]:
        with app_parts.db.reading() as session:
            problems = service.validate(session, settings, submission)
        if consent_missing:
            problems = [*problems, service.error("consent", "consent_required")]
        if problems:
            return problems
        try:
            with app_parts.db.writing() as session:
                return service.submit_report(session, settings, app_parts.clock(), submission).tracking_code
        except service.FeedbackError as exc:
            return exc.errors

    outcome = await run_in_threadpool(run)
    if isinstance(outcome, str):
        return RedirectResponse(f"/report/{quote(outcome)}?new=1", status_code=303)
    for problem in outcome:
        report_form_.add(
            _field_id(problem, values["category"]), problem.message_en if lang == "en" else problem.message_vi
        )
    return await run_in_threadpool(show, 422)


# --- the map's data (public: boundaries and commune centres only) --------------------------------------------


@router.get("/report/map/boundary.geojson")
async def map_boundary(request: Request) -> Response:
    """The province's boundary for the form's map."""
    try:
        body = geo.boundary_document(parts(request).settings.province_code)
    except ValueError:
        return Response(b'{"type":"FeatureCollection","features":[]}', media_type=GEOJSON)
    return Response(body, media_type=GEOJSON, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/report/map/communes.geojson")
async def map_communes(request: Request) -> Response:
    """The province's communes and wards as points at their centres (code and name only)."""
    app_parts = parts(request)

    def run() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            communes = geo.province_communes(session, app_parts.settings.province_code)
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": commune.code,
                    "geometry": {"type": "Point", "coordinates": [commune.longitude, commune.latitude]},
                    "properties": {"code": commune.code, "name": commune.name_vi},
                }
                for commune in communes
                if commune.latitude is not None and commune.longitude is not None
            ],
        }

    document = await run_in_threadpool(run)
    return Response(orjson.dumps(document), media_type=GEOJSON, headers={"Cache-Control": "public, max-age=3600"})


# --- a report's public page --------------------------------------------------------------------------------


def _public_context(request: Request, code: str, lang: str) -> dict[str, Any] | None:
    with parts(request).db.reading() as session:
        try:
            report = service.by_code(session, code)
        except service.ReportNotFound:
            return None
        return {"report": service.public_view(report, lang, session)}


@router.get("/report/{code}")
async def report_page(request: Request, code: str) -> Response:
    """A report's public page: never the citizen's name, phone, e-mail or address."""
    lang = language(request)
    context = await run_in_threadpool(_public_context, request, code, lang)
    if context is None:
        return _not_found(request, code)
    if context["report"]["tracking_code"] != code:
        return RedirectResponse(f"/report/{context['report']['tracking_code']}", status_code=307)
    context["new"] = request.query_params.get("new") == "1"
    context["rating_errors"] = {}
    context["rated"] = request.query_params.get("rated") == "1"
    return render(request, "feedback/public_report.html", context)


@router.post("/report/{code}/rating")
async def report_rating(request: Request, code: str) -> Response:
    """The citizen's rating of the answer (once, only when answered)."""
    app_parts = parts(request)
    lang = language(request)
    form = await request.form()
    if not form_csrf_ok(request, form):
        context = await run_in_threadpool(_public_context, request, code, lang)
        if context is None:
            return _not_found(request, code)
        context["rating_errors"] = {"rating": [_t("form.csrf_failed", lang)]}
        return render(request, "feedback/public_report.html", context, status_code=403)
    wait = await run_in_threadpool(_limited, request, "report")
    if wait is not None:
        return _too_many(request, wait)
    rating, comment = form_text(form.get("rating"), 10), form_text(form.get("comment"), 3000)

    def run() -> str | list[service.ReportError] | None:
        try:
            with app_parts.db.writing() as session:
                return service.rate(session, app_parts.clock(), code, rating, comment).tracking_code
        except service.ReportNotFound:
            return None
        except service.FeedbackError as exc:
            return exc.errors

    outcome = await run_in_threadpool(run)
    if outcome is None:
        return _not_found(request, code)
    if isinstance(outcome, str):
        return RedirectResponse(f"/report/{quote(outcome)}?rated=1", status_code=303)
    context = await run_in_threadpool(_public_context, request, code, lang)
    if context is None:  # pragma: no cover - it was there a moment ago
        return _not_found(request, code)
    errors: dict[str, list[str]] = {}
    for problem in outcome:
        errors.setdefault(problem.field, []).append(problem.message_en if lang == "en" else problem.message_vi)
    context.update(rating_errors=errors, typed={"rating": rating, "comment": comment})
    return render(request, "feedback/public_report.html", context, status_code=422)


@router.get("/report/{code}/photos/{photo_id}")
async def report_photo(request: Request, code: str, photo_id: int) -> Response:
    """A photo of a report (re-encoded without metadata when it was received)."""
    app_parts = parts(request)
    if not 0 < photo_id < MAX_ID:
        return _not_found(request, code)

    def run() -> tuple[Any, str] | None:
        with app_parts.db.reading() as session:
            try:
                photo = service.photo_of(session, code, photo_id)
            except service.ReportNotFound:
                return None
        path = photo_files.path_of(app_parts.settings.data_dir, photo.storage_key)
        return None if path is None else (path, photo.content_type)

    found = await run_in_threadpool(run)
    if found is None:
        return _not_found(request, code)
    return FileResponse(found[0], media_type=found[1], headers={"Cache-Control": "public, max-age=86400"})


# --- the staff's view ---------------------------------------------------------------------------------------


def _staff_context(request: Request, principal: Principal, report_id: int, lang: str) -> dict[str, Any] | None:
    with parts(request).db.reading() as session:
        try:
            report = service.staff_report(session, principal, report_id)
        except service.ReportNotFound:
            return None
        return {"report": service.handler_view(session, principal, report, lang)}


def _staff_not_found(request: Request, report_id: int | str) -> Response:
    return render(request, "feedback/report_not_found.html", {"number": str(report_id)[:20]}, status_code=404)


@router.get("/feedback/reports/{report_id}")
async def staff_report_page(
    request: Request, report_id: int, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """A report for the staff: contact (only for its handlers), photos, the incident, a likely duplicate."""
    lang = language(request)
    context = None
    if 0 < report_id < MAX_ID:
        context = await run_in_threadpool(_staff_context, request, principal, report_id, lang)
    if context is None:
        return _staff_not_found(request, report_id)
    context["notice"] = _t("staff.merged", lang) if request.query_params.get("merged") == "1" else ""
    return render(request, "feedback/report_detail.html", context)


@router.post("/feedback/reports/{report_id}/merge")
async def staff_report_merge(
    request: Request, report_id: int, principal: Principal = Depends(require_page("handle_incidents"))
) -> Response:
    """Merge the report's incident into its likely duplicate's (incidents.service.merge)."""
    app_parts = parts(request)
    lang = language(request)
    form = await request.form()
    if not 0 < report_id < MAX_ID:
        return _staff_not_found(request, report_id)

    def run() -> tuple[int, str]:
        if not form_csrf_ok(request, form):
            return 403, _t("form.csrf_failed", lang)
        try:
            with app_parts.db.writing() as session:
                service.merge_duplicate(
                    session, principal, Actor.of(principal, client_ip(request)), app_parts.clock(), report_id
                )
        except service.ReportNotFound:
            raise
        except service.FeedbackError as exc:
            return 409, exc.errors[0].message_en if lang == "en" else exc.errors[0].message_vi
        except IncidentError as exc:
            return (404 if exc.code == "not_found" else 409), exc.message_en if lang == "en" else exc.message_vi
        return 303, ""

    try:
        status, failure = await run_in_threadpool(run)
    except service.ReportNotFound:
        return _staff_not_found(request, report_id)
    if status == 303:
        return RedirectResponse(f"/feedback/reports/{report_id}?merged=1", status_code=303)
    context = await run_in_threadpool(_staff_context, request, principal, report_id, lang)
    if context is None:
        return _staff_not_found(request, report_id)
    context["error"] = failure
    return render(request, "feedback/report_detail.html", context, status_code=status)
