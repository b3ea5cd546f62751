"""The files of a made report: XLSX (openpyxl) and PDF (fpdf2 with an embedded Vietnamese font and drawn charts).

Both render a report's stored content in one language (Vietnamese by default). XLSX: one sheet per section,
a bold filled header row in the reader's language, frozen; numbers as numbers with number formats (#,##0.0), dates
and moments as Excel dates; columns sized to their text. PDF: the title, the period, then each section as a table,
with the headline values drawn as bar charts against their target (a line).
"""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cityops.clock import LOCAL_TZ
from cityops.i18n import format_moment, format_number, format_period, translate
from cityops.reports.templates import period_label

SHEET_TITLE_MAX = 31
COLUMN_WIDTH_MAX = 60


class FontMissing(RuntimeError):
    """The PDF font file is not where the setting says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"PDF font not found: {path}. Install Debian's fonts-noto-core (make setup) or set CITYOPS_REPORT_FONT "
            "to a TrueType font with Vietnamese letters (its Bold beside it)."
        )


def text_of(value: Any, language: str) -> str:
    """A content value as text in the language: {"vi", "en"} pairs pick one; None is empty."""
    if isinstance(value, dict):
        return str(value.get(language) or value.get("vi") or "")
    if value is None:
        return ""
    return str(value)


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value)).astimezone(LOCAL_TZ).replace(tzinfo=None)


def cell_text(column: dict[str, Any], value: Any, language: str) -> str:
    """A cell as the PDF and the e-mail show it."""
    kind = column["type"]
    if value is None or value == "":
        return "—" if kind in ("number", "integer") else ""
    if kind in ("number", "integer"):
        return format_number(float(value), language, digits=1)
    if kind == "date":
        moment = _moment(value)
        return f"{moment:%d/%m/%Y}" if moment else ""
    if kind == "datetime":
        return format_moment(str(value), language)
    return text_of(value, language)


def title_of(content: dict[str, Any], language: str) -> tuple[str, str]:
    """The report's title and its period line."""
    if content.get("kind") == "brief":
        day = date.fromisoformat(content["date"])
        return translate("reports.brief.title", language), translate(
            "reports.brief.of_day", language, day=f"{day:%d/%m/%Y}"
        )
    period = content["period"]
    first, last = date.fromisoformat(period["first"]), date.fromisoformat(period["last"])
    label = period_label(period["kind"], first, last, language)
    return text_of(content["name"], language), f"{label} · {text_of(content['scope_name'], language)}"


# --- XLSX -----------------------------------------------------------------------------------------------------


