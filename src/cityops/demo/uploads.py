"""Spreadsheet uploads as an agency officer makes them, through the real API with the agency's key:

1. download the feed's template (GET /api/v1/feeds/{code}/template.xlsx?period=…);
2. fill it in with openpyxl: the template's rows (one per subject the feed must cover) for each period to report,
   the indicators' columns found by the codes in its fourth row;
3. upload it (POST /api/v1/feeds/{code}/uploads: a preview with per-row errors) and commit the preview
   (POST /api/v1/feeds/{code}/uploads/{id}/commit).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from cityops.connectors.spreadsheet.template import DATA_SHEET, FIRST_DATA_ROW, FIXED_KEYS

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# (the period as written in the sheet, {subject code: {indicator code: value}})
Report = tuple[str, Mapping[str, Mapping[str, float]]]


def fill_template(template: bytes, reports: Sequence[Report]) -> bytes:
    """The template filled in: its subject rows once per report, each with the report's period and values.

    A value the report lacks (a rate with nothing to divide by) is left empty.
    """
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(template))
    sheet = workbook[DATA_SHEET] if DATA_SHEET in workbook.sheetnames else workbook.active
    assert sheet is not None
    key_row = FIRST_DATA_ROW - 1
    keys = {cell.column: cell.value for cell in sheet[key_row] if cell.value}
    if tuple(keys.get(column) for column in (1, 2, 3)) != FIXED_KEYS:
        raise ValueError(f"not a cityops template: row {key_row} is not {', '.join(FIXED_KEYS)}")
    indicator_columns = {column: str(code) for column, code in keys.items() if column > len(FIXED_KEYS)}
    subjects: list[tuple[str, str]] = []
    row = FIRST_DATA_ROW
    while sheet.cell(row=row, column=1).value not in (None, ""):
        subjects.append((str(sheet.cell(row=row, column=1).value), str(sheet.cell(row=row, column=2).value or "")))
        row += 1
    row = FIRST_DATA_ROW
    for period, values in reports:
        for code, name in subjects:
            sheet.cell(row=row, column=1, value=code)
            sheet.cell(row=row, column=2, value=name)
            sheet.cell(row=row, column=3, value=period)
            for column, indicator in indicator_columns.items():
                sheet.cell(row=row, column=column, value=values.get(code, {}).get(indicator))
            row += 1
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class Uploaded:
    """What an upload came to: the upload's id, values stored, and errors (per cell) left out."""

    upload_id: int
    accepted: int
    errors: int


def upload_reports(
    http: httpx.Client, key: str, feed: str, reports: Sequence[Report], *, template_period: str = ""
) -> Uploaded:
    """Download the feed's template, fill it with the reports, upload and commit it; httpx.HTTPError on failure."""
    headers = {"Authorization": f"Bearer {key}"}
    params = {"period": template_period} if template_period else {}
    template = http.get(f"/api/v1/feeds/{feed}/template.xlsx", params=params, headers=headers)
    template.raise_for_status()
    content = fill_template(template.content, reports)
    name = f"{feed}-{reports[-1][0].replace('/', '-').replace(' ', '_').replace(':', '')}.xlsx"
    preview = http.post(
        f"/api/v1/feeds/{feed}/uploads", files={"file": (name, content, XLSX_MEDIA_TYPE)}, headers=headers
    )
    preview.raise_for_status()
    upload: dict[str, Any] = preview.json()
    committed = http.post(f"/api/v1/feeds/{feed}/uploads/{upload['id']}/commit", headers=headers)
    committed.raise_for_status()
    result = committed.json().get("result") or {}
    return Uploaded(int(upload["id"]), int(result.get("accepted", 0)), int(committed.json().get("error_count", 0)))
