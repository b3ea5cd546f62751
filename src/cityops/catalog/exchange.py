"""The rules of catalog export and import: JSON (the data files' shape), CSV and XLSX; no HTTP.

Export writes what a principal may see. Import reads any of the three formats back, validates every row with
the same shape (`IndicatorDef`) and the same reference checks (`service.reference_problems`) as the catalog
files, applies every good row with the same versioning as `catalog load`, and says why each bad row was
rejected, in Vietnamese and English. An indicator absent from the file is kept, never deleted.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops import __version__
from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.catalog import service
from cityops.catalog.models import Domain, Indicator
from cityops.catalog.schemas import IndicatorDef, TargetDef
from cityops.clock import LOCAL_TZ
from cityops.geo.models import Subject
from cityops.i18n import both, fold, format_moment, translate

Format = Literal["json", "csv", "xlsx"]
FORMATS: tuple[Format, ...] = ("json", "csv", "xlsx")
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
MAX_IMPORT_BYTES = 4 * 1024 * 1024  # the default catalog is about 0.2 MB as JSON, 40 kB as XLSX
MAX_IMPORT_ROWS = 5_000
MAX_XLSX_UNPACKED_BYTES = 64 * 1024 * 1024  # an XLSX is a zip: refuse one that unpacks to more than this
MAX_TEXT = 10_000  # descriptions; the other texts are limited by their columns
MAX_LIST_ITEMS = 100
MAX_INT = 2**31 - 1
MAX_COLUMNS = 200
PLAN_YEARS = 5  # target columns for this year and the next four, besides every year that has a target
INDICATOR_SHEET = "Chỉ tiêu"
README_SHEET = "README"
LIST_SEPARATOR = "; "
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula in a CSV cell
KEY = re.compile(r"[a-z][a-z0-9_]*")
TARGET_KEY = re.compile(r"target_(\d{4})")
SUBJECT_TARGET = re.compile(r"^\s*(\d{4})\s*@\s*([^\s=@]+)\s*=\s*(.+?)\s*$")
NUMBER = re.compile(r"^[+-]?[0-9][0-9.,]*(?:[eE][+-]?[0-9]+)?$")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- columns of CSV and XLSX --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of the CSV and XLSX files: its key (as the second header line says), its kind, its width."""

    key: str
    kind: Literal["text", "integer", "number", "list"]
    width: int

    def label(self, language: str) -> str:
        year = TARGET_KEY.fullmatch(self.key)
        if year:
            return translate("catalog_exchange.column.target_year", language, year=year[1])
        return translate(f"catalog_exchange.column.{self.key}", language)

    def help(self, language: str) -> str:
        year = TARGET_KEY.fullmatch(self.key)
        if year:
            return translate("catalog_exchange.help.target_year", language, year=year[1])
        return translate(f"catalog_exchange.help.{self.key}", language)


LEADING_COLUMNS = (
    Column("domain", "text", 10),
    Column("code", "text", 34),
    Column("monitored_item", "integer", 10),
    Column("name_vi", "text", 44),
    Column("name_en", "text", 44),
    Column("unit", "text", 14),
    Column("period", "text", 12),
    Column("aggregation", "text", 13),
    Column("numerator", "text", 30),
    Column("denominator", "text", 30),
    Column("direction", "text", 15),
    Column("owner", "text", 28),
    Column("source_system", "text", 26),
    Column("collection", "text", 12),
    Column("access", "text", 12),
    Column("subject_level", "text", 13),
    Column("min", "number", 10),
    Column("max", "number", 10),
    Column("dimensions", "list", 28),
    Column("references", "list", 40),
    Column("threshold_warning", "number", 13),
    Column("threshold_critical", "number", 13),
)
# The target_<year> columns come here, one per year.
TRAILING_COLUMNS = (
    Column("targets_by_subject", "text", 24),
    Column("description_vi", "text", 60),
    Column("description_en", "text", 60),
)
FIXED_COLUMNS = {column.key: column for column in (*LEADING_COLUMNS, *TRAILING_COLUMNS)}


def target_column(year: int) -> Column:
    return Column(f"target_{year}", "number", 12)


def table_columns(years: Iterable[int]) -> list[Column]:
    """Every column of the CSV and XLSX, with one target column per year."""
    return [*LEADING_COLUMNS, *(target_column(year) for year in sorted(set(years))), *TRAILING_COLUMNS]


def csv_header(column: Column) -> str:
    return f"{column.label('vi')} / {column.label('en')} ({column.key})"


def english_header(column: Column) -> str:
    return f"{column.label('en')} ({column.key})"


@cache
def _header_labels() -> dict[str, str]:
    labels: dict[str, str] = {}
    for column in FIXED_COLUMNS.values():
        for language in ("vi", "en"):
            labels[fold(column.label(language))] = column.key
    return labels


def column_key(header: object) -> str | None:
    """The column key a header cell names: "… (key)", the bare key, or a column's Vietnamese or English label."""
    text = str(header).strip() if header is not None else ""
    if not text:
        return None
    bracketed = re.search(r"\(([a-z][a-z0-9_]*)\)\s*$", text)
    candidate = bracketed[1] if bracketed else text
    if candidate in FIXED_COLUMNS:
        return candidate
    year = TARGET_KEY.fullmatch(candidate)
    if year and 2000 <= int(year[1]) <= 2100:
        return candidate
    return _header_labels().get(fold(text), "?" + text[:60])


# --- numbers --------------------------------------------------------------------------------------------


