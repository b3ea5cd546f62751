"""The rules of the camera registry: checking what is typed or sent, creating, updating and disabling cameras (each
change audited), importing a CSV, who may see which camera, and the camera as its viewers may see it.

A camera is seen by province-wide roles and by the users and keys of its owner agency's subtree; to anyone else it
does not exist (404). Credentials are kept encrypted (`cityops.crypto`) and never leave the server: an answer says
only whether they are set.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityops import crypto
from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.cameras.models import ONLINE, STATUSES, STREAM_KINDS, Camera, CameraCheck
from cityops.geo import geometry
from cityops.geo.models import Subject
from cityops.geo.places_file import PlaceFileError, column_key, decode
from cityops.geo.service import RowRejected, nearest_commune, province_communes, province_geometry, resolve_commune
from cityops.i18n import both

CODE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,55}")  # the subject code camera.<code> holds 64
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_:>=.-]{0,39}")
MAX_TAGS = 20
MAX_URL = 2000
BOUNDARY_TOLERANCE_KM = 2.0
MAX_IMPORT_ROWS = 2000
SUBJECT_PREFIX = "camera."
FIELDS = (
    "code",
    "name_vi",
    "name_en",
    "latitude",
    "longitude",
    "commune",
    "address",
    "owner",
    "stream_url",
    "snapshot_url",
    "onvif_url",
    "username",
    "password",
    "tags",
    "enabled",
    "probe_seconds",
    "offline_alert_minutes",
)
# CSV headers (folded: no diacritics, lower case, "_" between words) → field.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("code", "ma", "ma_camera", "id"),
    "name_vi": ("name_vi", "name", "ten", "ten_camera", "ten_vi", "ten_tieng_viet"),
    "name_en": ("name_en", "ten_en", "ten_tieng_anh"),
    "latitude": ("latitude", "lat", "vi_do"),
    "longitude": ("longitude", "lon", "lng", "long", "kinh_do"),
    "commune": ("commune", "xa_phuong", "xa", "phuong", "ma_xa", "ma_xa_phuong"),
    "address": ("address", "dia_chi", "vi_tri"),
    "owner": ("owner", "owner_agency", "agency", "co_quan", "co_quan_quan_ly", "don_vi_quan_ly", "chu_quan"),
    "stream_url": ("stream_url", "stream", "luong", "luong_video", "duong_dan_luong", "url_luong"),
    "snapshot_url": ("snapshot_url", "snapshot", "anh", "anh_chup", "duong_dan_anh", "url_anh"),
    "onvif_url": ("onvif_url", "onvif", "dia_chi_onvif"),
    "username": ("username", "user", "ten_dang_nhap", "tai_khoan"),
    "password": ("password", "mat_khau"),
    "tags": ("tags", "the", "nhan"),
    "enabled": ("enabled", "hoat_dong", "bat"),
    "probe_seconds": ("probe_seconds", "chu_ky_kiem_tra", "giay_kiem_tra"),
    "offline_alert_minutes": ("offline_alert_minutes", "phut_canh_bao", "canh_bao_sau_phut"),
}
ALIASES = {alias: name for name, aliases in HEADER_ALIASES.items() for alias in aliases}
TRUE_WORDS = {"1", "true", "yes", "co", "x", "on", "bat"}
FALSE_WORDS = {"0", "false", "no", "khong", "off", "tat"}


class CameraNotFound(LookupError):
    """No camera with this code that the caller may see."""


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field: a message `cameras.error.<code>` with its parameters."""

    field: str
    code: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def messages(self) -> tuple[str, str]:
        return both(f"cameras.error.{self.code}", **self.params)

    def out(self) -> dict[str, Any]:
        message_vi, message_en = self.messages()
        return {"field": self.field, "code": self.code, "message_vi": message_vi, "message_en": message_en}


class CameraInvalid(ValueError):
    """What was sent cannot be kept: every problem, field by field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__(", ".join(p.code for p in problems))
        self.problems = problems


# --- who sees what ---------------------------------------------------------------------------------------------


def may_see(principal: Principal, camera: Camera) -> bool:
    """Province-wide roles see every camera; others only their agency subtree's."""
    owner = camera.owner_agency_id
    return principal.province_wide or (owner is not None and owner in principal.agency_ids)


