"""The rules of geography: the province and its communes/wards (2025) from vietnamadminunits; lookups by name."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session
from unidecode import unidecode
from vietnamadminunits.database.main import MODULE_DIR as ADMIN_UNITS_PACKAGE_DIR

from cityops.geo import geometry
from cityops.geo.models import Place, Subject
from cityops.i18n import fold

if TYPE_CHECKING:
    from cityops.accounts.service import Actor

# The 2025 administrative units (34 provinces, 3,321 communes and wards) as the vietnamadminunits package ships them.
ADMIN_UNITS_DB = ADMIN_UNITS_PACKAGE_DIR / "data" / "dataset.db"
UNIT_TYPE_WORDS = ("thanh pho", "phuong", "xa", "dac khu", "thi tran", "tinh", "tp", "tt", "p", "x")
UNIT_KINDS = ("province", "commune")
_TYPE_EN = {"Phường": "Ward", "Xã": "Commune", "Đặc khu": "Special zone"}


def search_key(name: str) -> str:
    """A name folded for search: no diacritics, lower case, no type word ("Xã", "Phường"), no spaces."""
    folded = re.sub(r"[^a-z0-9 ]", " ", fold(name)).strip()
    for word in UNIT_TYPE_WORDS:
        if folded.startswith(word + " "):
            folded = folded[len(word) + 1 :]
            break
    return folded.replace(" ", "")


def search_keys(name: str) -> set[str]:
    """The keys a unit named so may have: without its type word, and as written.

    Both, because some names start with a syllable that folds to a type word: "Phường Phương Liệt" is kept as
    "phuongliet", which a search for "Phương Liệt" only finds unstripped.
    """
    written = re.sub(r"[^a-z0-9]", "", fold(name))
    return {key for key in (search_key(name), written) if key}


@dataclass(frozen=True)
class AdminUnit:
    """One administrative unit of the 2025 two-level structure."""

    code: str
    kind: str  # province | commune
    name_vi: str
    name_en: str
    latitude: float | None
    longitude: float | None
    area_km2: float | None


def province_units(province_code: str) -> list[AdminUnit]:
    """The province and all its communes and wards, from the vietnamadminunits data set."""
    if not re.fullmatch(r"\d{1,2}", province_code, re.ASCII):
        raise ValueError(f"not a province code: {province_code!r}")
    with closing(sqlite3.connect(f"file:{ADMIN_UNITS_DB}?mode=ro", uri=True)) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(
            "SELECT DISTINCT province, provinceShort, provinceCode, provinceLat, provinceLon, ward, wardShort,"
            " wardType, wardCode, wardLat, wardLon, wardAreaKm2 FROM admin_units WHERE provinceCode = ?"
            " ORDER BY wardCode",
            (f"{int(province_code):02d}",),
        ).fetchall()
    if not rows:
        raise ValueError(f"no province with code {province_code!r}")
    first = rows[0]
    units = [
        AdminUnit(
            first["provinceCode"],
            "province",
            first["province"],
            f"{unidecode(first['provinceShort'])} Province",
            first["provinceLat"],
            first["provinceLon"],
            sum(row["wardAreaKm2"] or 0 for row in rows) or None,
        )
    ]
    for row in rows:
        type_en = _TYPE_EN.get(row["wardType"], row["wardType"])
        units.append(
            AdminUnit(
                row["wardCode"],
                "commune",
                row["ward"],
                f"{unidecode(row['wardShort'])} {type_en}",
                row["wardLat"],
                row["wardLon"],
                row["wardAreaKm2"],
            )
        )
    return units


def load_province(session: Session, province_code: str) -> int:
    """Create or update the province and its communes as subjects; returns how many units there are."""
    units = province_units(province_code)
    existing = {
        subject.code: subject
        for subject in session.scalars(select(Subject).where(Subject.code.in_([unit.code for unit in units])))
    }
    province_id: int | None = None
    for unit in units:
        subject = existing.get(unit.code)
        if subject is None:
            subject = Subject(code=unit.code, kind=unit.kind)
            session.add(subject)
        subject.name_vi, subject.name_en = unit.name_vi, unit.name_en
        subject.search_key = search_key(unit.name_vi)
        subject.latitude, subject.longitude, subject.area_km2 = unit.latitude, unit.longitude, unit.area_km2
        subject.parent_id = province_id
        if unit.kind == "province":
            session.flush()
            province_id = subject.id
    return len(units)


def ensure_commune_agencies(session: Session, now: datetime, parent_code: str = "ubnd_tinh") -> int:
    """A People's Committee agency (UBND xã/phường) for every commune and ward; returns how many were created."""
    from cityops.accounts.models import Agency
    from cityops.accounts.service import SYSTEM, audit

    parent_id = session.scalar(select(Agency.id).where(Agency.code == parent_code))
    existing = set(session.scalars(select(Agency.code).where(Agency.kind == "commune")))
    created = 0
    for subject in session.scalars(select(Subject).where(Subject.kind == "commune").order_by(Subject.code)):
        code = commune_agency_code(subject.code)
        if code in existing:
            continue
        agency = Agency(
            code=code,
            name_vi=f"Ủy ban nhân dân {subject.name_vi}",
            name_en=f"{subject.name_en} People's Committee",
            kind="commune",
            parent_id=parent_id,
            created_at=now,
        )
        session.add(agency)
        session.flush()
        audit(session, SYSTEM, "agency.create", "agency", agency.id, now, {"code": code, "source": "geography"})
        created += 1
    return created