def parse_number(text: str) -> float | None:
    """A number as people write it: 98,5 or 98.5, 1.234.567,5 or 1,234,567.5, 1 234 567; None if it is not one.

    With both separators the last one is the decimal mark. A single comma or a single dot is the decimal mark
    (98,5 = 98.5 = 98½); several of the same are thousands separators (1.234.567 = 1234567).
    """
    compact = re.sub(r"[\s\u00a0\u202f]", "", text)
    if not NUMBER.match(compact):
        return None
    mantissa, exponent = re.match(r"^(.*?)((?:[eE][+-]?[0-9]+)?)$", compact).groups()  # type: ignore[union-attr]
    commas, dots = mantissa.count(","), mantissa.count(".")
    if commas and dots:
        decimal_mark = "," if mantissa.rfind(",") > mantissa.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        if mantissa.count(decimal_mark) > 1:
            return None
        mantissa = mantissa.replace(thousands, "").replace(decimal_mark, ".")
    elif commas:
        mantissa = mantissa.replace(",", ".") if commas == 1 else mantissa.replace(",", "")
    elif dots > 1:
        mantissa = mantissa.replace(".", "")
    try:
        value = float(mantissa + exponent)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def plain_number(value: float | int) -> str:
    """A number as text without exponent or needless zeros: 98, 98.5, 0.00001."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- export ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """An exported file: its name, media type and bytes."""

    filename: str
    media_type: str
    content: bytes
    indicators: int


def indicator_dict(indicator: Indicator, owner_code: str | None) -> dict[str, Any]:
    """An indicator in the shape of the catalog files (`IndicatorDef`), every field."""
    thresholds = indicator.thresholds or {}
    return {
        "code": indicator.code,
        "monitored_item": indicator.monitored_item,
        "name_vi": indicator.name_vi,
        "name_en": indicator.name_en,
        "description_vi": indicator.description_vi,
        "description_en": indicator.description_en,
        "unit": indicator.unit,
        "period": indicator.period_type,
        "aggregation": indicator.aggregation,
        "numerator": indicator.numerator_code,
        "denominator": indicator.denominator_code,
        "direction": indicator.direction,
        "owner": owner_code or "",
        "source_system": indicator.source_system,
        "collection": indicator.collection,
        "access": indicator.access,
        "subject_level": indicator.subject_level,
        "min": indicator.min_value,
        "max": indicator.max_value,
        "dimensions": list(indicator.dimensions or []),
        "references": list(indicator.references or []),
        "targets": [
            {"year": int(target["year"]), "value": float(target["value"]), "subject": str(target.get("subject") or "")}
            for target in indicator.targets or []
        ],
        "thresholds": {"warning": thresholds.get("warning"), "critical": thresholds.get("critical")},
    }


@cache
def shipped_units() -> dict[str, dict[str, str]]:
    """The units of measure that ship with cityops (catalog/data/units.toml); they have no table."""
    return {code: unit.model_dump() for code, unit in service.read_catalog().units.items()}


def _agencies_in_tree_order(session: Session) -> list[dict[str, Any]]:
    """Agencies other than the communes' People's Committees (those come from the geography), parents first."""
    rows = session.scalars(select(Agency).order_by(Agency.id)).all()
    codes = {agency.id: agency.code for agency in rows}
    children: dict[int | None, list[Agency]] = {}
    for agency in rows:
        if agency.kind != "commune":
            parent = agency.parent_id if agency.parent_id in codes else None
            children.setdefault(parent, []).append(agency)
    ordered: list[dict[str, Any]] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        agency = stack.pop()
        ordered.append(
            {
                "code": agency.code,
                "name_vi": agency.name_vi,
                "name_en": agency.name_en,
                "kind": agency.kind,
                "parent": codes.get(agency.parent_id, "") if agency.parent_id else "",
            }
        )
        stack.extend(reversed(children.get(agency.id, [])))
    return ordered


def catalog_document(session: Session, principal: Principal | None) -> dict[str, Any]:
    """The whole catalog in the shape of its data files: agencies, units, and each domain with its indicators.

    With a principal, only the indicators they may see (`service.visible`); without one (the CLI), all.
    """
    query = (
        select(Indicator, Domain.code, Agency.code)
        .join(Domain, Domain.id == Indicator.domain_id)
        .outerjoin(Agency, Agency.id == Indicator.owner_agency_id)
    )
    if principal is not None:
        query = service.visible(query, principal)
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for indicator, domain_code, owner_code in session.execute(query.order_by(Indicator.id)):
        by_domain.setdefault(domain_code, []).append(indicator_dict(indicator, owner_code))
    domains = session.scalars(select(Domain).order_by(Domain.sort_order, Domain.code)).all()
    return {
        "agencies": _agencies_in_tree_order(session),
        "units": list(shipped_units().values()),
        "domains": [
            {
                "domain": {
                    "code": domain.code,
                    "name_vi": domain.name_vi,
                    "name_en": domain.name_en,
                    "source_system": domain.source_system,
                    "order": domain.sort_order,
                },
                "indicators": by_domain.get(domain.code, []),
            }
            for domain in domains
        ],
    }


def export_catalog(session: Session, principal: Principal | None, now: datetime, fmt: Format) -> Export:
    """The catalog the principal may see, as a JSON, CSV or XLSX file named cityops-catalog-<local date>."""
    document = catalog_document(session, principal)
    count = sum(len(domain["indicators"]) for domain in document["domains"])
    filename = f"cityops-catalog-{now.astimezone(LOCAL_TZ).date().isoformat()}.{fmt}"
    if fmt == "json":
        content = json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n"
    elif fmt == "csv":
        content = _export_csv(document, now)
    else:
        content = _export_xlsx(document, now)
    return Export(filename, MEDIA_TYPES[fmt], content, count)


def _years(document: dict[str, Any], now: datetime) -> list[int]:
    this_year = now.astimezone(LOCAL_TZ).year
    years = set(range(this_year, this_year + PLAN_YEARS))
    for domain in document["domains"]:
        for indicator in domain["indicators"]:
            years.update(target["year"] for target in indicator["targets"] if not target["subject"])
    return sorted(years)


def _flat_rows(document: dict[str, Any], columns: list[Column]) -> Iterator[list[Any]]:
    """One list of cell values per indicator, in column order; numbers stay numbers, lists are joined."""
    for domain in document["domains"]:
        for indicator in domain["indicators"]:
            targets = {target["year"]: target["value"] for target in indicator["targets"] if not target["subject"]}
            by_subject = LIST_SEPARATOR.join(
                f"{target['year']}@{target['subject']}={plain_number(target['value'])}"
                for target in indicator["targets"]
                if target["subject"]
            )
            cells: dict[str, Any] = {
                **indicator,
                "domain": domain["domain"]["code"],
                "threshold_warning": indicator["thresholds"]["warning"],
                "threshold_critical": indicator["thresholds"]["critical"],
                "targets_by_subject": by_subject,
            }
            row: list[Any] = []
            for column in columns:
                year = TARGET_KEY.fullmatch(column.key)
                value = targets.get(int(year[1])) if year else cells[column.key]
                row.append(LIST_SEPARATOR.join(value or []) if column.kind == "list" else value)
            yield row


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float):
        return plain_number(value)
    text = str(value)
    # A leading apostrophe keeps a spreadsheet from running the cell as a formula; import takes it off again.
    return "'" + text if text.startswith(FORMULA_START) else text


def _export_csv(document: dict[str, Any], now: datetime) -> bytes:
    columns = table_columns(_years(document, now))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([csv_header(column) for column in columns])
    for row in _flat_rows(document, columns):
        writer.writerow([_csv_text(value) for value in row])
    return buffer.getvalue().encode("utf-8-sig")  # the BOM tells Excel the file is UTF-8


def _export_xlsx(document: dict[str, Any], now: datetime) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    bold, soft = Font(bold=True), Font(italic=True, color="555555")
    fill = PatternFill("solid", fgColor="DDE7F3")

    def write_table(sheet: Any, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> None:
        for index, column in enumerate(columns, start=1):
            top = sheet.cell(row=1, column=index, value=column.label("vi"))
            top.font, top.fill = bold, fill
            below = sheet.cell(row=2, column=index, value=english_header(column))
            below.font, below.fill = soft, fill
            sheet.column_dimensions[get_column_letter(index)].width = column.width
        count = 0
        for count, values in enumerate(rows, start=1):
            for index, value in enumerate(values, start=1):
                _xlsx_cell(sheet, count + 2, index, value)
        sheet.freeze_panes = "C3" if sheet.title == INDICATOR_SHEET else "A3"
        sheet.auto_filter.ref = f"A2:{get_column_letter(len(columns))}{count + 2}"

    workbook = Workbook()
    indicators = workbook.active
    indicators.title = INDICATOR_SHEET
    columns = table_columns(_years(document, now))
    write_table(indicators, columns, _flat_rows(document, columns))

    readme = workbook.create_sheet(README_SHEET)
    readme.column_dimensions["A"].width = 24
    for letter in "BC":
        readme.column_dimensions[letter].width = 30
    for letter in "DE":
        readme.column_dimensions[letter].width = 70
    readme.append([translate("catalog_exchange.readme.title", "vi")])
    readme["A1"].font = Font(bold=True, size=14)
    readme.append([translate("catalog_exchange.readme.title", "en")])
    readme["A2"].font = Font(italic=True, size=12)
    readme.append([translate("catalog_exchange.readme.exported", "vi", at=format_moment(now, "vi"))])
    readme.append([translate("catalog_exchange.readme.exported", "en", at=format_moment(now, "en"))])
    readme.append([])
    for note in ("rows", "headers", "numbers", "targets", "lists", "import", "absent", "codes"):
        vi, en = both(f"catalog_exchange.readme.{note}", sheet=INDICATOR_SHEET)
        readme.append([vi])
        readme.append([en])
        readme.cell(row=readme.max_row, column=1).font = soft
    readme.append([])
    for language in ("vi", "en"):
        parts = ("key", "vi", "en", "help_vi", "help_en")
        readme.append([translate(f"catalog_exchange.readme.heading_{part}", language) for part in parts])
        for cell in readme[readme.max_row]:
            cell.font, cell.fill = (bold if language == "vi" else soft), fill
    for column in columns:
        readme.append([column.key, column.label("vi"), column.label("en"), column.help("vi"), column.help("en")])
        for cell in readme[readme.max_row][3:]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")

    reference = (
        (
            "Lĩnh vực",
            ("code", "name_vi", "name_en", "source_system", "order"),
            [d["domain"] for d in document["domains"]],
        ),
        ("Đơn vị tính", ("code", "symbol_vi", "symbol_en", "name_vi", "name_en"), document["units"]),
        ("Cơ quan", ("code", "name_vi", "name_en", "kind", "parent"), document["agencies"]),
    )
    for title, keys, items in reference:
        sheet = workbook.create_sheet(title)
        sheet_columns = [Column(key, "text", 40 if key.startswith("name") else 18) for key in keys]
        write_table(sheet, sheet_columns, ([item[key] for key in keys] for item in items))

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_cell(sheet: Any, row: int, column: int, value: Any) -> None:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if value is None or value == "":
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        cell = sheet.cell(row=row, column=column, value=ILLEGAL_CHARACTERS_RE.sub("", str(value)))
        cell.data_type = "s"  # text stays text, even when it starts with "=": never a formula
        return
    sheet.cell(row=row, column=column, value=int(value) if float(value).is_integer() else value)


# --- import: reading the file into rows ----------------------------------------------------------------


class ImportRefused(ValueError):
    """The whole file is refused (nothing read from it is applied): a problem code and its parameters."""

    def __init__(self, status: int, code: str, **params: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.params = params

    def messages(self) -> tuple[str, str]:
        return both(f"problem.{self.code}.detail", **self.params)


def _unreadable(fmt: str, reason: str, **params: Any) -> ImportRefused:
    vi, en = both(f"catalog_exchange.unreadable.{reason}", **params)
    return ImportRefused(422, "catalog_file_unreadable", format=fmt.upper(), reason_vi=vi, reason_en=en)


def _not_a_catalog(fmt: str, reason: str, **params: Any) -> ImportRefused:
    vi, en = both(f"catalog_exchange.not_catalog.{reason}", **params)
    return ImportRefused(422, "catalog_file_not_catalog", format=fmt.upper(), reason_vi=vi, reason_en=en)


@dataclass(frozen=True)
class Where:
    """Where a row is in the file: its row number (and sheet, for XLSX), or its path in a JSON document."""

    row: int | None
    sheet: str | None = None
    path: str | None = None

    def text(self, language: str) -> str:
        if self.sheet is not None:
            return translate("catalog_exchange.where.sheet_row", language, sheet=self.sheet, row=self.row)
        if self.path is not None:
            if self.row is None:
                return self.path
            return translate("catalog_exchange.where.path", language, path=self.path, row=self.row)
        return translate("catalog_exchange.where.row", language, row=self.row)

    def as_dict(self) -> dict[str, Any]:
        return {"sheet": self.sheet, "row": self.row, "path": self.path}


@dataclass(frozen=True)
class RowProblem:
    """Why a row cannot be applied: the field (as the file names it), a reason and its parameters."""

    field: str
    reason: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass
class Row:
    """One indicator as read from the file, before validation."""

    where: Where
    domain: str
    raw: dict[str, Any]
    problems: list[RowProblem] = dataclasses.field(default_factory=list)
    # IndicatorDef paths → the column that gave them (target_2026 for targets.0.value); JSON keeps the paths.
    names: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def code(self) -> str:
        code = self.raw.get("code")
        return code[:80] if isinstance(code, str) else ""

    def name(self, path: str) -> str:
        if path in self.names:
            return self.names[path]
        head = path.split(".")[0]
        return self.names.get(head, path)


def detect_format(filename: str, content: bytes) -> Format:
    """The format by the file's extension, else by its first bytes."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in FORMATS:
        return extension
    if content.startswith(b"PK\x03\x04"):
        return "xlsx"
    if content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "json"
    return "csv"


