"""Open311 GeoReport v2 under /open311/v2/: discovery, services, service definitions, POST of requests (api_key),
tokens, GET of requests with their filters and of one request; every answer in JSON or XML by the extension.

Reads are public (anonymous), as the specification intends; a POST needs `api_key`, a cityops API key whose role
may `submit_reports`. Errors have the specification's shape — `[{"code": 400, "description": "…"}]`, in XML
`<errors><error><code/><description/></error></errors>` — with the HTTP status of the code. The description is in
Vietnamese and English ("… / …"), or in the one language `?lang=` asks for. No answer ever holds the citizen's name,
phone, e-mail or exact address. See docs/open311.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from cityops.accounts import service as accounts
from cityops.clock import LOCAL_TZ
from cityops.feedback import limits, service
from cityops.feedback import open311_data as data
from cityops.feedback.open311_shapes import FORMATS, SPECIFICATION, errors_document, moment, render
from cityops.i18n import LANGUAGES, both, format_moment, translate
from cityops.web.deps import client_ip, parts

router = APIRouter(prefix="/open311/v2", include_in_schema=False)

SPAN = timedelta(days=90)  # the specification's default and largest window of GET requests
MAX_IDS = 1000
EARLIEST, LATEST = 1970, 2100  # years a date filter may name
# The longest value each POST parameter may have (the columns they land in, and the request schema's 4000).
MAX_LENGTHS = {
    "api_key": 200,
    "jurisdiction_id": 200,
    "service_code": 64,
    "lat": 40,
    "long": 40,
    "address_string": 255,
    "address_id": 64,
    "email": 255,
    "device_id": 128,
    "account_id": 128,
    "first_name": 120,
    "last_name": 120,
    "phone": 32,
    "description": 4000,
    "media_url": 2000,
}
MAX_ATTRIBUTE_LENGTH = 1000
ATTRIBUTE = re.compile(r"attribute\[([^\[\]]{1,64})\](\[\])?")
# A key (a citizen app serving many people) may post this many times the per-client limit.
KEY_LIMIT_FACTOR = 20
# When this API's shape or the service list's format last changed (discovery's changeset).
CHANGESET = datetime(2026, 11, 27, tzinfo=LOCAL_TZ)


class Open311Error(Exception):
    """An answer in the specification's error shape: the HTTP status and every (code, description)."""

    def __init__(self, status: int, descriptions: list[str], headers: dict[str, str] | None = None) -> None:
        super().__init__(descriptions[0] if descriptions else str(status))
        self.status = status
        self.descriptions = descriptions
        self.headers = headers or {}


def _chosen_language(request: Request) -> str | None:
    chosen = request.query_params.get("lang")
    return chosen if chosen in LANGUAGES else None


def _data_language(request: Request) -> str:
    return _chosen_language(request) or "vi"


def _message(request: Request, message_id: str, /, **params: Any) -> str:
    """An error description: in the asked language, else "Vietnamese / English"."""
    chosen = _chosen_language(request)
    if chosen is not None:
        return translate(message_id, chosen, **params)
    vietnamese, english = both(message_id, **params)
    return f"{vietnamese} / {english}"


def _fail(request: Request, status: int, message_id: str, /, **params: Any) -> Open311Error:
    return Open311Error(status, [_message(request, message_id, **params)])


