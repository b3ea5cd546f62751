"""The template of a feed, as XLSX or CSV: Vietnamese headers, one row per subject the feed must cover, the period
filled in, one column per indicator (its Vietnamese name and unit, its code below), and instructions in Vietnamese
and English. What the template makes, the reader reads back without a single error when every cell is filled.

XLSX layout of the sheet "Số liệu":

    row 1   title (merged over the table)
    row 2   Mã đơn vị | Tên đơn vị | Kỳ báo cáo | Số liệu các chỉ tiêu (merged over the indicator columns)
    row 3   (merged with row 2)                | <name> (<unit>) | <name> (<unit>) …
    row 4   subject   | subject_name | period  | <code>          | <code> …      (small, grey: for machines)
    row 5…  16681     | Phường Thành Vinh | Tháng 11/2026 | (to fill) …
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cityops.connectors.spreadsheet.connector import IndicatorTerm, SubjectTerm
from cityops.i18n import both, format_moment, translate
from cityops.observations.periods import parse_period

DATA_SHEET = "Số liệu"
HELP_SHEET = "Hướng dẫn"
FIXED_HEADERS = ("Mã đơn vị", "Tên đơn vị", "Kỳ báo cáo")
FIXED_KEYS = ("subject", "subject_name", "period")
GROUP_HEADER = "Số liệu các chỉ tiêu"
FIRST_DATA_ROW = 5
_HELP_NOTES = ("rows", "numbers", "periods", "empty", "columns", "upload", "preview")


@dataclass(frozen=True)
class TemplateSpec:
    """What a template holds: the feed, its indicators, the subjects to fill and the period."""

    feed_code: str
    feed_name: str
    agency_name: str
    indicators: Sequence[IndicatorTerm]
    subjects: Sequence[SubjectTerm]
    period: str  # a cityops period key (2026-11)
    made_at: datetime


def period_label(key: str) -> str:
    """A period as a Vietnamese officer writes it, and as the reader reads it back: Tháng 11/2026, Quý 4/2026 …"""
    period = parse_period(key)
    if period.type == "day":
        year, month, day = key.split("-")
        return f"{day}/{month}/{year}"
    if period.type == "month":
        year, month = key.split("-")
        return f"Tháng {month}/{year}"
    if period.type == "quarter":
        year, quarter = key.split("-Q")
        return f"Quý {quarter}/{year}"
    if period.type == "year":
        return f"Năm {key}"
    if period.type == "school_year":
        return f"Năm học {key}"
    return key


def indicator_header(term: IndicatorTerm) -> str:
    """The Vietnamese header of an indicator's column: its name and unit."""
    return f"{term.name_vi} ({term.unit_vi})" if term.unit_vi else term.name_vi


def file_name(spec: TemplateSpec, extension: str) -> str:
    """mau-<feed>-<period>.xlsx"""
    return f"mau-{spec.feed_code}-{spec.period}.{extension}"


# --- CSV ----------------------------------------------------------------------------------------------