def visible_condition(principal: Principal) -> Any:
    """A WHERE condition on cameras for what the principal may see."""
    if principal.province_wide:
        return Camera.id.is_not(None)
    return Camera.owner_agency_id.in_(sorted(principal.agency_ids) or [0])


def get_camera(session: Session, principal: Principal, code: str) -> Camera:
    """The camera with this code if the principal may see it, else CameraNotFound."""
    camera = session.scalar(select(Camera).where(Camera.code == code[:64]))
    if camera is None or not may_see(principal, camera):
        raise CameraNotFound(code)
    return camera


def list_cameras(
    session: Session, principal: Principal, *, status: str = "", commune: str = "", limit: int = 500, offset: int = 0
) -> list[Camera]:
    """The cameras the principal may see, by code."""
    query = select(Camera).where(visible_condition(principal))
    if status:
        query = query.where(Camera.status == status)
    if commune:
        query = query.join(Subject, Subject.id == Camera.commune_id).where(Subject.code == commune)
    return list(session.scalars(query.order_by(Camera.code).limit(limit).offset(offset)))


# --- checking what was typed or sent ---------------------------------------------------------------------------


def stream_kind_of(url: str) -> str | None:
    """The stream's kind from its URL: rtsp://… → rtsp, http(s)://….m3u8 → hls, other http(s) → mjpeg; "" → none."""
    if not url:
        return "none"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return "rtsp"
    if scheme in ("http", "https"):
        return "hls" if parts.path.lower().endswith(".m3u8") else "mjpeg"
    return None


def _text(raw: dict[str, Any], name: str, limit: int, problems: list[FieldProblem], *, required: bool = False) -> str:
    value = raw.get(name, "")
    if value is None:
        value = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        problems.append(FieldProblem(name, "not_text"))
        return ""
    value = value.strip()
    if "\x00" in value or (any(ch in value for ch in "\r\n") and name != "address"):
        problems.append(FieldProblem(name, "bad_characters"))
        return ""
    if len(value) > limit:
        problems.append(FieldProblem(name, "too_long", {"limit": limit}))
        return ""
    if required and not value:
        problems.append(FieldProblem(name, "required"))
    return value


def _number(raw: dict[str, Any], name: str, low: float, high: float, problems: list[FieldProblem]) -> float | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            problems.append(FieldProblem(name, "not_number", {"value": text[:40]}))
            return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        problems.append(FieldProblem(name, "not_number", {"value": str(value)[:40]}))
        return None
    if not low <= float(value) <= high:
        problems.append(FieldProblem(name, "out_of_range", {"low": low, "high": high}))
        return None
    return float(value)


def _integer(raw: dict[str, Any], name: str, low: int, high: int, problems: list[FieldProblem]) -> int | None:
    number = _number(raw, name, low, high, problems)
    if number is None:
        return None
    if number != int(number):
        problems.append(FieldProblem(name, "not_integer"))
        return None
    return int(number)


def _url(raw: dict[str, Any], name: str, schemes: tuple[str, ...], problems: list[FieldProblem]) -> str:
    url = _text(raw, name, MAX_URL, problems)
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        problems.append(FieldProblem(name, "bad_url", {"schemes": ", ".join(f"{s}://" for s in schemes)}))
        return ""
    if parts.username or parts.password:
        problems.append(FieldProblem(name, "credentials_in_url"))
        return ""
    if any(ch.isspace() for ch in url):
        problems.append(FieldProblem(name, "bad_url", {"schemes": ", ".join(f"{s}://" for s in schemes)}))
        return ""
    return url


def parse_tags(value: Any, problems: list[FieldProblem]) -> list[str] | None:
    """Tags as a list or as text separated by commas, semicolons or spaces; lower case."""
    if value is None:
        return None
    if isinstance(value, str):
        items = [item for item in re.split(r"[,;\s]+", value) if item]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        problems.append(FieldProblem("tags", "bad_tags"))
        return None
    tags: list[str] = []
    for item in items:
        tag = item.strip().lower()
        if not TAG_PATTERN.fullmatch(tag):
            problems.append(FieldProblem("tags", "bad_tag", {"tag": tag[:40]}))
            return None
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        problems.append(FieldProblem("tags", "too_many_tags", {"limit": MAX_TAGS}))
        return None
    return tags


