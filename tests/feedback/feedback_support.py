"""Helpers of the feedback tests (others may import them): file a report through the service, make photos with
a GPS position in their EXIF, find a point inside a commune, sign people in."""

from __future__ import annotations

import io
import re
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.feedback.models import Report
from cityops.feedback.service import ContactIn, PhotoIn, Submission, submit_report
from cityops.geo.models import Subject
from cityops.settings import Settings
from conftest import PASSWORD

COMMUNE = "16681"  # Phường Thành Vinh
DESCRIPTION = "Ổ gà lớn giữa đường, xe máy đi qua rất dễ ngã, đề nghị sửa gấp."
GPS_IFD = 0x8825


def jpeg_with_gps(width: int = 64, height: int = 48, color: str = "red") -> bytes:
    """A real JPEG whose EXIF holds a camera model and a GPS position (18°40'N 105°40'E, in Vinh)."""
    image = Image.new("RGB", (width, height), color)
    exif = Image.Exif()
    exif[0x010F] = "CityopsCam"  # Make
    exif[0x0110] = "Model GPS-1"  # Model
    exif[GPS_IFD] = {1: "N", 2: (18.0, 40.0, 30.0), 3: "E", 4: (105.0, 40.0, 0.0)}
    output = io.BytesIO()
    image.save(output, "JPEG", exif=exif.tobytes())
    data = output.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD), "the test photo must carry GPS"
    return data


def png_bytes(width: int = 20, height: int = 20) -> bytes:
    output = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 128, 255, 200)).save(output, "PNG")
    return output.getvalue()


def commune_point(database: Database, code: str = COMMUNE) -> tuple[float, float]:
    """The centre of a commune or ward (a point inside the province)."""
    with database.reading() as session:
        subject = session.scalar(select(Subject).where(Subject.code == code))
        assert subject is not None and subject.latitude is not None and subject.longitude is not None
        return subject.latitude, subject.longitude


def submit(database: Database, settings: Settings, clock: FrozenClock, **fields: Any) -> Report:
    """File a report through `submit_report` with sensible defaults (a road damage report in Phường Thành Vinh);
    any Submission field may be given, and `contact` may be a dict."""
    contact = fields.pop("contact", None)
    values: dict[str, Any] = {
        "category_code": "o_ga_hu_hong_duong",
        "description": DESCRIPTION,
        "subject_code": COMMUNE,
        "place_text": "Đường Lê Duẩn, trước chợ",
        "attributes": {"muc_do": "high"}
        if fields.get("category_code", "o_ga_hu_hong_duong") == "o_ga_hu_hong_duong"
        else {},
        **fields,
    }
    if isinstance(contact, dict):
        values["contact"] = ContactIn(**contact)
    elif contact is not None:
        values["contact"] = contact
    values["photos"] = [p if isinstance(p, PhotoIn) else PhotoIn("anh.jpg", p) for p in values.get("photos", [])]
    with database.writing() as session:
        report = submit_report(session, settings, clock(), Submission(**values))
        session.flush()
        session.refresh(report)
    return report


def make_user(database: Database, clock: FrozenClock, username: str, role: str, agency: str = "") -> None:
    with database.writing() as session:
        accounts.create_user(
            session, accounts.SYSTEM, clock(), username=username, password=PASSWORD, role=role, agency_code=agency
        )


def form_token(client: TestClient, url: str = "/report") -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return token[1]