def read_rows(content: bytes, fmt: Format) -> list[Row]:
    """The indicators of a file as rows; a file that cannot be a catalog is refused whole (ImportRefused)."""
    if fmt == "json":
        return _json_rows(content)
    if fmt == "csv":
        return _table_rows(_csv_tables(content), fmt)
    return _table_rows(_xlsx_tables(content), fmt)


def _json_rows(content: bytes) -> list[Row]:
    try:
        # NaN and Infinity are read (and later rejected with their row) rather than refusing the whole file.
        document = json.loads(content.decode("utf-8-sig"), parse_constant=float)
    except UnicodeDecodeError as exc:
        raise _unreadable("json", "not_utf8") from exc
    except (ValueError, RecursionError) as exc:
        raise _unreadable("json", "json", detail=str(exc)[:120]) from exc
    if isinstance(document, dict) and "domain" in document and "domains" not in document:
        document = {"domains": [document]}  # one domain file, like catalog/data/hcc.toml, is fine too
    if not isinstance(document, dict) or not isinstance(document.get("domains"), list):
        raise _not_a_catalog("json", "json_shape")
    unknown = sorted(set(document) - {"agencies", "units", "domains"})
    if unknown:
        raise _not_a_catalog("json", "json_keys", keys=", ".join(str(key)[:40] for key in unknown[:5]))
    rows: list[Row] = []
    for domain_index, entry in enumerate(document["domains"]):
        if len(rows) >= MAX_IMPORT_ROWS:
            raise ImportRefused(422, "catalog_file_too_many_rows", limit=MAX_IMPORT_ROWS)
        domain = entry.get("domain") if isinstance(entry, dict) else None
        indicators = entry.get("indicators", []) if isinstance(entry, dict) else None
        code = domain.get("code") if isinstance(domain, dict) else None
        if not isinstance(code, str) or not isinstance(indicators, list):
            where = Where(None, path=f"domains[{domain_index}]")
            rows.append(Row(where, "", {}, [RowProblem("domain", "domain_entry")]))
            continue
        for index, item in enumerate(indicators):
            where = Where(len(rows) + 1, path=f"domains[{domain_index}].indicators[{index}]")
            if not isinstance(item, dict):
                rows.append(Row(where, code, {}, [RowProblem("(row)", "not_an_object")]))
            else:
                rows.append(Row(where, code, dict(item)))
            if len(rows) > MAX_IMPORT_ROWS:
                raise ImportRefused(422, "catalog_file_too_many_rows", limit=MAX_IMPORT_ROWS)
    return rows