def xlsx_bytes(content: dict[str, Any], language: str = "vi") -> bytes:
    """The report as an XLSX workbook: a cover sheet, then one sheet per section."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    cover = book.active
    assert cover is not None
    title, period = title_of(content, language)
    cover.title = translate("reports.xlsx.cover", language)[:SHEET_TITLE_MAX]
    cover["A1"] = title
    cover["A1"].font = Font(bold=True, size=14)
    cover["A2"] = period
    cover["A3"] = translate("reports.made_at", language, at=format_moment(content.get("made_at"), language))
    cover.column_dimensions["A"].width = 70
    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", fgColor="1F4E79")
    used: set[str] = set()
    for section in sections_of(content):
        name = text_of(section["title"], language)[:SHEET_TITLE_MAX]
        for bad in "[]:*?/\\":
            name = name.replace(bad, " ")
        while name in used:
            name = name[: SHEET_TITLE_MAX - 2] + "_" + str(len(used))
        used.add(name)
        sheet = book.create_sheet(name)
        columns = section["columns"]
        widths = []
        for index, column in enumerate(columns, start=1):
            header = text_of(column["title"], language)
            cell = sheet.cell(row=1, column=index, value=header)
            cell.font, cell.fill = header_font, header_fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
            widths.append(len(header) + 2)
        for row_number, row in enumerate(section["rows"], start=2):
            for index, column in enumerate(columns, start=1):
                value = row.get(column["key"])
                kind = column["type"]
                cell = sheet.cell(row=row_number, column=index)
                if value is None or value == "":
                    cell.value = None
                    continue
                if kind in ("number", "integer"):
                    cell.value = float(value) if kind == "number" else int(value)
                    cell.number_format = column["format"] or "#,##0.0"
                    shown = len(format_number(float(value), language, digits=1))
                elif kind in ("date", "datetime"):
                    moment = _moment(value)
                    cell.value = moment.date() if kind == "date" and moment else moment
                    cell.number_format = "DD/MM/YYYY" if kind == "date" else "DD/MM/YYYY HH:MM"
                    shown = 16
                else:
                    cell.value = text_of(value, language)
                    shown = len(cell.value)
                widths[index - 1] = max(widths[index - 1], shown + 2)
        if not section["rows"]:
            sheet.cell(row=2, column=1, value=empty_text(section, language))
        for index, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = min(width, COLUMN_WIDTH_MAX)
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def empty_text(section: dict[str, Any], language: str) -> str:
    key = "reports.section_empty" if section.get("ready", True) else "reports.section_not_ready"
    return translate(key, language)


def sections_of(content: dict[str, Any]) -> list[dict[str, Any]]:
    """The content's sections; a brief's parts as sections too (so the files of both kinds are made alike)."""
    if content.get("kind") != "brief":
        return list(content.get("sections", []))
    from cityops.reports.content import _column, _key

    def section(code: str, columns: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"code": code, "title": _key(f"reports.brief.{code}"), "columns": columns, "rows": rows}

    citizen = content.get("citizen", {})
    return [
        section(
            "changes",
            [
                _column("name"),
                _column("period"),
                _column("previous", "number", "#,##0.0"),
                _column("value", "number", "#,##0.0"),
                _column("change_pct", "number", "#,##0.0"),
            ],
            [
                {**row, "period": format_period(row.get("period_type", ""), row["period"], "vi")}
                for row in content["changes"]
            ],
        ),
        section(
            "off_target",
            [
                _column("name"),
                _column("subject_name"),
                _column("actual", "number", "#,##0.0"),
                _column("target", "number", "#,##0.0"),
                _column("projected", "number", "#,##0.0"),
                _column("status"),
            ],
            [{**row, "status": row["status_text"]} for row in content["off_target"]],
        ),
        section(
            "anomalies",
            [
                _column("name"),
                _column("subject_name"),
                _column("period_start", "date", "DD/MM/YYYY"),
                _column("value", "number", "#,##0.0"),
                _column("expected", "number", "#,##0.0"),
                _column("kind"),
            ],
            [{**row, "kind": row["kind_text"]} for row in content["anomalies"]],
        ),
        section(
            "overdue_incidents",
            [
                _column("id", "integer", "0"),
                _column("title"),
                _column("agency"),
                _column("deadline_at", "datetime"),
                _column("hours_overdue", "number", "#,##0.0"),
            ],
            content["overdue_incidents"],
        ),
        section(
            "feeds",
            [_column("code"), _column("agency"), _column("late_periods", "integer", "0"), _column("error")],
            content["feeds"],
        ),
        section(
            "citizen",
            [
                _column("yesterday", "integer", "#,##0"),
                _column("open", "integer", "#,##0"),
                _column("overdue", "integer", "#,##0"),
            ],
            [citizen] if citizen else [],
        ),
    ]


# --- PDF ------------------------------------------------------------------------------------------------------


def _fonts(font: Path) -> tuple[Path, Path]:
    bold = font.with_name(font.name.replace("Regular", "Bold"))
    for path in (font, bold):
        if not path.is_file():
            raise FontMissing(path)
    return font, bold


def pdf_bytes(content: dict[str, Any], font: Path, language: str = "vi") -> bytes:
    """The report as a PDF (A4, portrait; landscape for wide tables), the font embedded (subset)."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    regular, bold = _fonts(font)
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("Noto", "", str(regular))
    pdf.add_font("Noto", "B", str(bold))
    title, period = title_of(content, language)
    pdf.set_title(title)
    pdf.set_creator("cityops")
    pdf.set_lang(language)
    pdf.add_page()
    pdf.set_font("Noto", "B", 16)
    pdf.multi_cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Noto", "", 11)
    pdf.multi_cell(0, 6, period, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.multi_cell(
        0,
        6,
        translate("reports.made_at", language, at=format_moment(content.get("made_at"), language)),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    for section in sections_of(content):
        pdf.ln(4)
        pdf.set_font("Noto", "B", 13)
        count = len(section["rows"])
        heading = text_of(section["title"], language) + (f" ({count})" if count else "")
        pdf.multi_cell(0, 7, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Noto", "", 9)
        if not section["rows"]:
            pdf.multi_cell(0, 5, empty_text(section, language), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            continue
        columns = section["columns"]
        with pdf.table(
            text_align="LEFT",
            line_height=5,
            first_row_as_headings=True,
            headings_style=_heading_style(),
        ) as table:
            header = table.row()
            for column in columns:
                header.cell(text_of(column["title"], language))
            for row in section["rows"]:
                line = table.row()
                for column in columns:
                    line.cell(cell_text(column, row.get(column["key"]), language))
        for chart in section.get("charts", []):
            _chart(pdf, chart, language)
    return bytes(pdf.output())


def _heading_style() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(family="Noto", emphasis="BOLD", color=(255, 255, 255), fill_color=(31, 78, 121))


CHART_HEIGHT = 45.0


def _chart(pdf: Any, chart: dict[str, Any], language: str) -> None:
    """Bars of a series, a red line at its target, the first and last period named."""
    from fpdf.enums import XPos, YPos

    points = [(str(key), float(value)) for key, value in chart["points"]]
    target = chart.get("target")
    if pdf.will_page_break(CHART_HEIGHT + 14):
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font("Noto", "B", 10)
    pdf.multi_cell(
        0,
        5,
        f"{text_of(chart['title'], language)} ({text_of(chart['unit'], language)})",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    top = pdf.get_y() + 2
    left = pdf.l_margin + 18
    width = pdf.w - pdf.r_margin - left
    values = [value for _, value in points] + ([float(target)] if target is not None else [])
    high = max(max(values), 0.0) or 1.0
    low = min(min(values), 0.0)
    span = (high - low) or 1.0

    def y_of(value: float) -> float:
        return top + CHART_HEIGHT - (value - low) / span * CHART_HEIGHT

    pdf.set_draw_color(120, 120, 120)
    pdf.line(left, top, left, top + CHART_HEIGHT)
    pdf.line(left, y_of(0.0), left + width, y_of(0.0))
    pdf.set_font("Noto", "", 7)
    for value in (high, low) if low < 0 else (high,):
        pdf.set_xy(pdf.l_margin, y_of(value) - 2)
        pdf.cell(16, 4, format_number(value, language, digits=1), align="R")
    step = width / len(points)
    pdf.set_fill_color(31, 78, 121)
    for index, (_key, value) in enumerate(points):
        x = left + index * step + step * 0.15
        y0, y1 = sorted((y_of(0.0), y_of(value)))
        pdf.rect(x, y0, step * 0.7, max(y1 - y0, 0.2), style="F")
    if target is not None:
        pdf.set_draw_color(192, 0, 0)
        pdf.set_line_width(0.6)
        pdf.line(left, y_of(float(target)), left + width, y_of(float(target)))
        pdf.set_line_width(0.2)
        pdf.set_xy(left + width - 40, y_of(float(target)) - 4.5)
        pdf.set_text_color(192, 0, 0)
        pdf.cell(
            40, 4, translate("reports.chart.target", language, value=format_number(float(target), language)), align="R"
        )
        pdf.set_text_color(0, 0, 0)
    pdf.set_xy(left, top + CHART_HEIGHT + 1)
    pdf.cell(width / 2, 4, points[0][0])
    pdf.cell(width / 2, 4, points[-1][0], align="R")
    pdf.set_draw_color(0, 0, 0)
    pdf.set_y(top + CHART_HEIGHT + 6)