def commune_agency_code(subject_code: str) -> str:
    """The agency code of a commune's People's Committee, e.g. ubnd_16681."""
    return f"ubnd_{subject_code}"


def _in_province(province_code: str) -> Any:
    """The condition "is the province or one of its communes" for a query on subjects."""
    code = f"{int(province_code):02d}"
    province_id = select(Subject.id).where(Subject.code == code).scalar_subquery()
    return and_(Subject.kind.in_(UNIT_KINDS), or_(Subject.code == code, Subject.parent_id == province_id))


def _name_condition(name: str) -> tuple[set[str], Any] | None:
    keys = search_keys(name)
    if not keys:
        return None
    # Keys hold only a-z and 0-9, so they need no escaping inside LIKE.
    return keys, or_(*(Subject.search_key.like(f"%{key}%") for key in sorted(keys)))


def find_units(session: Session, name: str, limit: int = 10, province_code: str | None = None) -> list[Subject]:
    """Units whose name matches, with or without diacritics and with or without the type word.

    An exact name wins; otherwise every unit whose name holds the words. With province_code, only that province
    and its communes.
    """
    found = _name_condition(name)
    if found is None:
        return []
    keys, contains_words = found
    scope = _in_province(province_code) if province_code else true()
    exact = list(
        session.scalars(
            select(Subject).where(scope, Subject.search_key.in_(sorted(keys))).order_by(Subject.code).limit(limit)
        )
    )
    if exact:
        return exact
    return list(session.scalars(select(Subject).where(scope, contains_words).order_by(Subject.code).limit(limit)))


def list_units(
    session: Session, province_code: str, *, kind: str = "", q: str = "", limit: int = 100, offset: int = 0
) -> tuple[list[Subject], int]:
    """The province and its communes and wards, filtered by kind and name (or code), exact names first."""
    conditions = [_in_province(province_code)]
    if kind:
        conditions.append(Subject.kind == kind)
    order: list[Any] = []
    if q.strip():
        found = _name_condition(q)
        by_code = Subject.code == q.strip()
        if found is None:
            conditions.append(by_code)
        else:
            keys, contains_words = found
            conditions.append(or_(by_code, contains_words))
            order.append(case((Subject.search_key.in_(sorted(keys)), 0), else_=1))
    # The province first, then the communes by code.
    order += [case((Subject.kind == "province", 0), else_=1), Subject.code]
    total = session.scalar(select(func.count()).select_from(Subject).where(*conditions)) or 0
    rows = list(session.scalars(select(Subject).where(*conditions).order_by(*order).limit(limit).offset(offset)))
    return rows, total