@dataclass
class _Table:
    """A grid of cells read from a CSV file or an XLSX sheet; rows are numbered from 1."""

    sheet: str | None
    rows: list[tuple[int, list[Any]]]


def _csv_tables(content: bytes) -> list[_Table]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _unreadable("csv", "not_utf8") from exc
    if "\x00" in text:
        raise _unreadable("csv", "binary")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)  # Excel in Vietnamese saves with ";"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[Any]]] = []
    try:
        for number, cells in enumerate(reader, start=1):
            rows.append((number, cells))
            if number > MAX_IMPORT_ROWS + 2:
                raise ImportRefused(422, "catalog_file_too_many_rows", limit=MAX_IMPORT_ROWS)
    except csv.Error as exc:
        raise _unreadable("csv", "csv", detail=str(exc)[:120]) from exc
    return [_Table(None, rows)]


def _xlsx_tables(content: bytes) -> list[_Table]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _unreadable("xlsx", "not_zip") from exc
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise _unreadable("xlsx", "unpacks_too_large", limit=MAX_XLSX_UNPACKED_BYTES // (1024 * 1024))
    from openpyxl import load_workbook

    tables: list[_Table] = []
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            for sheet in workbook.worksheets:
                sheet.reset_dimensions()  # the size a file announces may lie; read only the rows it has
                rows: list[tuple[int, list[Any]]] = []
                for number, values in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1):
                    if number > MAX_IMPORT_ROWS + 1000:  # also bounds the blank rows a file may skip over
                        raise ImportRefused(422, "catalog_file_too_many_rows", limit=MAX_IMPORT_ROWS)
                    if any(value not in (None, "") for value in values):
                        rows.append((number, list(values)))
                tables.append(_Table(sheet.title, rows))
        finally:
            workbook.close()
    except ImportRefused:
        raise
    except Exception as exc:  # openpyxl raises many kinds of error on a damaged workbook
        raise _unreadable("xlsx", "workbook", detail=f"{type(exc).__name__}: {exc}"[:120]) from exc
    return tables