def template_csv(spec: TemplateSpec) -> bytes:
    """The CSV template: UTF-8 with a BOM (so that Excel reads the Vietnamese letters) and ";" between cells
    (what Excel in Vietnamese uses, since the comma is the decimal mark)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([*FIXED_HEADERS, *(indicator_header(term) for term in spec.indicators)])
    writer.writerow([*FIXED_KEYS, *(term.code for term in spec.indicators)])
    label = period_label(spec.period)
    for subject in spec.subjects:
        writer.writerow([subject.code, subject.name_vi, label, *([""] * len(spec.indicators))])
    return buffer.getvalue().encode("utf-8-sig")


# --- XLSX ---------------------------------------------------------------------------------------------


def template_xlsx(spec: TemplateSpec) -> bytes:
    """The XLSX template, with a data sheet and an instructions sheet."""
    from openpyxl import Workbook

    workbook = Workbook()
    data = workbook.active
    data.title = DATA_SHEET
    _data_sheet(data, spec)
    _help_sheet(workbook.create_sheet(HELP_SHEET), spec)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _data_sheet(sheet: Any, spec: TemplateSpec) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    head_fill = PatternFill("solid", fgColor="DDE7F3")
    input_fill = PatternFill("solid", fgColor="FFFBE6")
    thin = Side(style="thin", color="9AA5B4")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    wrap = Alignment(wrap_text=True, vertical="center", horizontal="center")
    last = len(FIXED_HEADERS) + len(spec.indicators)
    last_letter = get_column_letter(last)
    label = period_label(spec.period)

    sheet["A1"] = f"Biểu mẫu số liệu: {spec.feed_name} ({spec.feed_code}) — {label}"
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.merge_cells(f"A1:{last_letter}1")
    for index, header in enumerate(FIXED_HEADERS, start=1):
        sheet.cell(row=2, column=index, value=header)
        sheet.merge_cells(start_row=2, start_column=index, end_row=3, end_column=index)
    if spec.indicators:
        sheet.cell(row=2, column=len(FIXED_HEADERS) + 1, value=GROUP_HEADER)
        sheet.merge_cells(start_row=2, start_column=len(FIXED_HEADERS) + 1, end_row=2, end_column=last)
    for offset, term in enumerate(spec.indicators):
        sheet.cell(row=3, column=len(FIXED_HEADERS) + 1 + offset, value=indicator_header(term))
    for row in (2, 3):
        for column in range(1, last + 1):
            cell = sheet.cell(row=row, column=column)
            cell.font, cell.fill, cell.alignment, cell.border = Font(bold=True), head_fill, wrap, box
    for index, key in enumerate([*FIXED_KEYS, *(term.code for term in spec.indicators)], start=1):
        cell = sheet.cell(row=4, column=index, value=key)
        cell.font = Font(italic=True, size=8, color="6B7280")
    sheet.row_dimensions[3].height = 48

    for offset, subject in enumerate(spec.subjects):
        row = FIRST_DATA_ROW + offset
        for column, value in enumerate((subject.code, subject.name_vi, label), start=1):
            cell = sheet.cell(row=row, column=column, value=value)
            cell.number_format = "@"  # text: Excel keeps "01234" and "Tháng 11/2026" as written
            cell.data_type = "s"
            cell.border = box
        for column in range(len(FIXED_HEADERS) + 1, last + 1):
            cell = sheet.cell(row=row, column=column)
            cell.number_format = "General"
            cell.fill, cell.border = input_fill, box

    end_row = FIRST_DATA_ROW + max(len(spec.subjects), 1) - 1
    for offset, term in enumerate(spec.indicators):
        letter = get_column_letter(len(FIXED_HEADERS) + 1 + offset)
        low = term.min_value if term.min_value is not None else -1e15
        high = term.max_value if term.max_value is not None else 1e15
        title_vi, _ = both("spreadsheet.template.validation_title")
        message_vi, _ = both(
            "spreadsheet.template.validation", name=term.name_vi, min=_plain(low, "vi"), max=_plain(high, "vi")
        )
        rule = DataValidation(
            type="decimal",
            operator="between",
            formula1=repr(low),
            formula2=repr(high),
            allow_blank=True,
            showErrorMessage=True,
            errorStyle="warning",
            errorTitle=title_vi[:32],
            error=message_vi[:255],
        )
        rule.add(f"{letter}{FIRST_DATA_ROW}:{letter}{end_row}")
        sheet.add_data_validation(rule)
        sheet.column_dimensions[letter].width = max(16, min(40, len(indicator_header(term)) // 2 + 6))
    sheet.column_dimensions["A"].width = 12
    sheet.column_dimensions["B"].width = 30
    sheet.column_dimensions["C"].width = 18
    sheet.freeze_panes = f"D{FIRST_DATA_ROW}"


def _plain(value: float, language: str) -> str:
    if abs(value) >= 1e15:
        return "—"
    text = f"{value:g}"
    return text.replace(".", ",") if language == "vi" else text


def _help_sheet(sheet: Any, spec: TemplateSpec) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    bold, soft = Font(bold=True), Font(italic=True, color="555555")
    fill = PatternFill("solid", fgColor="DDE7F3")
    sheet.column_dimensions["A"].width = 30
    for letter in "BCDEFG":
        sheet.column_dimensions[letter].width = 26
    label = period_label(spec.period)
    for language, font in (("vi", Font(bold=True, size=14)), ("en", Font(italic=True, size=12))):
        sheet.append([translate("spreadsheet.template.title", language, feed=spec.feed_name, code=spec.feed_code)])
        sheet.cell(row=sheet.max_row, column=1).font = font
    for language in ("vi", "en"):
        made = format_moment(spec.made_at, language)
        sheet.append([translate("spreadsheet.template.made", language, agency=spec.agency_name, at=made, period=label)])
    sheet.append([])
    for note in _HELP_NOTES:
        vi, en = both(f"spreadsheet.template.note.{note}", sheet=DATA_SHEET, row=FIRST_DATA_ROW)
        sheet.append([vi])
        sheet.cell(row=sheet.max_row, column=1).alignment = Alignment(wrap_text=False)
        sheet.append([en])
        sheet.cell(row=sheet.max_row, column=1).font = soft
    sheet.append([])
    heads = ("code", "name_vi", "name_en", "unit", "period", "min", "max")
    for language in ("vi", "en"):
        sheet.append([translate(f"spreadsheet.template.head.{head}", language) for head in heads])
        for cell in sheet[sheet.max_row]:
            cell.font, cell.fill = (bold if language == "vi" else soft), fill
    for term in spec.indicators:
        sheet.append(
            [
                term.code,
                term.name_vi,
                term.name_en,
                f"{term.unit_vi} / {term.unit_en}" if term.unit_en and term.unit_en != term.unit_vi else term.unit_vi,
                f"{translate(f'period.{term.period_type}', 'vi')} / {translate(f'period.{term.period_type}', 'en')}",
                term.min_value,
                term.max_value,
            ]
        )
