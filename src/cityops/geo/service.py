"""The rules of geography: the province and its communes/wards (2025) from vietnamadminunits; lookups by name."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from unidecode import unidecode
from vietnamadminunits.database.main import MODULE_DIR as ADMIN_UNITS_PACKAGE_DIR

from cityops.geo.models import Subject
from cityops.i18n import fold

# The 2025 administrative units (34 provinces, 3,321 communes and wards) as the vietnamadminunits package ships them.
ADMIN_UNITS_DB = ADMIN_UNITS_PACKAGE_DIR / "data" / "dataset.db"
UNIT_TYPE_WORDS = ("thanh pho", "phuong", "xa", "dac khu", "thi tran", "tinh")
_TYPE_EN = {"Phường": "Ward", "Xã": "Commune", "Đặc khu": "Special zone"}


def search_key(name: str) -> str:
    """A name folded for search: no diacritics, lower case, no type word ("Xã", "Phường"), no spaces."""
    folded = re.sub(r"[^a-z0-9 ]", " ", fold(name)).strip()
    for word in UNIT_TYPE_WORDS:
        if folded.startswith(word + " "):
            folded = folded[len(word) + 1 :]
            break
    return folded.replace(" ", "")


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
                f"{row['wardShort']} {type_en}",
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


def find_units(session: Session, name: str, limit: int = 10) -> list[Subject]:
    """Units whose name matches, with or without diacritics and with or without the type word."""
    key = search_key(name)
    if not key:
        return []
    exact = list(session.scalars(select(Subject).where(Subject.search_key == key).limit(limit)))
    if exact:
        return exact
    return list(
        session.scalars(select(Subject).where(Subject.search_key.like(f"%{key}%")).order_by(Subject.code).limit(limit))
    )


def province_subject(session: Session, province_code: str) -> Subject | None:
    """The province's own subject row."""
    return session.scalar(select(Subject).where(Subject.code == f"{int(province_code):02d}"))