def _header(table: _Table) -> tuple[int, list[str | None]] | None:
    """The header row of a table (the English-and-key line under the Vietnamese one, or a single line)."""
    for position in (1, 0):  # the second line first: it names the keys exactly
        if position < len(table.rows):
            keys = [column_key(cell) for cell in table.rows[position][1]]
            if "code" in keys and "domain" in keys:
                return position, keys
    return None


def _table_rows(tables: list[_Table], fmt: Format) -> list[Row]:
    found = [(table, header) for table in tables if (header := _header(table)) is not None]
    if not found:
        raise _not_a_catalog(fmt, "no_columns")
    rows: list[Row] = []
    for table, (position, keys) in found:
        present = [key for key in keys if key is not None]
        unknown = [key[1:] for key in present if key.startswith("?")]
        missing = [key for key in FIXED_COLUMNS if key not in present]
        twice = sorted({key for key in present if present.count(key) > 1 and not key.startswith("?")})
        if unknown or missing or twice:
            raise ImportRefused(
                422,
                "catalog_file_columns",
                sheet=table.sheet or fmt.upper(),
                missing=", ".join(missing) or "—",
                unknown=", ".join([*unknown, *twice]) or "—",
            )
        for number, cells in table.rows[position + 1 :]:
            if not any(str(cell).strip() for cell in cells if cell is not None):
                continue
            by_key = {key: cells[index] for index, key in enumerate(keys) if key is not None and index < len(cells)}
            rows.append(_row_from_cells(by_key, Where(number, sheet=table.sheet), csv_cells=fmt == "csv"))
    if len(rows) > MAX_IMPORT_ROWS:
        raise ImportRefused(422, "catalog_file_too_many_rows", limit=MAX_IMPORT_ROWS)
    return rows


def _text(value: Any, csv_cells: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int | float):
        return plain_number(value)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value).strip()
    if csv_cells and text.startswith("'") and text[1:].startswith(FORMULA_START):
        text = text[1:]
    return text


def _number(value: Any) -> float | RowProblem | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return RowProblem("", "not_a_number", {"value": str(value)[:40]})
    if isinstance(value, str):
        number = parse_number(value)
        return RowProblem("", "not_a_number", {"value": value.strip()[:40]}) if number is None else number
    return float(value)


