"""Reading a places file — CSV (UTF-8, with a header) or GeoJSON (Point features) — into raw rows.

Nothing here checks values: it finds the rows and names their fields, whatever language the header speaks
("ten", "Tên", "name_vi" are one column). A problem with the whole file (not UTF-8, no header, not GeoJSON) raises
PlaceFileError; a problem with one row travels with the row, so that the others are still read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cityops.i18n import fold

# The fields of a place, and every header (folded: no diacritics, lower case, "_" between words) that means one.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("code", "ma", "ma_dia_diem", "ma_diem", "id"),
    "kind": ("kind", "type", "loai", "loai_dia_diem", "phan_loai"),
    "name_vi": ("name_vi", "name", "ten", "ten_vi", "ten_dia_diem", "ten_tieng_viet"),
    "name_en": ("name_en", "ten_en", "ten_tieng_anh"),
    "latitude": ("latitude", "lat", "vi_do"),
    "longitude": ("longitude", "lon", "lng", "long", "kinh_do"),
    "commune": ("commune", "xa_phuong", "xa", "phuong", "ma_xa", "ma_xa_phuong", "don_vi_hanh_chinh"),
    "address": ("address", "dia_chi"),
    "owner": ("owner", "owner_agency", "co_quan_quan_ly", "don_vi_quan_ly", "co_quan", "chu_quan"),
    "source": ("source", "nguon", "nguon_du_lieu"),
    "attributes": ("attributes", "thuoc_tinh"),
}
ALIASES = {alias: name for name, aliases in FIELD_ALIASES.items() for alias in aliases}
REQUIRED_FIELDS = ("code", "kind", "name_vi", "latitude", "longitude")
BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class PlaceFileError(ValueError):
    """The whole file cannot be read; code names a message (problem.<code>) with its parameters."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass
class RawPlace:
    """One row of the file, its fields named; problem is set when the row itself is malformed."""

    row: int
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    problem: tuple[str, dict[str, Any]] | None = None


def column_key(header: str) -> str:
    """A header folded for matching: "Vĩ độ" → "vi_do", "Xã/Phường" → "xa_phuong"."""
    return "_".join(re.sub(r"[^a-z0-9]+", " ", fold(header)).split())


def decode(data: bytes) -> str:
    """The file as text: UTF-8, with or without a byte-order mark; anything else is refused clearly."""
    if data.startswith(_UTF16_BOMS):
        raise PlaceFileError("places_file_not_utf8", line=1)
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlaceFileError("places_file_not_utf8", line=data[: exc.start].count(b"\n") + 1) from exc


def read_places_file(data: bytes, max_rows: int) -> tuple[str, list[RawPlace]]:
    """("csv" or "geojson", the rows). GeoJSON when the text starts with "{", else CSV."""
    text = decode(data)
    if not text.strip():
        raise PlaceFileError("places_file_empty")
    if text.lstrip().startswith(("{", "[")):
        rows = _read_geojson(text, max_rows)
        return "geojson", rows
    return "csv", _read_csv(text, max_rows)


def _too_many(count: int, max_rows: int) -> None:
    if count > max_rows:
        raise PlaceFileError("places_file_too_many_rows", limit=max_rows, count=count)


def _delimiter(header_line: str) -> str:
    counts = {delimiter: header_line.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _read_csv(text: str, max_rows: int) -> list[RawPlace]:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    try:
        records = list(reader)
    except csv.Error as exc:
        raise PlaceFileError("places_file_unreadable", line=reader.line_num, reason=str(exc)[:120]) from exc
    # Rows are numbered as a spreadsheet shows them: the header is row 1.
    numbered = [(number, record) for number, record in enumerate(records, start=1) if any(c.strip() for c in record)]
    if not numbered:
        raise PlaceFileError("places_file_empty")
    _, header = numbered[0]
    columns: list[tuple[str, str]] = []  # (field or extra name, header as written)
    seen: dict[str, str] = {}
    for position, written in enumerate(header, start=1):
        key = column_key(written)
        name = ALIASES.get(key, key) or f"column_{position}"
        if name in seen:
            raise PlaceFileError("places_file_duplicate_column", column=written.strip()[:60], other=seen[name][:60])
        seen[name] = written.strip()
        columns.append((name, written.strip()))
    missing = [name for name in REQUIRED_FIELDS if name not in seen]
    if missing:
        raise PlaceFileError(
            "places_file_missing_columns",
            columns=", ".join(missing),
            accepted="; ".join(f"{name}: {', '.join(FIELD_ALIASES[name])}" for name in missing),
        )
    body = numbered[1:]
    _too_many(len(body), max_rows)
    rows: list[RawPlace] = []
    for number, record in body:
        raw = RawPlace(number)
        if len(record) > len(columns) and any(cell.strip() for cell in record[len(columns) :]):
            raw.problem = ("too_many_values", {"count": len(record), "expected": len(columns)})
        for (name, _written), cell in zip(columns, record, strict=False):
            value = cell.strip()
            if name in FIELD_ALIASES:
                raw.values[name] = value
            elif value:
                raw.extra[name] = value
        rows.append(raw)
    return rows


def _read_geojson(text: str, max_rows: int) -> list[RawPlace]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PlaceFileError("places_file_not_geojson", reason=str(exc)[:120]) from exc
    if isinstance(document, dict) and document.get("type") == "Feature":
        features: Any = [document]
    elif isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise PlaceFileError("places_file_not_geojson", reason='"features" must be a list')
    else:
        raise PlaceFileError("places_file_not_geojson", reason='expected {"type": "FeatureCollection", ...}')
    _too_many(len(features), max_rows)
    return [_feature_row(number, feature) for number, feature in enumerate(features, start=1)]


def _feature_row(number: int, feature: Any) -> RawPlace:
    raw = RawPlace(number)
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raw.problem = ("not_a_feature", {})
        return raw
    properties = feature.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raw.problem = ("properties_not_object", {})
        return raw
    for key, value in properties.items():
        folded = column_key(str(key))
        name = ALIASES.get(folded, folded)
        if name in ("latitude", "longitude"):
            continue  # the geometry says where the place is
        if name in FIELD_ALIASES:
            raw.values.setdefault(name, value)
        elif value is not None and value != "":
            raw.extra[name or "property"] = value
    if "code" not in raw.values and isinstance(feature.get("id"), (str, int)):
        raw.values["code"] = feature["id"]
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        given = geometry.get("type") if isinstance(geometry, dict) else None
        raw.problem = ("not_a_point", {"given": str(given)[:40]})
        return raw
    coordinates = geometry.get("coordinates")
    if (
        not isinstance(coordinates, list)
        or len(coordinates) not in (2, 3)
        or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coordinates)
    ):
        raw.problem = ("invalid_point", {})
        return raw
    raw.values["longitude"], raw.values["latitude"] = coordinates[0], coordinates[1]
    return raw