def _flag(value: Any, problems: list[FieldProblem]) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    problems.append(FieldProblem("enabled", "bad_flag", {"value": text[:20]}))
    return None


@dataclass
class Checker:
    """Checks a camera's fields against the province (boundary, communes) and the agencies."""

    session: Session
    province_code: str
    communes: list[Any] = field(default_factory=list)
    boundary: dict[str, Any] | None = None
    agencies: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.communes = province_communes(self.session, self.province_code)
        self.boundary = province_geometry(self.province_code)
        self.agencies = {code: id_ for code, id_ in self.session.execute(select(Agency.code, Agency.id))}

    def check(self, raw: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """The values to store (only those given, when updating), or CameraInvalid with every problem."""
        problems: list[FieldProblem] = []
        unknown = sorted(set(raw) - set(FIELDS))
        for name in unknown[:5]:
            problems.append(FieldProblem(str(name)[:40], "unknown_field", {"field": str(name)[:40]}))
        values: dict[str, Any] = {}
        given = set(raw) if not creating else set(FIELDS)
        if creating:
            code = _text(raw, "code", 64, problems, required=True).lower()
            if code and not CODE_PATTERN.fullmatch(code):
                problems.append(FieldProblem("code", "bad_code"))
            values["code"] = code
        if "name_vi" in given:
            values["name_vi"] = _text(raw, "name_vi", 255, problems, required=True)
        if "name_en" in given:
            values["name_en"] = _text(raw, "name_en", 255, problems)
        if "address" in given:
            values["address"] = _text(raw, "address", 500, problems).replace("\r", " ").replace("\n", " ")
        if {"latitude", "longitude", "commune"} & given:
            latitude = _number(raw, "latitude", -90, 90, problems)
            longitude = _number(raw, "longitude", -180, 180, problems)
            if latitude is None and not any(p.field == "latitude" for p in problems):
                problems.append(FieldProblem("latitude", "required"))
            if longitude is None and not any(p.field == "longitude" for p in problems):
                problems.append(FieldProblem("longitude", "required"))
            commune_text = _text(raw, "commune", 255, problems)
            commune = None
            if latitude is not None and longitude is not None:
                if self.boundary is not None:
                    distance = geometry.distance_km(self.boundary, longitude, latitude)
                    if distance > BOUNDARY_TOLERANCE_KM:
                        problems.append(FieldProblem("latitude", "outside_province", {"distance": round(distance)}))
                try:
                    commune = (
                        resolve_commune(self.communes, commune_text)
                        if commune_text
                        else nearest_commune(self.communes, latitude, longitude)
                    )
                except RowRejected as exc:
                    problems.append(FieldProblem("commune", exc.code, {"value": commune_text[:80], **exc.params}))
            values.update(latitude=latitude, longitude=longitude, commune_id=commune.id if commune else None)
        if "owner" in given:
            owner = _text(raw, "owner", 64, problems) or ("cong_an_tinh" if creating else "")
            if owner and owner not in self.agencies:
                problems.append(FieldProblem("owner", "unknown_agency", {"value": owner}))
            elif owner:
                values["owner_agency_id"] = self.agencies[owner]
            elif not creating:
                problems.append(FieldProblem("owner", "required"))
        if "stream_url" in given:
            stream = _url(raw, "stream_url", ("rtsp", "rtsps", "http", "https"), problems)
            values["stream_url"] = stream
            values["stream_kind"] = stream_kind_of(stream) or "none"
        if "snapshot_url" in given:
            values["snapshot_url"] = _url(raw, "snapshot_url", ("http", "https"), problems)
        if "onvif_url" in given:
            values["onvif_url"] = _url(raw, "onvif_url", ("http", "https"), problems)
        if "username" in given or "password" in given:
            username = _text(raw, "username", 128, problems)
            password = _text(raw, "password", 256, problems)
            if password and not username:
                problems.append(FieldProblem("username", "password_without_user"))
            values["_credentials"] = {"username": username, "password": password} if username else {}
        if "tags" in given:
            tags = parse_tags(raw.get("tags"), problems)
            values["tags"] = tags if tags is not None else []
        if "enabled" in given:
            flag = _flag(raw.get("enabled"), problems)
            values["enabled"] = True if flag is None and creating else flag
            if values["enabled"] is None:
                del values["enabled"]
        if "probe_seconds" in given:
            seconds = _integer(raw, "probe_seconds", 10, 86_400, problems)
            if seconds is not None or creating:
                values["probe_seconds"] = seconds or 60
        if "offline_alert_minutes" in given:
            minutes = _integer(raw, "offline_alert_minutes", 0, 10_080, problems)
            if minutes is not None or creating:
                values["offline_alert_minutes"] = 10 if minutes is None else minutes
        if (
            creating
            and not values.get("stream_url")
            and not values.get("snapshot_url")
            and "stream_url" not in {p.field for p in problems}
        ):
            problems.append(FieldProblem("stream_url", "no_source"))
        if problems:
            raise CameraInvalid(problems)
        return values


# --- changing the registry -------------------------------------------------------------------------------------


def _subject(session: Session, camera: Camera) -> int:
    """The camera's subject (kind entity, code camera.<code>, below its commune): found or made."""
    code = f"{SUBJECT_PREFIX}{camera.code}"
    subject = session.scalar(select(Subject).where(Subject.code == code))
    if subject is None:
        subject = Subject(code=code, kind="entity", name_vi=camera.name_vi, name_en=camera.name_en or camera.name_vi)
        subject.search_key = camera.code
        session.add(subject)
    subject.name_vi = camera.name_vi
    subject.name_en = camera.name_en or camera.name_vi
    subject.parent_id = camera.commune_id
    subject.latitude = camera.latitude
    subject.longitude = camera.longitude
    session.flush()
    return subject.id


def _audit_details(values: dict[str, Any]) -> dict[str, Any]:
    details = {k: v for k, v in values.items() if not k.startswith("_")}
    if "_credentials" in values:
        details["credentials"] = "set" if values["_credentials"] else "cleared"
    return details


def create_camera(session: Session, actor: Actor, now: datetime, secret_key: str, values: dict[str, Any]) -> Camera:
    """Register a checked camera (Checker.check(creating=True)); CameraInvalid when its code is taken."""
    if session.scalar(select(Camera.id).where(Camera.code == values["code"])) is not None:
        raise CameraInvalid([FieldProblem("code", "code_taken", {"code": values["code"]})])
    credentials = values.get("_credentials") or {}
    camera = Camera(
        **{k: v for k, v in values.items() if not k.startswith("_")},
        credentials=crypto.encrypt_json(secret_key, credentials),
        status="unknown",
        status_since=now,
        next_probe_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(camera)
    session.flush()
    camera.subject_id = _subject(session, camera)
    audit(session, actor, "camera.create", "camera", camera.code, now, _audit_details(values))
    return camera


def update_camera(
    session: Session, actor: Actor, now: datetime, secret_key: str, camera: Camera, values: dict[str, Any]
) -> dict[str, Any]:
    """Change a camera with checked values (Checker.check(creating=False)); what changed (without secrets)."""
    changed: dict[str, Any] = {}
    for name, value in values.items():
        if name == "_credentials":
            camera.credentials = crypto.encrypt_json(secret_key, value)
            changed["credentials"] = "set" if value else "cleared"
        elif getattr(camera, name) != value:
            changed[name] = value
            setattr(camera, name, value)
    if not camera.stream_url and not camera.snapshot_url:
        raise CameraInvalid([FieldProblem("stream_url", "no_source")])
    if not changed:
        return changed
    camera.updated_at = now
    if {"stream_url", "snapshot_url", "credentials", "enabled"} & set(changed):
        camera.next_probe_at = now  # probe again soon with what changed
    if changed.get("enabled") is False:
        camera.status, camera.status_since = "unknown", now
    camera.subject_id = _subject(session, camera)
    action = "camera.disable" if changed.get("enabled") is False else "camera.update"
    audit(session, actor, action, "camera", camera.code, now, changed)
    return changed


def credentials_of(camera: Camera, secret_key: str) -> tuple[str, str] | None:
    """The camera's user name and password (server side only), or None."""
    try:
        values = crypto.decrypt_json(secret_key, camera.credentials)
    except crypto.SecretsUnreadable:
        return None
    if not values.get("username"):
        return None
    return str(values["username"]), str(values.get("password", ""))


# --- import --------------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did: counts, and every refused row with why (vi and en)."""

    received: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def out(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": len(self.created) + len(self.updated) + len(self.unchanged),
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected_count": len(self.rejected),
            "rejected": self.rejected,
        }


class ImportFileError(ValueError):
    """The whole file cannot be read: code names the problem (problem.<code>)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code, self.params = code, params


def read_csv(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a cameras CSV (UTF-8, a header in Vietnamese or English; comma or semicolon), by line number."""
    try:
        text = decode(data)
    except PlaceFileError as exc:
        raise ImportFileError("camera_csv_unreadable", line=exc.params.get("line", 1)) from exc
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ImportFileError("camera_csv_no_header")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader)
    names = [ALIASES.get(column_key(column), "") for column in header]
    if "code" not in names or "name_vi" not in names:
        raise ImportFileError("camera_csv_no_header")
    rows: list[tuple[int, dict[str, Any]]] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= MAX_IMPORT_ROWS:
            raise ImportFileError("camera_csv_too_many_rows", limit=MAX_IMPORT_ROWS)
        row: dict[str, Any] = {}
        for name, cell in zip(names, cells, strict=False):
            if name:
                row[name] = cell
        rows.append((reader.line_num, row))
    return rows


def import_rows(
    session: Session,
    actor: Actor,
    now: datetime,
    secret_key: str,
    province_code: str,
    rows: list[tuple[int, dict[str, Any]]],
) -> ImportReport:
    """Create or update each good row (by code); refuse each bad one with why. One savepoint per row."""
    report = ImportReport(received=len(rows))
    checker = Checker(session, province_code)
    for line, row in rows:
        code = str(row.get("code", "")).strip().lower()[:64]
        existing = session.scalar(select(Camera).where(Camera.code == code)) if code else None
        try:
            with session.begin_nested():
                if existing is None:
                    camera = create_camera(session, actor, now, secret_key, checker.check(row, creating=True))
                    report.created.append(camera.code)
                else:
                    given = {k: v for k, v in row.items() if k != "code" and (v != "" or k in ("tags",))}
                    if ("username" in given) != ("password" in given):
                        given.setdefault("username", "")
                        given.setdefault("password", "")
                    changed = update_camera(
                        session, actor, now, secret_key, existing, checker.check(given, creating=False)
                    )
                    (report.updated if changed else report.unchanged).append(existing.code)
        except CameraInvalid as exc:
            for problem in exc.problems:
                report.rejected.append({"row": line, "code": code, **problem.out()})
    return report


# --- what viewers see ----------------------------------------------------------------------------------------


def uptime(session: Session, camera_id: int, now: datetime, hours: int) -> float | None:
    """The share (%) of the camera's probes in the last hours that found it online or degraded; None: no probes."""
    rows = session.execute(
        select(CameraCheck.status, func.count())
        .where(CameraCheck.camera_id == camera_id, CameraCheck.checked_at >= now - timedelta(hours=hours))
        .group_by(CameraCheck.status)
    ).all()
    total = sum(count for _, count in rows)
    if not total:
        return None
    up = sum(count for status, count in rows if status in (ONLINE, "degraded"))
    return round(100.0 * up / total, 1)


def recent_checks(session: Session, camera_id: int, limit: int = 20) -> list[CameraCheck]:
    return list(
        session.scalars(
            select(CameraCheck)
            .where(CameraCheck.camera_id == camera_id)
            .order_by(CameraCheck.checked_at.desc(), CameraCheck.id.desc())
            .limit(limit)
        )
    )


def camera_out(session: Session, camera: Camera, now: datetime, *, detail: bool = False) -> dict[str, Any]:
    """A camera as the API answers it: never its credentials, only whether they are set."""
    commune = session.get(Subject, camera.commune_id) if camera.commune_id else None
    owner = session.get(Agency, camera.owner_agency_id) if camera.owner_agency_id else None
    out: dict[str, Any] = {
        "code": camera.code,
        "name_vi": camera.name_vi,
        "name_en": camera.name_en or camera.name_vi,
        "latitude": camera.latitude,
        "longitude": camera.longitude,
        "commune": commune.code if commune else None,
        "commune_name_vi": commune.name_vi if commune else None,
        "commune_name_en": (commune.name_en or commune.name_vi) if commune else None,
        "address": camera.address,
        "owner": owner.code if owner else None,
        "stream_kind": camera.stream_kind,
        "stream_url": camera.stream_url,
        "snapshot_url": camera.snapshot_url,
        "onvif_url": camera.onvif_url,
        "credentials_set": bool(camera.credentials),
        "tags": list(camera.tags or []),
        "enabled": camera.enabled,
        "probe_seconds": camera.probe_seconds,
        "offline_alert_minutes": camera.offline_alert_minutes,
        "status": camera.status if camera.status in STATUSES else "unknown",
        "status_since": camera.status_since.isoformat() if camera.status_since else None,
        "frame_rate": camera.frame_rate,
        "width": camera.width,
        "height": camera.height,
        "last_error": camera.last_error,
        "last_probe_at": camera.last_probe_at.isoformat() if camera.last_probe_at else None,
        "snapshot": f"/cameras/{camera.code}/snapshot.jpg",
        "live": f"/cameras/{camera.code}/live",
    }
    if detail:
        out["uptime_24h"] = uptime(session, camera.id, now, 24)
        out["uptime_7d"] = uptime(session, camera.id, now, 24 * 7)
    return out


__all__ = [
    "STREAM_KINDS",
    "CameraInvalid",
    "CameraNotFound",
    "Checker",
    "FieldProblem",
    "ImportFileError",
    "create_camera",
    "get_camera",
    "import_rows",
    "list_cameras",
    "read_csv",
    "update_camera",
]


def wall_view(session: Session, principal: Principal, lang: str, limit: int = 9) -> dict[str, Any]:
    """The wall's cameras view: counts by status and, for who may watch video, thumbnails (offline ones first)."""
    cameras = [c for c in list_cameras(session, principal) if c.enabled]
    counts: dict[str, int] = {}
    for camera in cameras:
        counts[camera.status] = counts.get(camera.status, 0) + 1
    order = {"offline": 0, "degraded": 1, "online": 2, "unknown": 3}
    shown = (
        sorted(cameras, key=lambda c: (order.get(c.status, 4), c.code))[:limit] if principal.can("view_video") else []
    )
    return {
        "title": both("cameras.wall.title")[0 if lang == "vi" else 1],
        "topics": ["alerts", "cameras"],
        "counts": counts,
        "cameras": [
            {
                "code": c.code,
                "name": c.name_vi if lang == "vi" else c.name_en or c.name_vi,
                "status": c.status,
                "snapshot": f"/cameras/{c.code}/snapshot.jpg",
            }
            for c in shown
        ],
    }


MAP_STATUS = {ONLINE: "online", "degraded": "partial", "offline": "offline", "unknown": "offline"}


def map_features(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The registered cameras the principal may see, as GeoJSON points with their status (in the map layer's words:
    online, partial = degraded, offline) and, for who may watch video, a thumbnail."""
    features = []
    for camera in list_cameras(session, principal, limit=2000):
        if camera.latitude is None or camera.longitude is None or not camera.enabled:
            continue
        up = camera.status in (ONLINE, "degraded")
        properties: dict[str, Any] = {
            "code": camera.code,
            "name_vi": camera.name_vi,
            "name_en": camera.name_en or camera.name_vi,
            "total": 1,
            "online": 1 if up else 0,
            "status": MAP_STATUS.get(camera.status, "offline"),
            "camera_status": camera.status,
            "link": f"/cameras/{camera.code}",
        }
        if principal.can("view_video"):
            properties["thumbnail"] = f"/cameras/{camera.code}/snapshot.jpg"
        features.append(
            {
                "type": "Feature",
                "id": f"camera-{camera.code}",
                "geometry": {"type": "Point", "coordinates": [camera.longitude, camera.latitude]},
                "properties": properties,
            }
        )
    return features