def _row_from_cells(cells: dict[str, Any], where: Where, *, csv_cells: bool) -> Row:
    raw: dict[str, Any] = {}
    problems: list[RowProblem] = []
    names: dict[str, str] = {"thresholds.warning": "threshold_warning", "thresholds.critical": "threshold_critical"}
    thresholds: dict[str, float | None] = {}
    targets: list[dict[str, Any]] = []

    def number(key: str) -> float | None:
        value = _number(cells.get(key))
        if isinstance(value, RowProblem):
            problems.append(RowProblem(key, value.reason, value.params))
            return None
        return value

    for key, column in FIXED_COLUMNS.items():
        if key in ("domain", "targets_by_subject"):
            continue
        if column.kind == "text":
            text = _text(cells.get(key), csv_cells)
            if text:
                raw[key] = text
        elif column.kind == "list":
            text = _text(cells.get(key), csv_cells)
            raw[key] = [item.strip() for item in text.split(";") if item.strip()]
        elif column.kind == "integer":
            value = number(key)
            if value is not None:
                if value.is_integer():
                    raw[key] = int(value)
                else:
                    problems.append(RowProblem(key, "not_an_integer", {"value": plain_number(value)}))
        elif key.startswith("threshold_"):
            thresholds[key.removeprefix("threshold_")] = number(key)
        else:
            raw[key] = number(key)
    raw["thresholds"] = thresholds
    for key in sorted(key for key in cells if TARGET_KEY.fullmatch(key)):
        value = number(key)
        if value is not None:
            names[f"targets.{len(targets)}"] = key
            targets.append({"year": int(key.removeprefix("target_")), "value": value, "subject": ""})
    for item in _text(cells.get("targets_by_subject"), csv_cells).split(";"):
        if not item.strip():
            continue
        match = SUBJECT_TARGET.match(item)
        value = parse_number(match[3]) if match else None
        if match is None or value is None:
            problems.append(RowProblem("targets_by_subject", "subject_target", {"value": item.strip()[:60]}))
            continue
        names[f"targets.{len(targets)}"] = "targets_by_subject"
        targets.append({"year": int(match[1]), "value": value, "subject": match[2]})
    raw["targets"] = targets
    return Row(where, _text(cells.get("domain"), csv_cells), raw, problems, names)


# --- import: validating and applying ----------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """One reason a row was not applied: where, which indicator and field, why (Vietnamese and English)."""

    where: Where
    code: str
    field: str
    reason: str
    message_vi: str
    message_en: str

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.where.as_dict(),
            "code": self.code,
            "field": self.field,
            "reason": self.reason,
            "message_vi": self.message_vi,
            "message_en": self.message_en,
        }


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any


@dataclass
class Outcome:
    """What import did (or, in a dry run, would do) to one indicator."""

    code: str
    where: Where
    outcome: Literal["created", "updated", "unchanged"]
    version: int
    previous_version: int | None
    changes: list[Change]

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "outcome": self.outcome,
            "version": self.version,
            "previous_version": self.previous_version,
            **self.where.as_dict(),
            "changes": [{"field": change.field, "old": change.old, "new": change.new} for change in self.changes],
        }


@dataclass
class ImportReport:
    """What an import did, or would do in a dry run."""

    file: str
    format: str
    dry_run: bool
    rows: int = 0
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    rejected: list[Rejection] = dataclasses.field(default_factory=list)
    not_in_file: int = 0

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.outcomes if item.outcome == outcome)

    @property
    def rejected_rows(self) -> int:
        return len({(item.where.sheet, item.where.row, item.where.path) for item in self.rejected})

    def summary(self) -> tuple[str, str]:
        return both(
            "catalog_exchange.summary_dry_run" if self.dry_run else "catalog_exchange.summary",
            created=self.count("created"),
            updated=self.count("updated"),
            unchanged=self.count("unchanged"),
            rejected=self.rejected_rows,
            absent=self.not_in_file,
        )

    def as_dict(self) -> dict[str, Any]:
        vi, en = self.summary()
        return {
            "file": self.file,
            "format": self.format,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": self.count("created"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "rejected_rows": self.rejected_rows,
            "not_in_file": self.not_in_file,
            "message_vi": vi,
            "message_en": en,
            "indicators": [item.as_dict() for item in self.outcomes],
            "rejected": [item.as_dict() for item in self.rejected],
        }


@dataclass
class _Context:
    """What rows are checked against: the catalog as it is in the database."""

    domain_ids: dict[str, int]
    agency_ids: dict[str, int]
    units: set[str]
    current: dict[str, tuple[Indicator, str | None]]

    @classmethod
    def load(cls, session: Session, *, lock: bool) -> _Context:
        query = select(Indicator, Agency.code).outerjoin(Agency, Agency.id == Indicator.owner_agency_id)
        if lock:  # PostgreSQL: an edit in the UI or another import waits until this one commits
            query = query.with_for_update(of=Indicator)
        current: dict[str, tuple[Indicator, str | None]] = {
            indicator.code: (indicator, owner) for indicator, owner in session.execute(query)
        }
        return cls(
            domain_ids={code: id_ for id_, code in session.execute(select(Domain.id, Domain.code))},
            agency_ids={code: id_ for id_, code in session.execute(select(Agency.id, Agency.code))},
            # Units have no table: those that ship with cityops, and any an indicator already uses.
            units=set(shipped_units()) | {indicator.unit for indicator, _ in current.values()},
            current=current,
        )


# Every placeholder a reason's message may hold, so that a message never lacks one.
REASON_DEFAULTS: dict[str, Any] = dict.fromkeys(
    ("value", "limit", "allowed", "detail", "year", "subject", "first_vi", "first_en", "expected_vi", "expected_en"),
    "",
)
# Pydantic error types → our reasons (catalog_exchange.reason.<reason>).
_ERROR_REASONS = {
    "missing": "missing",
    "string_too_short": "missing",
    "literal_error": "invalid_choice",
    "string_pattern_mismatch": "invalid_format",
    "string_too_long": "too_long",
    "int_parsing": "not_an_integer",
    "int_from_float": "not_an_integer",
    "int_type": "not_an_integer",
    "float_parsing": "not_a_number",
    "float_type": "not_a_number",
    "greater_than_equal": "too_small",
    "less_than_equal": "too_large",
    "extra_forbidden": "unknown_field",
    "list_type": "wrong_type",
    "string_type": "wrong_type",
    "dict_type": "wrong_type",
    "model_type": "wrong_type",
    "model_attributes_type": "wrong_type",
}
_EXPECTED = {
    "list_type": ("một danh sách", "a list"),
    "string_type": ("một chuỗi", "a string"),
    "dict_type": ("một đối tượng", "an object"),
    "model_type": ("một đối tượng", "an object"),
    "model_attributes_type": ("một đối tượng", "an object"),
}