def get_unit(session: Session, province_code: str, code: str) -> Subject | None:
    """The province or one of its communes, by code."""
    return session.scalar(select(Subject).where(_in_province(province_code), Subject.code == code))


def unit_parent_codes(session: Session, units: list[Subject]) -> dict[int, str]:
    """The code of each unit's parent, by parent id."""
    ids = {unit.parent_id for unit in units if unit.parent_id is not None}
    if not ids:
        return {}
    return {row[0]: row[1] for row in session.execute(select(Subject.id, Subject.code).where(Subject.id.in_(ids)))}


def unit_out(unit: Subject, parent_code: str | None) -> dict[str, Any]:
    """A unit as the API shows it."""
    return {
        "code": unit.code,
        "kind": unit.kind,
        "name_vi": unit.name_vi,
        "name_en": unit.name_en,
        "parent": parent_code,
        "latitude": unit.latitude,
        "longitude": unit.longitude,
        "area_km2": None if unit.area_km2 is None else round(unit.area_km2, 2),
    }


def units_geojson(units: list[dict[str, Any]]) -> dict[str, Any]:
    """Units (as unit_out shows them) as GeoJSON points at their centroids; units without a centroid are left out."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": unit["code"],
                "geometry": {"type": "Point", "coordinates": [unit["longitude"], unit["latitude"]]},
                "properties": unit,
            }
            for unit in units
            if unit["latitude"] is not None and unit["longitude"] is not None
        ],
    }


def province_subject(session: Session, province_code: str) -> Subject | None:
    """The province's own subject row."""
    return session.scalar(select(Subject).where(Subject.code == f"{int(province_code):02d}"))


# --- provinces by name, and their boundaries ----------------------------------------------------------------

DATA_DIR = Path(__file__).parent / "data"
BOUNDARY_FILE = DATA_DIR / "vietnam-provinces-2025.geojson"
BOUNDARY_ATTRIBUTION = (
    "Province boundaries (2025): TaliaCao/Vietnam-Shape-Map, MIT License, Copyright (c) 2025 Talia Cao; "
    "merged from Open Development Vietnam's data set of the 63 former provinces; simplified by cityops."
)
_PROVINCE_PREFIXES = ("thanh pho ", "tinh ", "tp ")


def province_key(name: str) -> str:
    """A province name folded for matching: no diacritics, no "Tỉnh"/"Thành phố"/"TP", no spaces."""
    folded = " ".join(re.sub(r"[^a-z0-9]", " ", fold(name)).split())
    for prefix in _PROVINCE_PREFIXES:
        if folded.startswith(prefix):
            folded = folded[len(prefix) :]
            break
    return folded.replace(" ", "")


