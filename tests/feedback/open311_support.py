"""What the Open311 tests share: the GeoReport v2 JSON Schemas (copied into tests/data/open311 with their
attribution), the citizen's personal data looked for everywhere it must not appear, an app key, places."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.db.engine import Database
from cityops.geo.models import Subject

SCHEMAS = Path(__file__).parents[1] / "data" / "open311"
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00")
# The citizen's personal data: none of it may appear in any Open311 answer.
NAME_FIRST, NAME_LAST = "Thị Hoa", "Nguyễn"
PHONE = "0912 345 678"
EMAIL = "hoa.nguyen.1987@example.vn"
EXACT_ADDRESS = "Số 27 ngõ 14 đường Lê Hồng Phong"
SECRETS = ("Hoa", "Nguyễn Thị", "912345678", "912 345 678", "hoa.nguyen", "example.vn", "Số 27", "ngõ 14")


@cache
def validator(name: str) -> Draft7Validator:
    """A validator of one schema file, the others registered for its $ref."""
    registry: Registry[Any] = Registry().with_resources(
        (path.name, Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT7))
        for path in SCHEMAS.glob("*.json")
    )
    return Draft7Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def valid(name: str, document: Any) -> Any:
    """The document, after checking it against the schema (every error listed when it fails)."""
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator(name).iter_errors(document)]
    assert not errors, "\n".join(errors)
    return document


def check_moment(value: str | None) -> None:
    """A W3C date-time in the province's offset that Python can read."""
    assert value is not None and MOMENT.fullmatch(value), value
    assert datetime.fromisoformat(value).utcoffset() is not None


def xml(body: bytes, root: str) -> ElementTree.Element:
    """The parsed XML answer, after checking its declaration and root element."""
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>") or body.startswith(b'<?xml version="1.0"')
    element = ElementTree.fromstring(body)  # noqa: S314 — our own server's answer
    assert element.tag == root, element.tag
    return element


def no_personal_data(text: str) -> None:
    """Fail when an answer holds any piece of the citizen's name, phone, e-mail or exact address."""
    found = [secret for secret in SECRETS if secret.lower() in text.lower()]
    assert not found, f"personal data in an Open311 answer: {found}\n{text[:2000]}"


@dataclass(frozen=True)
class Commune:
    code: str
    name: str
    latitude: float
    longitude: float


def a_commune(database: Database, name_part: str = "Vinh") -> Commune:
    """A commune or ward of the province with its centre point."""
    with database.reading() as session:
        subject = session.scalar(
            select(Subject)
            .where(Subject.kind.in_(("commune", "ward")), Subject.latitude.is_not(None))
            .where(Subject.name_vi.contains(name_part))
            .order_by(Subject.code)
        ) or session.scalar(select(Subject).where(Subject.kind.in_(("commune", "ward")), Subject.latitude.is_not(None)))
        assert subject is not None and subject.latitude is not None and subject.longitude is not None
        return Commune(subject.code, subject.name_vi, subject.latitude, subject.longitude)


def app_key(database: Database, now: datetime) -> tuple[str, str]:
    """A citizen app's API key (Sở Thông tin và Truyền thông's app) and its prefix."""
    with database.writing() as session:
        key, secret = accounts.create_api_key(
            session, accounts.SYSTEM, now, agency_code="ubnd_tinh", feed_codes=[], name="Nghệ An Smart app"
        )
        return secret, key.prefix