def _validation_problems(row: Row, exc: ValidationError) -> list[RowProblem]:
    problems: list[RowProblem] = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        kind = error["type"]
        context = error.get("ctx") or {}
        value = error.get("input")
        params: dict[str, Any] = {"value": value if isinstance(value, str | int | float) else ""}
        if isinstance(params["value"], str):
            params["value"] = params["value"][:60]
        reason = _ERROR_REASONS.get(kind, "invalid")
        if kind == "value_error":
            message = str(error.get("msg", ""))
            reason, path = ("ratio_parts", "aggregation") if "ratio" in message else ("min_above_max", "min")
        if reason == "invalid_format" and path == "code":
            reason = "invalid_code"
        params.update(
            {
                "allowed": str(context.get("expected", "")),
                "limit": context.get("max_length", context.get("ge", context.get("le", ""))),
                "expected_vi": _EXPECTED.get(kind, ("", ""))[0],
                "expected_en": _EXPECTED.get(kind, ("", ""))[1],
                "detail": str(error.get("msg", ""))[:120],
            }
        )
        problems.append(RowProblem(row.name(path) if path else "(row)", reason, params))
    return problems


def _length(column: Any) -> int:
    """The length a String column holds."""
    return int(column.type.length)


_TEXT_LIMITS = {
    "name_vi": _length(Indicator.__table__.c.name_vi),
    "name_en": _length(Indicator.__table__.c.name_en),
    "unit": _length(Indicator.__table__.c.unit),
    "source_system": _length(Indicator.__table__.c.source_system),
    "numerator": _length(Indicator.__table__.c.numerator_code),
    "denominator": _length(Indicator.__table__.c.denominator_code),
    "owner": _length(Agency.__table__.c.code),
    "description_vi": MAX_TEXT,
    "description_en": MAX_TEXT,
}


def _storage_problems(row: Row, definition: IndicatorDef) -> list[RowProblem]:
    """What the database could not hold or would hold wrongly: long or control-character text, ∞, huge integers."""
    problems: list[RowProblem] = []
    for key, limit in _TEXT_LIMITS.items():
        if len(getattr(definition, key)) > limit:
            problems.append(RowProblem(row.name(key), "too_long", {"limit": limit}))
    texts: list[tuple[str, str]] = [(key, getattr(definition, key)) for key in _TEXT_LIMITS]
    for key in ("dimensions", "references"):
        items = getattr(definition, key)
        if len(items) > MAX_LIST_ITEMS:
            problems.append(RowProblem(row.name(key), "too_many_items", {"limit": MAX_LIST_ITEMS}))
        for item in items:
            texts.append((key, item))
            if len(item) > 255:
                problems.append(RowProblem(row.name(key), "too_long", {"limit": 255}))
    texts += [(f"targets.{index}", target.subject) for index, target in enumerate(definition.targets)]
    for key, text in texts:
        if CONTROL.search(text.replace("\t", " ").replace("\n", " ").replace("\r", " ")):
            problems.append(RowProblem(row.name(key), "control_character"))
    numbers: list[tuple[str, float | None]] = [
        ("min", definition.min),
        ("max", definition.max),
        ("thresholds.warning", definition.thresholds.warning),
        ("thresholds.critical", definition.thresholds.critical),
        *((f"targets.{index}.value", target.value) for index, target in enumerate(definition.targets)),
    ]
    for key, number in numbers:
        if number is not None and not math.isfinite(number):
            problems.append(RowProblem(row.name(key), "not_finite"))
    if definition.monitored_item > MAX_INT:
        params = {"value": definition.monitored_item, "limit": MAX_INT}
        problems.append(RowProblem(row.name("monitored_item"), "too_large", params))
    if len(definition.targets) > MAX_LIST_ITEMS:
        problems.append(RowProblem("targets", "too_many_items", {"limit": MAX_LIST_ITEMS}))
    return problems


def _target_problems(row: Row, definition: IndicatorDef, subjects: set[str]) -> list[RowProblem]:
    problems: list[RowProblem] = []
    seen: set[tuple[int, str]] = set()
    for index, target in enumerate(definition.targets):
        name = row.name(f"targets.{index}")
        if target.subject and target.subject not in subjects:
            problems.append(RowProblem(name, "unknown_subject", {"value": target.subject[:40]}))
        if (target.year, target.subject) in seen:
            problems.append(RowProblem(name, "duplicate_target", {"year": target.year, "subject": target.subject}))
        seen.add((target.year, target.subject))
    return problems


def _known_subjects(session: Session, rows: list[Row]) -> set[str]:
    """The subject codes that the rows' targets name and that exist."""
    named: set[str] = set()
    for row in rows:
        targets = row.raw.get("targets")
        for target in targets if isinstance(targets, list) else []:
            subject = target.get("subject") if isinstance(target, dict) else None
            if isinstance(subject, str) and subject and not CONTROL.search(subject):
                named.add(subject[:80])
    codes = sorted(named)
    known: set[str] = set()
    for start in range(0, len(codes), 500):
        known.update(session.scalars(select(Subject.code).where(Subject.code.in_(codes[start : start + 500]))))
    return known


def _same_targets(stored: list[dict[str, Any]], new: list[dict[str, Any]]) -> bool:
    def key(target: dict[str, Any]) -> tuple[int, str, float]:
        return int(target["year"]), str(target.get("subject") or ""), float(target["value"])

    return sorted(map(key, stored)) == sorted(map(key, new))