@cache
def _province_codes_by_key() -> dict[str, str]:
    with closing(sqlite3.connect(f"file:{ADMIN_UNITS_DB}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT DISTINCT provinceCode, province, provinceShort, provinceKeywords FROM admin_units"
        ).fetchall()
    result: dict[str, str] = {}
    for code, name, short, keywords in rows:
        for key in {province_key(name), province_key(short), *json.loads(keywords or "[]")}:
            result[key] = code
    return result


def province_code_for_name(name: str) -> str | None:
    """The 2025 province code of a province named so ("Nghệ An", "TP HCM", "Khánh Hoà"), or None."""
    return _province_codes_by_key().get(province_key(name))


@cache
def province_info(province_code: str) -> AdminUnit:
    """The province itself (names, centroid, area) from the data set."""
    return province_units(province_code)[0]


@cache
def province_boundaries() -> dict[str, dict[str, Any]]:
    """Each province's boundary feature in the shipped file, keyed by its 2025 code (matched by name)."""
    with BOUNDARY_FILE.open(encoding="utf-8") as handle:
        collection = json.load(handle)
    result: dict[str, dict[str, Any]] = {}
    for feature in collection["features"]:
        name = feature["properties"]["ten_tinh"]
        code = province_code_for_name(name)
        if code is None or code in result:
            raise ValueError(f"{BOUNDARY_FILE.name}: the province {name!r} matches no 2025 province, or two")
        result[code] = feature
    return result


def province_geometry(province_code: str) -> dict[str, Any] | None:
    """The province's (simplified) boundary as a GeoJSON geometry, or None when the file lacks it."""
    feature = province_boundaries().get(f"{int(province_code):02d}")
    return None if feature is None else dict(feature["geometry"])


@cache
def boundary_document(province_code: str) -> bytes:
    """The province's boundary as a GeoJSON FeatureCollection of one feature, serialised once."""
    code = f"{int(province_code):02d}"
    feature = province_boundaries().get(code)
    if feature is None:
        raise ValueError(f"no boundary for province {code!r}")
    province = province_info(code)
    document = {
        "type": "FeatureCollection",
        "attribution": BOUNDARY_ATTRIBUTION,
        "features": [
            {
                "type": "Feature",
                "id": code,
                "properties": {
                    "code": code,
                    "name_vi": province.name_vi,
                    "name_en": province.name_en,
                    "source_name": feature["properties"]["ten_tinh"],
                    "source_code": feature["properties"]["code"],
                },
                "geometry": feature["geometry"],
            }
        ],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- places ---------------------------------------------------------------------------------------------------

# The kinds of place, each with the words (folded) a spreadsheet may use for it besides its code.
PLACE_KINDS: dict[str, tuple[str, ...]] = {
    "tourist_site": ("diem du lich", "du lich", "khu du lich", "di tich", "danh lam thang canh", "tourist site"),
    "accommodation": ("co so luu tru", "luu tru", "khach san", "nha nghi", "hotel"),
    "hospital": ("benh vien",),
    "health_facility": ("co so y te", "tram y te", "trung tam y te", "phong kham", "clinic", "health station"),
    "school": ("truong hoc", "truong", "co so giao duc"),
    "market": ("cho", "sieu thi", "trung tam thuong mai"),
    "office": ("co quan", "tru so", "co quan nha nuoc", "government office"),
    "transport": ("giao thong", "ben xe", "nha ga", "ga", "cang", "san bay"),
    "park": ("cong vien", "quang truong", "khu vui choi"),
    "other": ("khac",),
}
CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
BOUNDARY_TOLERANCE_KM = 5.0
MAX_ATTRIBUTES_CHARS = 4000
SAMPLE_PLACES = {"40": DATA_DIR / "places-nghe-an.csv"}
_PLACE_FIELDS = (
    "kind",
    "name_vi",
    "name_en",
    "latitude",
    "longitude",
    "commune_id",
    "address",
    "owner_agency_id",
    "attributes",
    "source",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class CommuneRef:
    """What an import needs to know of a commune."""

    id: int
    code: str
    name_vi: str
    search_key: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class PlaceRejection:
    """Why one row of a places file was not kept."""

    row: int
    code: str
    field: str | None
    place: str | None
    message_vi: str
    message_en: str


@dataclass
class PlaceImportReport:
    """What an import did: counts, and every rejected row with its reason."""

    format: str
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[PlaceRejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.unchanged

    def out(self) -> dict[str, Any]:
        """The answer the API and the CLI give."""
        return {
            "format": self.format,
            "received": self.received,
            "accepted": self.accepted,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected_count": len(self.rejected),
            "rejected": [rejection.__dict__ for rejection in self.rejected],
        }


class RowRejected(Exception):
    """A row (or a lookup) refused: code names the message place.<code>, with its parameters."""

    def __init__(self, code: str, field_name: str | None = None, **params: Any) -> None:
        super().__init__(code)
        self.code, self.field, self.params = code, field_name, params


def province_communes(session: Session, province_code: str) -> list[CommuneRef]:
    """The communes and wards of a province."""
    code = f"{int(province_code):02d}"
    province_id = select(Subject.id).where(Subject.code == code).scalar_subquery()
    rows = session.execute(
        select(Subject.id, Subject.code, Subject.name_vi, Subject.search_key, Subject.latitude, Subject.longitude)
        .where(Subject.kind == "commune", Subject.parent_id == province_id)
        .order_by(Subject.code)
    ).all()
    return [CommuneRef(*row) for row in rows]


def resolve_commune(communes: list[CommuneRef], value: str) -> CommuneRef:
    """A commune by code ("17971") or by name ("Xã Kim Liên", "kim lien"); refused when unknown or ambiguous."""
    value = value.strip()
    if value.isdigit():
        found = [commune for commune in communes if commune.code == value.zfill(5)]
    else:
        keys = search_keys(value)
        found = [commune for commune in communes if commune.search_key in keys]
    if len(found) == 1:
        return found[0]
    if found:
        raise RowRejected(
            "ambiguous_commune",
            "commune",
            value=value[:80],
            candidates=", ".join(f"{c.code} {c.name_vi}" for c in found),
        )
    raise RowRejected("unknown_commune", "commune", value=value[:80])


def nearest_commune(communes: list[CommuneRef], latitude: float, longitude: float) -> CommuneRef | None:
    """The commune whose centroid is nearest to the point."""
    located = [c for c in communes if c.latitude is not None and c.longitude is not None]
    if not located:
        return None
    return min(located, key=lambda c: geometry.haversine_km(latitude, longitude, c.latitude or 0, c.longitude or 0))


@cache
def _kind_words() -> dict[str, str]:
    from cityops.geo.places_file import column_key
    from cityops.i18n import translate

    words: dict[str, str] = {}
    for kind, aliases in PLACE_KINDS.items():
        for word in (kind, *aliases, translate(f"place_kind.{kind}", "vi"), translate(f"place_kind.{kind}", "en")):
            words.setdefault(column_key(word), kind)
    return words


def place_kind(value: str) -> str | None:
    """The kind code for a kind as a spreadsheet may write it ("tourist_site", "Điểm du lịch", "bệnh viện")."""
    from cityops.geo.places_file import column_key

    return _kind_words().get(column_key(value))


def _text(raw: dict[str, Any], name: str, limit: int, *, required: bool = False, single_line: bool = True) -> str:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise RowRejected("missing_field", name, field=name)
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowRejected("wrong_type", name, field=name)
    text = str(value).strip()
    if _CONTROL.search(text):
        raise RowRejected("control_character", name, field=name)
    if single_line:
        text = " ".join(text.split())
    if not text and required:
        raise RowRejected("missing_field", name, field=name)
    if len(text) > limit:
        raise RowRejected("text_too_long", name, field=name, limit=limit)
    return text


def _coordinate(raw: dict[str, Any], name: str, low: float, high: float) -> float:
    value = raw.get(name)
    if value is None or value == "":
        raise RowRejected("missing_field", name, field=name)
    if isinstance(value, bool):
        raise RowRejected("invalid_coordinate", name, field=name, value=str(value))
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+,\d+", text):
            text = text.replace(",", ".")  # a decimal comma, as a Vietnamese spreadsheet writes it
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text, re.ASCII):
            raise RowRejected("invalid_coordinate", name, field=name, value=value[:40])
        number = float(text)
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise RowRejected("invalid_coordinate", name, field=name, value=str(value)[:40])
    if not math.isfinite(number) or not low <= number <= high:
        raise RowRejected("coordinate_out_of_range", name, field=name, value=str(value)[:40], low=low, high=high)
    return number


def _attributes(raw: Any, extra: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise RowRejected("invalid_attributes", "attributes") from exc
    if raw not in (None, ""):
        if not isinstance(raw, dict):
            raise RowRejected("invalid_attributes", "attributes")
        attributes = raw
    merged = {**{str(k)[:64]: v for k, v in extra.items()}, **attributes}
    text = json.dumps(merged, ensure_ascii=False)
    if len(text) > MAX_ATTRIBUTES_CHARS:
        raise RowRejected("text_too_long", "attributes", field="attributes", limit=MAX_ATTRIBUTES_CHARS)
    if _CONTROL.search(text) or "\\u0000" in text:
        raise RowRejected("control_character", "attributes", field="attributes")
    return merged


class _PlaceChecker:
    """Checks raw rows against the province: its boundary, communes and the agencies."""

    def __init__(self, session: Session, province_code: str) -> None:
        from cityops.accounts.models import Agency

        self.communes = province_communes(session, province_code)
        self.boundary = province_geometry(province_code)
        self.agencies = {row[0]: row[1] for row in session.execute(select(Agency.code, Agency.id))}

    def check(self, raw: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        code = _text(raw, "code", 64, required=True)
        if not CODE_PATTERN.fullmatch(code):
            raise RowRejected("invalid_code", "code", value=code[:64])
        kind_text = _text(raw, "kind", 100, required=True)
        kind = place_kind(kind_text)
        if kind is None:
            raise RowRejected("unknown_kind", "kind", value=kind_text[:60], allowed=", ".join(PLACE_KINDS))
        name_vi = _text(raw, "name_vi", 255, required=True)
        name_en = _text(raw, "name_en", 255) or unidecode(name_vi)
        latitude = _coordinate(raw, "latitude", -90, 90)
        longitude = _coordinate(raw, "longitude", -180, 180)
        self._check_in_province(latitude, longitude)
        commune_text = _text(raw, "commune", 255)
        commune = (
            resolve_commune(self.communes, commune_text)
            if commune_text
            else nearest_commune(self.communes, latitude, longitude)
        )
        owner_code = _text(raw, "owner", 64)
        owner_id = None
        if owner_code:
            owner_id = self.agencies.get(owner_code)
            if owner_id is None:
                raise RowRejected("unknown_agency", "owner", value=owner_code)
        return {
            "code": code,
            "kind": kind,
            "name_vi": name_vi,
            "name_en": name_en,
            "latitude": latitude,
            "longitude": longitude,
            "commune_id": commune.id if commune else None,
            "address": _text(raw, "address", 500),
            "owner_agency_id": owner_id,
            "attributes": _attributes(raw.get("attributes"), extra),
            "source": _text(raw, "source", 255),
        }

    def _check_in_province(self, latitude: float, longitude: float) -> None:
        if self.boundary is None:
            return
        distance = geometry.distance_km(self.boundary, longitude, latitude)
        if distance > BOUNDARY_TOLERANCE_KM:
            raise RowRejected(
                "outside_province",
                "latitude",
                latitude=latitude,
                longitude=longitude,
                distance=round(distance),
            )


def _rejection(
    row: int, place: str | None, code: str, field_name: str | None, params: dict[str, Any]
) -> PlaceRejection:
    from cityops.i18n import both

    message_vi, message_en = both(f"place.{code}", **params)
    return PlaceRejection(row, code, field_name, place, message_vi, message_en)


def _place_code_of(raw: dict[str, Any]) -> str | None:
    value = raw.get("code")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()[:64]
        return text or None
    return None


def import_places(
    session: Session,
    actor: Actor,
    now: datetime,
    data: bytes,
    *,
    province_code: str,
    max_rows: int = 10_000,
) -> PlaceImportReport:
    """Import a places file (CSV or GeoJSON): keep every good row (same code: update), say why each bad one is not.

    Raises places_file.PlaceFileError when the file as a whole cannot be read (nothing is stored then).
    Every created or changed place is audited (place.create, place.update).
    """
    from cityops.accounts.service import audit
    from cityops.geo.places_file import read_places_file

    file_format, rows = read_places_file(data, max_rows)
    report = PlaceImportReport(file_format, received=len(rows))
    checker = _PlaceChecker(session, province_code)
    good: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for raw in rows:
        place_code = _place_code_of(raw.values)
        try:
            if raw.problem is not None:
                raise RowRejected(raw.problem[0], None, **raw.problem[1])
            values = checker.check(raw.values, raw.extra)
            if values["code"] in first_row:
                raise RowRejected("duplicate_in_file", "code", first=first_row[values["code"]])
        except RowRejected as rejected:
            report.rejected.append(_rejection(raw.row, place_code, rejected.code, rejected.field, rejected.params))
            continue
        first_row[values["code"]] = raw.row
        good[values["code"]] = values
    if not good:
        return report
    if session.get_bind().dialect.name == "postgresql":
        # Two imports at once would both see "no place with this code" and both insert it.
        session.execute(sql_text("SELECT pg_advisory_xact_lock(73111, 0)"))
    existing: dict[str, Place] = {}
    codes = list(good)
    for start in range(0, len(codes), 400):
        chunk = codes[start : start + 400]
        existing.update((place.code, place) for place in session.scalars(select(Place).where(Place.code.in_(chunk))))
    created: list[Place] = []
    for place_code, values in good.items():
        place = existing.get(place_code)
        search_text = fold(f"{place_code} {values['name_vi']} {values['name_en']} {values['address']}")
        if place is None:
            place = Place(**values, search_text=search_text, created_at=now, updated_at=now)
            session.add(place)
            created.append(place)
            continue
        changes = {
            name: [getattr(place, name), values[name]] for name in _PLACE_FIELDS if getattr(place, name) != values[name]
        }
        if not changes:
            report.unchanged += 1
            continue
        for name in changes:
            setattr(place, name, values[name])
        place.search_text, place.updated_at = search_text, now
        session.flush()
        audit(session, actor, "place.update", "place", place.id, now, {"code": place_code, "changes": changes})
        report.updated += 1
    session.flush()
    for place in created:
        audit(session, actor, "place.create", "place", place.id, now, {"code": place.code, "kind": place.kind})
    report.created = len(created)
    return report


def load_sample_places(session: Session, actor: Actor, now: datetime) -> list[PlaceImportReport]:
    """Import the sample places shipped for each loaded province that has some (Nghệ An's tourist sites)."""
    reports = []
    for province_code, path in SAMPLE_PLACES.items():
        if province_subject(session, province_code) is not None:
            reports.append(import_places(session, actor, now, path.read_bytes(), province_code=province_code))
    return reports


def list_places(
    session: Session,
    *,
    kind: str = "",
    commune_id: int | None = None,
    q: str = "",
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Places filtered by kind, commune and words of the code, names or address (without diacritics too)."""
    conditions: list[Any] = []
    if kind:
        conditions.append(Place.kind == kind)
    if commune_id is not None:
        conditions.append(Place.commune_id == commune_id)
    words = fold(q)
    if words:
        escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Place.search_text.like(f"%{escaped}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(Place).where(*conditions)) or 0
    rows = _place_rows(session, conditions, limit, offset)
    return rows, total


def get_place(session: Session, code: str) -> dict[str, Any] | None:
    """One place by code."""
    rows = _place_rows(session, [Place.code == code], 1, 0)
    return rows[0] if rows else None


def _place_rows(session: Session, conditions: list[Any], limit: int, offset: int) -> list[dict[str, Any]]:
    from cityops.accounts.models import Agency

    query = (
        select(Place, Subject.code, Subject.name_vi, Subject.name_en, Agency.code)
        .outerjoin(Subject, Subject.id == Place.commune_id)
        .outerjoin(Agency, Agency.id == Place.owner_agency_id)
        .where(*conditions)
        .order_by(Place.code)
        .limit(limit)
        .offset(offset)
    )
    result = []
    for place, commune_code, commune_vi, commune_en, agency_code in session.execute(query):
        result.append(
            {
                "code": place.code,
                "kind": place.kind,
                "name_vi": place.name_vi,
                "name_en": place.name_en,
                "latitude": place.latitude,
                "longitude": place.longitude,
                "commune": None
                if commune_code is None
                else {"code": commune_code, "name_vi": commune_vi, "name_en": commune_en},
                "address": place.address,
                "owner_agency": agency_code,
                "attributes": place.attributes,
                "source": place.source,
                "created_at": place.created_at.isoformat(),
                "updated_at": place.updated_at.isoformat(),
            }
        )
    return result


def places_geojson(places: list[dict[str, Any]]) -> dict[str, Any]:
    """Places as GeoJSON points."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": place["code"],
                "geometry": {"type": "Point", "coordinates": [place["longitude"], place["latitude"]]},
                "properties": {name: value for name, value in place.items() if name not in ("latitude", "longitude")},
            }
            for place in places
        ],
    }
