"""Helpers of the spreadsheet tests: real XLSX and CSV files built the way officers make them, spreadsheet feeds,
uploads through the API, and what was stored."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.catalog.models import Indicator
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.feeds.service import create_feed
from cityops.geo.models import Subject
from cityops.observations.models import Observation

AGENCY = "so_y_te"  # officer_a's agency; trung_tam_kiem_soat_benh_tat is below it
OTHER_AGENCY = "so_gd_dt"  # officer_b's
FEED = "yte_tiem_chung"
DAILY_FEED = "yte_sot_xuat_huyet"
CHILDREN = "yte.tre_tron_1_tuoi"  # month, commune, min 0
IMMUNISED = "yte.tre_tiem_chung_day_du"  # month, commune, min 0
RATE = "yte.ty_le_tiem_chung_day_du"  # month, commune, 0–100 %
DENGUE = "yte.ca_sot_xuat_huyet"  # day, commune, min 0
MONTHLY = [CHILDREN, IMMUNISED, RATE]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def communes(database: Database, count: int) -> list[tuple[str, str]]:
    """The first communes of the province: (code, Vietnamese name)."""
    with database.reading() as session:
        rows = session.execute(
            select(Subject.code, Subject.name_vi).where(Subject.kind == "commune").order_by(Subject.code).limit(count)
        )
        return [(code, name) for code, name in rows]


def make_feed(
    database: Database,
    clock: FrozenClock,
    *,
    code: str = FEED,
    agency: str = AGENCY,
    indicators: list[str] | None = None,
    coverage: str = "list",
    subjects: list[str] | None = None,
    cadence: str = "monthly by day 5",
    kind: str = "spreadsheet",
    settings: dict[str, Any] | None = None,
) -> int:
    """A feed of the agency's that takes uploads; its id."""
    with database.writing() as session:
        feed = create_feed(
            session,
            accounts.SYSTEM,
            clock(),
            code=code,
            agency_code=agency,
            indicator_codes=indicators or MONTHLY,
            kind=kind,
            settings=settings or {},
            cadence=cadence,
            coverage=coverage,
            subject_codes=subjects or [],
        )
        return feed.id


def agency_key(database: Database, clock: FrozenClock, agency: str = AGENCY) -> dict[str, str]:
    """The headers of an API key of the agency (bound to no feed: uploads go by agency)."""
    with database.writing() as session:
        _key, secret = accounts.create_api_key(session, accounts.SYSTEM, clock(), agency_code=agency, feed_codes=[])
    return {"Authorization": f"Bearer {secret}"}


def xlsx(build: Callable[[Any], None], *, title: str = "Báo cáo") -> bytes:
    """A workbook whose first sheet is filled by `build`, saved as Excel saves it."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    build(sheet)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def officer_sheet(rows: list[list[Any]], *, title_row: bool = True) -> Callable[[Any], None]:
    """The health centre's own monthly sheet: a title, a two-row header with merged cells (a group cell over the
    three indicator columns), then `rows` (STT, Mã đơn vị, Tên đơn vị, Kỳ báo cáo, three values) from row 4."""

    def build(sheet: Any) -> None:
        if title_row:
            sheet["A1"] = "BÁO CÁO TIÊM CHỦNG MỞ RỘNG THÁNG 11/2026"
            sheet.merge_cells("A1:G1")
        for column, header in zip("ABCD", ("STT", "Mã đơn vị", "Tên đơn vị", "Kỳ báo cáo"), strict=True):
            sheet[f"{column}2"] = header
            sheet.merge_cells(f"{column}2:{column}3")
        sheet["E2"] = "Tiêm chủng mở rộng"
        sheet.merge_cells("E2:G2")
        sheet["E3"] = "Trẻ em tròn 1 tuổi trong kỳ (trẻ)"
        sheet["F3"] = "Trẻ em dưới 1 tuổi được tiêm chủng đầy đủ"
        sheet["G3"] = "Tỷ lệ trẻ em dưới 1 tuổi được tiêm chủng đầy đủ (%)"
        for offset, values in enumerate(rows):
            for column, value in enumerate(values, start=1):
                if value is not None:
                    sheet.cell(row=4 + offset, column=column, value=value)

    return build


def upload(
    client: TestClient, feed: str, content: bytes, *, name: str = "bao_cao.xlsx", headers: dict[str, str] | None = None
) -> Response:
    """POST a file to a feed's uploads, as a multipart form."""
    kind = XLSX if name.endswith(".xlsx") else "text/csv"
    return client.post(f"/api/v1/feeds/{feed}/uploads", files={"file": (name, content, kind)}, headers=headers or {})


def preview_ok(client: TestClient, feed: str, content: bytes, **options: Any) -> dict[str, Any]:
    """Upload a file and return its preview, which must be a 201."""
    answer = upload(client, feed, content, **options)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def errors_at(preview: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    """The preview's errors by (row, column letter)."""
    return {(error["row"], error["column"]): error for error in preview["errors"]}


def stored(database: Database) -> dict[tuple[str, str, str], float | None]:
    """Every stored value: (indicator, subject, period) → value."""
    with database.reading() as session:
        rows = session.execute(
            select(Indicator.code, Subject.code, Observation.period_key, Observation.value)
            .join(Indicator, Indicator.id == Observation.indicator_id)
            .join(Subject, Subject.id == Observation.subject_id)
        )
        return {(indicator, subject, period): value for indicator, subject, period, value in rows}


def read_xlsx(content: bytes) -> Any:
    """A downloaded workbook, as openpyxl reads it (formatting included)."""
    return load_workbook(io.BytesIO(content))


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)