def _changes(current: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    return [Change(key, current[key], new[key]) for key in IndicatorDef.model_fields if current[key] != new[key]]


def import_catalog(
    session: Session,
    actor: Actor,
    now: datetime,
    content: bytes,
    *,
    filename: str = "",
    fmt: Format | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Read a catalog file, apply every good row (unless a dry run), and report each change and each rejection.

    Raises ImportRefused when the file as a whole cannot be read as a catalog; then nothing is applied.
    """
    if len(content) > MAX_IMPORT_BYTES:
        raise ImportRefused(413, "catalog_file_too_large", limit=MAX_IMPORT_BYTES)
    fmt = fmt or detect_format(filename, content)
    rows = read_rows(content, fmt)
    report = ImportReport(file=filename, format=fmt, dry_run=dry_run, rows=len(rows))
    context = _Context.load(session, lock=not dry_run)
    problems: dict[int, list[RowProblem]] = {}
    definitions: dict[int, IndicatorDef] = {}
    first_row: dict[str, Where] = {}
    subjects = _known_subjects(session, rows)

    # 1. Each row alone: its shape, what the database can hold, its domain, duplicates in the file.
    for index, row in enumerate(rows):
        found = list(row.problems)
        definition: IndicatorDef | None = None
        try:
            definition = IndicatorDef.model_validate(row.raw)
        except ValidationError as exc:
            named = {problem.field for problem in found}
            found += [problem for problem in _validation_problems(row, exc) if problem.field not in named]
        if definition is not None:
            found += _storage_problems(row, definition) + _target_problems(row, definition, subjects)
        if not row.domain and not any(problem.reason == "domain_entry" for problem in found):
            found.append(RowProblem("domain", "missing"))
        elif row.domain and row.domain not in context.domain_ids:
            allowed = ", ".join(sorted(context.domain_ids))
            found.append(RowProblem("domain", "unknown_domain", {"value": row.domain[:40], "allowed": allowed}))
        if row.code and row.code in first_row:
            first = first_row[row.code]
            params = {"value": row.code, "first_vi": first.text("vi"), "first_en": first.text("en")}
            found.append(RowProblem("code", "duplicate_code", params))
        elif row.code:
            first_row[row.code] = row.where
        if found or definition is None:
            problems[index] = found
        else:
            definitions[index] = definition

    # 2. References, checked as catalog files are; a ratio may lean on a new indicator of the same file,
    # but not on one whose row was rejected: repeat until nothing more is rejected.
    while True:
        known = set(context.current) | {definition.code for definition in definitions.values()}
        references = {
            index: service.reference_problems(
                definition,
                rows[index].domain,
                units=context.units,
                agencies=set(context.agency_ids),
                indicators=known,
            )
            for index, definition in definitions.items()
        }
        wrong = {index: found for index, found in references.items() if found}
        if not wrong:
            break
        for index, reference_found in wrong.items():
            problems[index] = [
                RowProblem(rows[index].name(problem.field), problem.reason, {"value": problem.value})
                for problem in reference_found
            ]
            del definitions[index]

    for index, found in sorted(problems.items()):
        row = rows[index]
        for problem in found:
            vi, en = both(f"catalog_exchange.reason.{problem.reason}", **{**REASON_DEFAULTS, **problem.params})
            report.rejected.append(Rejection(row.where, row.code, problem.field, problem.reason, vi, en))

    # 3. Apply (or, in a dry run, only compare) every good row, versioned like `catalog load`.
    for index, definition in sorted(definitions.items()):
        row = rows[index]
        existing = context.current.get(definition.code)
        stored = indicator_dict(*existing)["targets"] if existing is not None else []
        if existing is not None and _same_targets(stored, [target.model_dump() for target in definition.targets]):
            # The same targets in another order are the same targets: keep the stored order.
            definition = definition.model_copy(update={"targets": [TargetDef(**target) for target in stored]})
        new = definition.model_dump()
        if existing is None:
            changes: list[Change] = []
            expected: Literal["created", "updated", "unchanged"] = "created"
            version, previous = 1, None
        else:
            changes = _changes(indicator_dict(*existing), new)
            expected = "updated" if changes else "unchanged"
            previous = existing[0].version
            version = previous + 1 if changes else previous
        if not dry_run:
            fields = [change.field for change in changes]
            outcome = service.upsert_indicator(
                session,
                actor,
                now,
                context.domain_ids[row.domain],
                definition,
                context.agency_ids,
                {"source": "import", "file": filename[:200], "format": fmt, "fields": fields},
            )
            if outcome == "created":
                details = {"source": "import", "file": filename[:200], "format": fmt}
                audit(session, actor, "indicator.create", "indicator", definition.code, now, details)
            expected = outcome
            version = existing[0].version if existing is not None else 1
        report.outcomes.append(Outcome(definition.code, row.where, expected, version, previous, changes))

    in_file = {row.code for row in rows}
    report.not_in_file = sum(1 for code in context.current if code not in in_file)
    if not dry_run:
        audit(
            session,
            actor,
            "catalog.import",
            "catalog",
            filename[:200] or fmt,
            now,
            {
                "format": fmt,
                "rows": report.rows,
                "created": report.count("created"),
                "updated": report.count("updated"),
                "unchanged": report.count("unchanged"),
                "rejected_rows": report.rejected_rows,
                "not_in_file": report.not_in_file,
                "cityops": __version__,
            },
        )
    return report