def _answer(fmt: str, root: str, document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(render(fmt, root, document), status_code=status, media_type=FORMATS[fmt], headers=headers)


def _error_answer(fmt: str, error: Open311Error) -> Response:
    document = errors_document([(error.status, description) for description in error.descriptions])
    return _answer(fmt if fmt in FORMATS else "json", "errors", document, error.status, error.headers)


def _check_common(request: Request, fmt: str, path_values: tuple[str, ...] = ()) -> None:
    """What every call checks: the format, NUL in the path or query, the jurisdiction."""
    if fmt not in FORMATS:
        raise _fail(request, 404, "open311.error.format", fmt=fmt[:20])
    if any("\x00" in value for value in path_values):
        raise _fail(request, 404, "open311.error.not_found")
    if any("\x00" in name + value for name, value in request.query_params.multi_items()):
        raise _fail(request, 400, "open311.error.nul")
    _check_jurisdiction(request, request.query_params.get("jurisdiction_id"))


def _check_jurisdiction(request: Request, given: str | None) -> None:
    expected = parts(request).settings.open311_jurisdiction
    if given is not None and given.strip() and given.strip() != expected:
        raise _fail(request, 404, "open311.error.jurisdiction", jurisdiction=given.strip()[:100], expected=expected)


async def _guarded(request: Request, fmt: str, work: Callable[[], Response], *path_values: str) -> Response:
    """Check what every call checks, then run the work in a thread; an Open311Error becomes its answer."""
    try:
        _check_common(request, fmt, path_values)
        return await run_in_threadpool(work)
    except Open311Error as error:
        return _error_answer(fmt, error)


# --- discovery and services -------------------------------------------------------------------------------------


@router.get("/discovery.{fmt}")
async def discovery(request: Request, fmt: str) -> Response:
    """Where the GeoReport v2 endpoint is, its formats, whom to ask for a key."""
    settings = parts(request).settings
    base = settings.public_url.rstrip("/")
    lang = _data_language(request)

    def work() -> Response:
        document = {
            "changeset": moment(CHANGESET),
            "contact": translate("open311.discovery.contact", lang, url=f"{base}/"),
            "key_service": translate("open311.discovery.key_service", lang),
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": f"{base}/open311/v2",
                    "changeset": moment(CHANGESET),
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }
        return _answer(fmt, "discovery", document)

    return await _guarded(request, fmt, work)


@router.get("/services.{fmt}")
async def list_services(request: Request, fmt: str) -> Response:
    """Every active category, as the specification's services."""
    lang = _data_language(request)

    def work() -> Response:
        with parts(request).db.reading() as session:
            return _answer(fmt, "services", data.services(session, lang))

    return await _guarded(request, fmt, work)


@router.get("/services/{service_code}.{fmt}")
async def service_definition(request: Request, service_code: str, fmt: str) -> Response:
    """One category's attributes (404 for an unknown code)."""
    lang = _data_language(request)

    def work() -> Response:
        document = None
        if len(service_code) <= MAX_LENGTHS["service_code"]:
            with parts(request).db.reading() as session:
                document = data.definition(session, service_code, lang)
        if document is None:
            raise _fail(request, 404, "open311.error.service_unknown", code=service_code[:64])
        return _answer(fmt, "service_definition", document)

    return await _guarded(request, fmt, work, service_code)


# --- requests ---------------------------------------------------------------------------------------------------


def _parse_moment(request: Request, name: str, text: str) -> datetime:
    """A W3C date-time (2026-11-27T10:00:00+07:00, …Z) or date (the province's midnight); naive times are local."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text, re.ASCII):
            value = datetime.combine(date.fromisoformat(text), time(), tzinfo=LOCAL_TZ)
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})?", text, re.ASCII):
            value = datetime.fromisoformat(text)
            if value.tzinfo is None:
                value = value.replace(tzinfo=LOCAL_TZ)
        else:
            raise ValueError(text)
    except ValueError:
        raise _fail(request, 400, "open311.error.date", name=name, value=text[:40]) from None
    if not EARLIEST <= value.year <= LATEST:
        raise _fail(request, 400, "open311.error.date", name=name, value=text[:40])
    return value.astimezone(UTC)


def _comma_list(text: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item.strip() for item in (text or "").split(",") if item.strip()))


def _window(request: Request, now: datetime) -> tuple[datetime, datetime]:
    query = request.query_params
    start = _parse_moment(request, "start_date", query["start_date"]) if query.get("start_date") else None
    end = _parse_moment(request, "end_date", query["end_date"]) if query.get("end_date") else None
    if start is None and end is None:
        return now - SPAN, now
    if start is None:
        assert end is not None
        return end - SPAN, end
    if end is None:
        return start, start + SPAN
    if end < start:
        raise _fail(request, 400, "open311.error.date_order")
    if end - start > SPAN:
        raise _fail(request, 400, "open311.error.date_span", days=SPAN.days)
    return start, end


def _filters(request: Request, now: datetime, known_codes: set[str]) -> data.RequestFilter:
    query = request.query_params
    ids = _comma_list(query.get("service_request_id"))
    if len(ids) > MAX_IDS:
        raise _fail(request, 400, "open311.error.too_many_ids", limit=MAX_IDS)
    if ids:
        printed = (service.normalise_code(item[:40]) for item in ids)  # as typed: "pa 7k3m q9xd" too
        return data.RequestFilter(ids=tuple(code for code in printed if code))
    codes = _comma_list(query.get("service_code"))
    unknown = [code for code in codes if code not in known_codes]
    if unknown:
        raise _fail(request, 400, "open311.error.service_code_invalid", code=unknown[0][:64])
    statuses = _comma_list(query.get("status"))
    wrong = [status for status in statuses if status not in ("open", "closed")]
    if wrong:
        raise _fail(request, 400, "open311.error.status", status=wrong[0][:40])
    start, end = _window(request, now)
    return data.RequestFilter(service_codes=codes, statuses=statuses, start=start, end=end)


@router.get("/requests.{fmt}")
async def list_requests(request: Request, fmt: str) -> Response:
    """Requests by ids, or by service codes, statuses and time window (the last 90 days by default); newest first,
    at most 1000."""
    app_parts = parts(request)
    lang = _data_language(request)

    def work() -> Response:
        with app_parts.db.reading() as session:
            known = data.service_codes(session)
            chosen = _filters(request, app_parts.clock(), known)
            found = data.requests(session, chosen, lang, app_parts.settings.public_url)
        return _answer(fmt, "service_requests", found)

    return await _guarded(request, fmt, work)


@router.get("/requests/{request_id}.{fmt}")
async def get_request(request: Request, request_id: str, fmt: str) -> Response:
    """One request, as a list of one (the specification's shape)."""
    app_parts = parts(request)
    lang = _data_language(request)

    def work() -> Response:
        found = None
        printed = service.normalise_code(request_id[:40])
        if printed:
            with app_parts.db.reading() as session:
                found = data.one_request(session, printed, lang, app_parts.settings.public_url)
        if found is None:
            raise _fail(request, 404, "open311.error.request_unknown", id=request_id[:40])
        return _answer(fmt, "service_requests", [found])

    return await _guarded(request, fmt, work, request_id)


@router.get("/tokens/{token}.{fmt}")
async def get_token(request: Request, token: str, fmt: str) -> Response:
    """The request id a token stands for."""

    def work() -> Response:
        found = None
        if len(token) <= 64:
            with parts(request).db.reading() as session:
                found = data.by_token(session, token)
        if found is None:
            raise _fail(request, 404, "open311.error.token_unknown", token=token[:64])
        return _answer(fmt, "service_requests", [found])

    return await _guarded(request, fmt, work, token)


# --- POST requests ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostIn:
    """A POST's parameters, already read from the form (and the query string, as some clients send them)."""

    values: dict[str, str]
    attributes: dict[str, Any]


def _read_post(request: Request, form: FormData) -> PostIn:
    values: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    problems: list[str] = []
    items = [*request.query_params.multi_items(), *form.multi_items()]
    for name, raw in items:
        if not isinstance(raw, str):
            continue  # a file: photos come only through the public form
        if "\x00" in name + raw:
            raise _fail(request, 400, "open311.error.nul")
        matched = ATTRIBUTE.fullmatch(name)
        if matched:
            if len(raw) > MAX_ATTRIBUTE_LENGTH:
                problems.append(_message(request, "open311.error.too_long", name=name[:80], limit=MAX_ATTRIBUTE_LENGTH))
                continue
            code = matched[1]
            if matched[2] or code in attributes:  # attribute[code][]=a&attribute[code][]=b, or repeated
                previous = attributes.get(code, [])
                attributes[code] = [*(previous if isinstance(previous, list) else [previous]), raw]
            else:
                attributes[code] = raw
        elif name == "api_key":
            values[name] = raw.strip() if len(raw) <= MAX_LENGTHS[name] else ""  # too long: no key, so 403
        elif name in MAX_LENGTHS:
            if len(raw) > MAX_LENGTHS[name]:
                problems.append(_message(request, "open311.error.too_long", name=name, limit=MAX_LENGTHS[name]))
            values[name] = raw.strip()
    if problems:
        raise Open311Error(400, problems)
    return PostIn(values, attributes)


def _number(request: Request, values: dict[str, str], name: str, bound: float) -> float | None:
    text = values.get(name, "")
    if not text:
        return None
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        raise _fail(request, 400, "open311.error.number", name=name, value=text[:40]) from None
    if not math.isfinite(number) or abs(number) > bound:
        raise _fail(request, 400, "open311.error.number", name=name, value=text[:40])
    return number


def _submission(request: Request, post: PostIn, api_key_id: int | None) -> service.Submission:
    values = post.values
    if not values.get("service_code"):
        raise _fail(request, 400, "open311.error.service_code_missing")
    latitude = _number(request, values, "lat", 90)
    longitude = _number(request, values, "long", 180)
    if (latitude is None) != (longitude is None):
        raise _fail(request, 400, "open311.error.lat_long_pair")
    if latitude is None and not values.get("address_string") and not values.get("address_id"):
        raise _fail(request, 400, "open311.error.location_missing")
    name = " ".join(part for part in (values.get("first_name", ""), values.get("last_name", "")) if part)
    return service.Submission(
        category_code=values["service_code"],
        description=values.get("description", ""),
        latitude=latitude,
        longitude=longitude,
        subject_code=values.get("address_id") or None,
        place_text=values.get("address_string", ""),
        contact=service.ContactIn(name=name, phone=values.get("phone", ""), email=values.get("email", "")),
        attributes=post.attributes,
        source="open311",
        api_key_id=api_key_id,
        device_id=values.get("device_id", ""),
    )


def _key_id(request: Request, key: str, now: datetime) -> int:
    """The id of a valid, unrevoked key whose role may submit reports; 403 otherwise."""
    if not key or not key.isprintable():
        raise _fail(request, 403, "open311.error.api_key")
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        principal, touch_due = accounts.principal_for_api_key(session, key, now)
    if principal is None or principal.api_key_id is None or not principal.can("submit_reports"):
        raise _fail(request, 403, "open311.error.api_key")
    if touch_due:
        with app_parts.db.writing() as session:
            accounts.touch_api_key(session, principal.api_key_id, now)
    return principal.api_key_id


def _rate_limit(request: Request, now: datetime, key: str, limit: int) -> None:
    """Count this POST under the key ("open311:ip:<address>" or "open311:key:<id>"); 429 past the limit."""
    settings = parts(request).settings
    with parts(request).db.writing() as session:
        wait = limits.hit(session, key, now, limit, settings.feedback_rate_window_seconds)
    if wait is not None:
        raise Open311Error(
            429, [_message(request, "open311.error.rate_limited", seconds=wait)], headers={"Retry-After": str(wait)}
        )


def _create(request: Request, post: PostIn) -> dict[str, Any]:
    """Check the key and the limits, then file the report; the POST's answer."""
    app_parts = parts(request)
    now = app_parts.clock()
    limit = app_parts.settings.feedback_rate_limit
    _rate_limit(request, now, f"open311:ip:{client_ip(request) or 'unknown'}", limit)
    api_key_id = _key_id(request, post.values.get("api_key", ""), now)
    _rate_limit(request, now, f"open311:key:{api_key_id}", limit * KEY_LIMIT_FACTOR)
    submission = _submission(request, post, api_key_id)
    try:
        with app_parts.db.writing() as session:
            report = service.submit_report(session, app_parts.settings, now, submission)
            answer = {
                "service_request_id": report.tracking_code,
                "token": report.token,
                "service_notice": translate(
                    "open311.notice.received",
                    _data_language(request),
                    moment=format_moment(report.expected_at, _data_language(request)),
                )
                if report.expected_at is not None
                else None,
                "account_id": None,
            }
    except service.FeedbackError as error:
        chosen = _chosen_language(request)
        descriptions = [
            error_item.message_en
            if chosen == "en"
            else error_item.message_vi
            if chosen == "vi"
            else f"{error_item.message_vi} / {error_item.message_en}"
            for error_item in error.errors
        ]
        raise Open311Error(400, descriptions or [_message(request, "open311.error.invalid")]) from error
    return answer


@router.post("/requests.{fmt}")
async def create_request(request: Request, fmt: str) -> Response:
    """File a citizen's report from an app holding an api_key; the answer holds its id and token."""
    try:
        _check_common(request, fmt)
        try:
            form = await request.form()
        except Exception as exc:  # a body that is no form (or a broken multipart): the client's fault
            raise _fail(request, 400, "open311.error.body") from exc
        post = _read_post(request, form)
        _check_jurisdiction(request, post.values.get("jurisdiction_id"))
        answer = await run_in_threadpool(_create, request, post)
    except Open311Error as error:
        return _error_answer(fmt, error)
    return _answer(fmt, "service_requests", [answer])


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unknown(request: Request, rest: str) -> Response:
    """Anything else under /open311/v2/: the specification's 404."""
    fmt = "xml" if rest.endswith(".xml") else "json"
    return _error_answer(fmt, _fail(request, 404, "open311.error.not_found"))
