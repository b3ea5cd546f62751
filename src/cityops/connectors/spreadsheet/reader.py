"""Reading spreadsheets into grids of cells: CSV (any common encoding and delimiter) and XLSX.

Protocol code only: no web framework, no database. What a person sees is what is read:
- a merged cell's value stands in every cell of its range (openpyxl keeps it only in the top-left cell);
- a number formatted as a percentage in Excel (shown 95,5 %, stored 0.955) is read as shown: 95.5;
- rows keep the numbers Excel shows beside them, so that an error can say "row 7";
- text is Unicode NFC (Windows-1258 and some Mac tools write Vietnamese letters decomposed), trimmed, without NUL.

The kind of a file is told by its content, never by its name: an XLSX is a zip holding a workbook part.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

MAX_COLUMNS = 100  # cells right of column CV are not read
MAX_SHEETS = 20
MAX_XLSX_UNPACKED_BYTES = 400 * 1024 * 1024  # a zip bomb stops here
CSV_DELIMITERS = (";", ",", "\t")
_SNIFF_LINES = 50

XLSX_MAIN_TYPES = (
    b"spreadsheetml.sheet.main+xml",  # .xlsx
    b"ms-excel.sheet.macroEnabled.main+xml",  # .xlsm (macros are never run: only cell values are read)
    b"spreadsheetml.template.main+xml",  # .xltx
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97–2003 (.xls) and other old Office files
_OTHER_BINARIES = {
    b"%PDF": "pdf",
    b"\x89PNG": "image",
    b"\xff\xd8\xff": "image",
    b"GIF8": "image",
    b"\x1f\x8b": "archive",
    b"Rar!": "archive",
    b"7z\xbc\xaf": "archive",
}


class ReadError(Exception):
    """The file as a whole cannot be read as a spreadsheet.

    code: not_spreadsheet, empty, unreadable or too_many_rows; reason: what exactly (xls, ods, zip, pdf, image,
    archive, binary, encoding, workbook, csv) — the caller turns both into a message.
    """

    def __init__(self, code: str, reason: str = "", **params: Any) -> None:
        super().__init__(f"{code}: {reason}" if reason else code)
        self.code = code
        self.reason = reason
        self.params = params


@dataclass
class Sheet:
    """The non-empty rows of one sheet (or of a CSV file), each with its row number as the spreadsheet shows it.

    Cells are listed from column A; a cell is None when empty, else a str, int, float, bool, date or datetime.
    """

    name: str
    rows: list[tuple[int, list[Any]]] = field(default_factory=list)


@dataclass
class Book:
    """What a file holds: its format, its sheets, and how a CSV file was read."""

    format: str  # xlsx | csv
    sheets: list[Sheet]
    encoding: str = ""
    delimiter: str = ""


def column_letter(index: int) -> str:
    """The spreadsheet name of a column counted from 0: A … Z, AA …"""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def clean_text(text: str) -> str:
    """Text as stored: NFC, no NUL, no surrounding spaces."""
    return unicodedata.normalize("NFC", text.replace("\x00", "")).strip()


def sniff(content: bytes) -> str:
    """ "xlsx" or "csv", told by the content; ReadError when the file is neither (or is empty)."""
    if not content.strip(b" \t\r\n\x00") or content in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        raise ReadError("empty")
    if content.startswith(b"PK\x03\x04") or content.startswith(b"PK\x05\x06"):
        return _zip_kind(content)
    if content.startswith(_OLE2):
        raise ReadError("not_spreadsheet", "xls")
    for magic, reason in _OTHER_BINARIES.items():
        if content.startswith(magic):
            raise ReadError("not_spreadsheet", reason)
    if not content.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in content[:65536]:
        raise ReadError("not_spreadsheet", "binary")
    return "csv"


def _zip_kind(content: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and b"opendocument.spreadsheet" in archive.read("mimetype")[:200]:
                raise ReadError("not_spreadsheet", "ods")
            if "[Content_Types].xml" not in names:
                raise ReadError("not_spreadsheet", "zip")
            with archive.open("[Content_Types].xml") as handle:
                types = handle.read(1024 * 1024)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise ReadError("unreadable", "workbook", detail=str(exc)[:120]) from exc
    if not any(kind in types for kind in XLSX_MAIN_TYPES):
        raise ReadError("not_spreadsheet", "zip")  # a Word document or another Office file
    return "xlsx"


def read(content: bytes, *, max_rows: int, sheet_name: str = "") -> Book:
    """Read a CSV or XLSX file (told by its content) into sheets of rows.

    max_rows bounds the non-empty rows of each sheet (ReadError too_many_rows past it). With sheet_name, only that
    sheet of a workbook is read (ReadError unreadable/no_sheet when absent).
    """
    kind = sniff(content)
    if kind == "xlsx":
        book = Book("xlsx", list(_xlsx_sheets(content, max_rows, sheet_name)))
    else:
        book = _csv_book(content, max_rows)
    if not any(sheet.rows for sheet in book.sheets):
        raise ReadError("empty")
    return book


# --- CSV ----------------------------------------------------------------------------------------------


def decode(content: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was in: UTF-8 (with or without BOM), UTF-16 with BOM, or
    Windows-1258 (Vietnamese ANSI, which older Excel writes)."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return content.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise ReadError("unreadable", "encoding") from exc
    if content.startswith(b"\xef\xbb\xbf"):
        try:
            return content[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise ReadError("unreadable", "encoding") from exc
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("cp1258"), "cp1258"
    except UnicodeDecodeError as exc:
        raise ReadError("unreadable", "encoding") from exc


def guess_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same number of cells most consistently.

    Vietnamese Excel saves CSV with ";" (the comma is the decimal mark), other tools with "," or a tab.
    """
    lines = [line for line in text.splitlines()[:_SNIFF_LINES] if line.strip()]
    best, best_score = ",", (0, 0)
    for delimiter in CSV_DELIMITERS:
        try:
            widths = [len(cells) for cells in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:
            continue
        wide = [width for width in widths if width > 1]
        if not wide:
            continue
        common = max(set(wide), key=wide.count)
        score = (wide.count(common), common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_book(content: bytes, max_rows: int) -> Book:
    text, encoding = decode(content)
    if "\x00" in text:
        raise ReadError("not_spreadsheet", "binary")
    delimiter = guess_delimiter(text)
    sheet = Sheet("")
    try:
        for number, cells in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
            values: list[Any] = [clean_text(cell) or None for cell in cells[:MAX_COLUMNS]]
            if any(value is not None for value in values):
                sheet.rows.append((number, values))
                if len(sheet.rows) > max_rows:
                    raise ReadError("too_many_rows", limit=max_rows)
    except csv.Error as exc:
        raise ReadError("unreadable", "csv", detail=str(exc)[:120]) from exc
    return Book("csv", [sheet], encoding=encoding, delimiter=delimiter)


# --- XLSX ---------------------------------------------------------------------------------------------


def _xlsx_sheets(content: bytes, max_rows: int, sheet_name: str) -> Iterator[Sheet]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ReadError("unreadable", "workbook", detail=str(exc)[:120]) from exc
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise ReadError("unreadable", "unpacks_too_large", limit=MAX_XLSX_UNPACKED_BYTES // (1024 * 1024))
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds of error on a damaged workbook
        raise ReadError("unreadable", "workbook", detail=f"{type(exc).__name__}: {exc}"[:120]) from exc
    try:
        worksheets = [sheet for sheet in workbook.worksheets if hasattr(sheet, "iter_rows")]  # not chart sheets
        if sheet_name:
            wanted = clean_text(sheet_name).casefold()
            worksheets = [sheet for sheet in worksheets if clean_text(sheet.title).casefold() == wanted]
            if not worksheets:
                raise ReadError("unreadable", "no_sheet", sheet=sheet_name[:60])
        for worksheet in worksheets[:MAX_SHEETS]:
            try:
                yield _read_sheet(workbook, worksheet, max_rows)
            except ReadError:
                raise
            except Exception as exc:  # a damaged sheet part
                raise ReadError("unreadable", "workbook", detail=f"{type(exc).__name__}: {exc}"[:120]) from exc
    finally:
        workbook.close()


def _read_sheet(workbook: Any, worksheet: Any, max_rows: int) -> Sheet:
    merged = _merged_ranges(workbook, worksheet)
    worksheet.reset_dimensions()  # the size a file announces may lie; read the rows it has
    sheet = Sheet(clean_text(str(worksheet.title)))
    grid: dict[int, list[Any]] = {}
    last_row = 0
    for number, cells in enumerate(worksheet.iter_rows(min_row=1, min_col=1, max_col=MAX_COLUMNS), start=1):
        if number > 2 * max_rows + 1000:  # also bounds the blank rows a file may skip over
            raise ReadError("too_many_rows", limit=max_rows)
        values = [_cell_value(cell) for cell in cells]
        if any(value is not None for value in values):
            grid[number] = values
            last_row = number
            if len(grid) > max_rows:
                raise ReadError("too_many_rows", limit=max_rows)
    for first_row, first_column, end_row, end_column in merged:
        top_left = grid.get(first_row, [None] * MAX_COLUMNS)[first_column - 1]
        if top_left is None:
            continue
        for row in range(first_row, min(end_row, last_row) + 1):
            values = grid.setdefault(row, [None] * MAX_COLUMNS)
            for column in range(first_column, min(end_column, MAX_COLUMNS) + 1):
                if values[column - 1] is None:
                    values[column - 1] = top_left
    sheet.rows = [(number, _trimmed(grid[number])) for number in sorted(grid)]
    return sheet


def _trimmed(values: list[Any]) -> list[Any]:
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    return values[:end]


def _cell_value(cell: Any) -> Any:
    value = getattr(cell, "value", None)
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value) or None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if "%" in (getattr(cell, "number_format", "") or ""):
            return round(value * 100, 10)  # read as shown: 0.955 formatted "0.0%" is 95.5
        return value
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, time | timedelta):
        return str(value)
    return clean_text(str(value)) or None


def _merged_ranges(workbook: Any, worksheet: Any) -> list[tuple[int, int, int, int]]:
    """The merged ranges of a sheet as (first row, first column, last row, last column).

    openpyxl's read-only mode does not report them, so the sheet's XML is scanned for <mergeCell ref="A1:C2"/>
    (they follow the cells, at the end of the part).
    """
    from openpyxl.utils.cell import range_boundaries
    from openpyxl.xml.functions import iterparse

    archive = getattr(workbook, "_archive", None)
    path = getattr(worksheet, "_worksheet_path", None)
    if archive is None or path is None:
        return []
    ranges: list[tuple[int, int, int, int]] = []
    with archive.open(path) as source:
        for _event, element in iterparse(source):
            if element.tag.endswith("}mergeCell"):
                reference = element.get("ref", "")
                try:
                    first_column, first_row, last_column, last_row = range_boundaries(reference)
                except (ValueError, TypeError):
                    continue
                if None not in (first_column, first_row, last_column, last_row):
                    ranges.append((first_row, first_column, last_row, last_column))
            elif element.tag.endswith("}row") or element.tag.endswith("}c"):
                element.clear()
    return ranges
