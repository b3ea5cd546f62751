"""The spreadsheet kind: a CSV or XLSX file uploaded by an officer (or an agency system) becomes observation items.

Reading one file:
1. the reader turns the file into sheets of rows (merged cells spread, numbers and dates as Excel shows them);
2. the header is found: the first rows (up to five, among the first thirty) whose cells name known columns —
   by header text folded without diacritics ("Mã đơn vị" = "ma don vi"), by indicator code or name, or by the
   feed's aliases; a group cell merged over several columns is read in each of them;
3. the layout follows from the columns: *wide* (one row per subject, one column per indicator: the template) or
   *long* (columns indicator, subject, period, value);
4. each data row gives one item per value; each bad cell or row gives one error naming the row number Excel shows,
   the column letter and its header, in Vietnamese and English. Good cells of a row with a bad one are kept.

No database here: the service gives the vocabulary (the feed's indicators and the subjects it may cover).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from cityops.connectors import register
from cityops.connectors.base import Connector
from cityops.connectors.spreadsheet import reader
from cityops.connectors.spreadsheet.schema import SpreadsheetSettings
from cityops.connectors.values import parse_date_text, parse_number, period_text
from cityops.i18n import both, fold
from cityops.observations.periods import PeriodError, parse_period

MAX_ROWS = 20_000  # data rows of one sheet
MAX_VALUES = 100_000  # values of one file
HEADER_SCAN_ROWS = 30
MAX_HEADER_ROWS = 5

# Header texts (folded: lower case, no diacritics, no unit in brackets) of the columns that are not indicators.
FIXED_HEADERS: dict[str, frozenset[str]] = {
    "subject": frozenset(
        {
            "ma don vi",
            "ma dv",
            "ma xa",
            "ma xa phuong",
            "ma phuong xa",
            "ma dvhc",
            "ma don vi hanh chinh",
            "ma dia ban",
            "ma doi tuong",
            "subject",
            "subject code",
            "unit code",
            "commune code",
        }
    ),
    "subject_name": frozenset(
        {
            "ten don vi",
            "don vi",
            "ten xa",
            "ten xa phuong",
            "ten phuong xa",
            "xa phuong",
            "phuong xa",
            "xa",
            "ten dvhc",
            "ten don vi hanh chinh",
            "ten dia ban",
            "dia ban",
            "subject_name",
            "subject name",
            "unit name",
            "commune",
            "commune name",
        }
    ),
    "period": frozenset(
        {
            "ky bao cao",
            "ky",
            "ky so lieu",
            "thoi gian",
            "thoi ky",
            "thoi diem",
            "thoi diem bao cao",
            "ngay",
            "ngay bao cao",
            "thang",
            "thang bao cao",
            "quy",
            "nam",
            "nam hoc",
            "period",
            "reporting period",
            "date",
            "month",
            "year",
        }
    ),
    "indicator": frozenset({"ma chi tieu", "chi tieu", "ten chi tieu", "indicator", "indicator code"}),
    "value": frozenset({"gia tri", "so lieu", "gia tri so lieu", "value"}),
    "null_reason": frozenset({"ly do", "ly do khong co so lieu", "ly do bo trong", "null_reason", "null reason"}),
    "ignore": frozenset(
        {"stt", "tt", "so tt", "so thu tu", "ghi chu", "note", "notes", "don vi tinh", "dvt", "unit", "no"}
    ),
}
# A row whose subject cell says this is a total: cityops computes totals itself, so the row is left out.
TOTAL_WORDS = frozenset({"tong", "tong cong", "tong so", "cong", "total", "grand total"})
_PERIOD_WORDS = ("nam hoc ", "ky bao cao ", "thang ", "ngay ", "nam ", "ky ")
_FIRST_DAY_TYPES = ("month", "quarter", "year", "school_year")
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NUMBERING = re.compile(r"^\s*(?:\d+|[ivx]+)\s*[.)]\s+")
_NOT_KEY = re.compile(r"[^a-z0-9._ ]+")


def header_key(text: str) -> str:
    """A header as compared: folded, without what is in brackets (a unit), numbering or punctuation."""
    folded = _NUMBERING.sub("", _BRACKETS.sub(" ", fold(text)))
    return " ".join(_NOT_KEY.sub(" ", folded).replace(".", " . ").split()).replace(" . ", ".")


# --- what the service tells the connector -------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorTerm:
    """An indicator of the feed, as a sheet may name it."""

    code: str
    name_vi: str
    name_en: str
    unit_vi: str
    unit_en: str
    period_type: str
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class SubjectTerm:
    """A subject the feed may cover: its code, its name, and the keys its name is found by."""

    code: str
    name_vi: str
    keys: frozenset[str] = frozenset()


class Vocabulary:
    """What a sheet's words may mean: the feed's indicators and the subjects it may cover."""

    def __init__(
        self,
        indicators: Iterable[IndicatorTerm],
        subjects: Iterable[SubjectTerm],
        name_keys: Callable[[str], set[str]],
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.indicators = {term.code: term for term in indicators}
        self.subjects = {term.code: term for term in subjects}
        self.name_keys = name_keys
        self._indicator_keys: dict[str, str] = {}
        for term in self.indicators.values():
            for text in (term.code, term.name_vi, term.name_en):
                self._indicator_keys.setdefault(header_key(text), term.code)
        self.aliases = {header_key(text): target for text, target in (aliases or {}).items()}
        self._by_name: dict[str, list[SubjectTerm]] = {}
        self._by_key: dict[str, list[SubjectTerm]] = {}
        for subject in self.subjects.values():
            self._by_name.setdefault(fold(subject.name_vi), []).append(subject)
            for key in subject.keys:
                self._by_key.setdefault(key, []).append(subject)

    def indicator(self, text: str) -> IndicatorTerm | None:
        """The feed's indicator a text names (by code, Vietnamese or English name, with or without its unit)."""
        key = header_key(text)
        target = self.aliases.get(key)
        code = target if target in self.indicators else self._indicator_keys.get(key)
        return self.indicators.get(code) if code else None

    def subject_by_code(self, value: Any) -> SubjectTerm | None:
        """A subject by its code, also when a spreadsheet dropped the leading zeros or made it a number."""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        found = self.subjects.get(text)
        if found is None and text.isdigit():
            found = self.subjects.get(text.zfill(5)) or self.subjects.get(text.zfill(2))
        return found

    def subjects_by_name_exact(self, text: str) -> list[SubjectTerm]:
        """The subjects whose full name is this text (folded)."""
        return self._by_name.get(fold(text), [])

    def subjects_by_name(self, text: str) -> list[SubjectTerm]:
        """The subjects a name may mean: its exact name first ("Phường Thành Vinh"), else its keys ("thanh vinh")."""
        exact = self._by_name.get(fold(text), [])
        if exact:
            return exact
        found: dict[str, SubjectTerm] = {}
        for key in self.name_keys(text):
            for subject in self._by_key.get(key, []):
                found[subject.code] = subject
        return sorted(found.values(), key=lambda subject: subject.code)


# --- what comes out -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of the sheet and what it was read as."""

    index: int
    header: str
    role: str  # subject, subject_name, period, indicator (long), value, null_reason, measure (wide), ignored
    indicator: str = ""
    reason: str = ""  # for an ignored column: unknown, not_in_feed, duplicate, ignore

    @property
    def letter(self) -> str:
        return reader.column_letter(self.index)

    def out(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"column": self.letter, "header": self.header, "role": self.role}
        if self.indicator:
            shown["indicator"] = self.indicator
        if self.reason:
            shown["reason"] = self.reason
            shown["message_vi"], shown["message_en"] = both(f"spreadsheet.ignored.{self.reason}")
        return shown


@dataclass(frozen=True)
class RowError:
    """Why one cell or row was not read into an item: row number as Excel shows it, column letter and header."""

    row: int
    column: str
    header: str
    code: str
    message_vi: str
    message_en: str
    value: str = ""
    indicator: str = ""

    @classmethod
    def of(
        cls, row: int, column: Column | None, code: str, *, value: Any = None, indicator: str = "", **params: Any
    ) -> RowError:
        """An error with its message from spreadsheet.error.<code>, placed at its row (and column)."""
        shown = "" if value is None else _shown(value)
        vi, en = both(f"spreadsheet.error.{code}", value=shown, **params)
        letter, header = (column.letter, column.header) if column is not None else ("", "")
        return cls.placed(row, letter, header, code, vi, en, value=shown, indicator=indicator)

    @classmethod
    def placed(
        cls,
        row: int,
        letter: str,
        header: str,
        code: str,
        message_vi: str,
        message_en: str,
        *,
        value: str = "",
        indicator: str = "",
    ) -> RowError:
        """An error whose message is given, prefixed with where it is (a row, or a cell when a column is given)."""
        if not letter:
            where_vi, where_en = both("spreadsheet.at_row", row=row)
        else:
            where_vi, where_en = both("spreadsheet.at_cell", row=row, column=letter, header=header)
        return cls(row, letter, header, code, f"{where_vi} {message_vi}", f"{where_en} {message_en}", value, indicator)

    def out(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "header": self.header,
            "code": self.code,
            "value": self.value,
            "indicator": self.indicator or None,
            "message_vi": self.message_vi,
            "message_en": self.message_en,
        }


@dataclass
class SourcedItem:
    """An observation item and the cell it came from."""

    row: int
    column: str
    header: str
    item: dict[str, Any]

    def out(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "header": self.header, "item": self.item}


@dataclass
class Parsed:
    """What one file gave: where it was read, how its columns were understood, its items and its errors."""

    format: str
    sheet: str
    layout: str  # wide | long
    header_rows: list[int]
    columns: list[Column]
    items: list[SourcedItem] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    notes: list[RowError] = field(default_factory=list)  # rows left out on purpose (totals)
    rows_read: int = 0
    skipped_rows: int = 0  # rows without a known subject and without values (titles, signatures)
    encoding: str = ""
    delimiter: str = ""


class LayoutError(Exception):
    """No usable header in the file: code no_header or no_columns, with what was found."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


# --- reading ------------------------------------------------------------------------------------------


@register
class SpreadsheetConnector(Connector):
    """CSV and XLSX uploads (nothing to pull: people and systems send files)."""

    kind = "spreadsheet"
    settings_model = SpreadsheetSettings

    def read(
        self, content: bytes, vocabulary: Vocabulary, *, max_rows: int = MAX_ROWS, max_values: int = MAX_VALUES
    ) -> Parsed:
        """Read a file into items and per-row errors (reader.ReadError or LayoutError when it cannot be read)."""
        settings = cast(SpreadsheetSettings, self.feed.settings)
        book = reader.read(content, max_rows=max_rows, sheet_name=settings.sheet)
        return interpret(book, vocabulary, settings, max_values=max_values)


def interpret(
    book: reader.Book, vocabulary: Vocabulary, settings: SpreadsheetSettings, *, max_values: int = MAX_VALUES
) -> Parsed:
    """The items and errors of the first sheet whose header names the columns a feed needs."""
    best: tuple[int, list[Column]] | None = None  # the header that named the most columns, for the message
    for sheet in book.sheets:
        for header_rows, columns in _header_blocks(sheet, vocabulary):
            layout = _layout(columns)
            if layout is not None:
                parsed = Parsed(book.format, sheet.name, layout, header_rows, columns)
                parsed.encoding, parsed.delimiter = book.encoding, book.delimiter
                _read_rows(parsed, sheet, vocabulary, settings, max_values)
                return parsed
            found = sum(1 for column in columns if column.role != "ignored")
            if best is None or found > best[0]:
                best = (found, columns)
    if best is None:
        texts = _header_like_texts(book)
        if not texts:
            raise LayoutError("no_header", rows=HEADER_SCAN_ROWS)
        raise LayoutError("no_columns", **_missing_params([], texts))
    columns = best[1]
    raise LayoutError("no_columns", **_missing_params(columns, [column.header for column in columns]))


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M") if (value.hour, value.minute) != (0, 0) else value.strftime("%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)[:80]


def _classify(text: str, vocabulary: Vocabulary) -> tuple[str, str]:
    """(role, indicator code) of one header cell; role "" when the text names nothing known."""
    key = header_key(text)
    if not key:
        return "", ""
    target = vocabulary.aliases.get(key)
    if target is not None:
        if target in vocabulary.indicators:
            return "measure", target
        if "." in target:
            return "not_in_feed", target
        return target, ""
    term = vocabulary.indicator(text)
    if term is not None:
        return "measure", term.code
    for role, keys in FIXED_HEADERS.items():
        if key in keys:
            return role, ""
    if re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z0-9_]+", key):
        return "not_in_feed", key  # an indicator code, but not one this feed carries
    return "", ""


def _header_blocks(sheet: reader.Sheet, vocabulary: Vocabulary) -> Iterable[tuple[list[int], list[Column]]]:
    """Runs of consecutive rows, among the first ones, whose cells name known columns; each with its columns."""
    rows = sheet.rows[:HEADER_SCAN_ROWS]
    position = 0
    while position < len(rows):
        if not _recognised(rows[position][1], vocabulary):
            position += 1
            continue
        block = [rows[position]]
        position += 1
        while (
            position < len(rows)
            and len(block) < MAX_HEADER_ROWS
            and _recognised(rows[position][1], vocabulary)
            and not _names_a_subject(rows[position][1], vocabulary)
        ):
            block.append(rows[position])
            position += 1
        yield [number for number, _cells in block], _columns(block, vocabulary)


def _recognised(cells: list[Any], vocabulary: Vocabulary) -> bool:
    return any(isinstance(cell, str) and _classify(cell, vocabulary)[0] not in ("", "ignore") for cell in cells)


def _names_a_subject(cells: list[Any], vocabulary: Vocabulary) -> bool:
    """Whether a row holds a subject's code or exact name: a data row, even when a cell reads like a header."""
    for cell in cells:
        if isinstance(cell, int | float) and not isinstance(cell, bool) and vocabulary.subject_by_code(cell):
            return True
        if isinstance(cell, str) and (
            (cell.strip().isdigit() and vocabulary.subject_by_code(cell)) or vocabulary.subjects_by_name_exact(cell)
        ):
            return True
    return False


def _columns(block: list[tuple[int, list[Any]]], vocabulary: Vocabulary) -> list[Column]:
    """What each column of a header block is: an indicator named in any of its rows wins over a fixed role, the
    lowest row (nearest the data) over the rows above it; the first column of a role or indicator is used."""
    width = max(len(cells) for _number, cells in block)
    columns: list[Column] = []
    taken: set[str] = set()
    for index in range(width):
        texts = [cells[index] for _n, cells in block if index < len(cells) and isinstance(cells[index], str)]
        if not texts:
            continue
        found = [(text, *_classify(text, vocabulary)) for text in texts]
        measures = [(text, code) for text, role, code in found if role == "measure"]
        fixed = [(text, role) for text, role, _code in found if role not in ("", "measure", "not_in_feed")]
        foreign = [(text, code) for text, role, code in found if role == "not_in_feed"]
        label = texts[0]
        if measures:
            code = measures[-1][1]
            header = vocabulary.indicators[code].name_vi
            if code in taken:
                columns.append(Column(index, header, "ignored", code, "duplicate"))
            else:
                taken.add(code)
                columns.append(Column(index, header, "measure", code))
        elif fixed:
            role = fixed[-1][1]
            label = next(text for text, found_role in fixed if found_role == role)
            if role == "ignore":
                columns.append(Column(index, label, "ignored", reason="ignore"))
            elif role in taken:
                columns.append(Column(index, label, "ignored", reason="duplicate"))
            else:
                taken.add(role)
                columns.append(Column(index, label, role))
        elif foreign:
            columns.append(Column(index, foreign[-1][0], "ignored", foreign[-1][1], "not_in_feed"))
        else:
            columns.append(Column(index, texts[-1], "ignored", reason="unknown"))
    return columns


def _layout(columns: list[Column]) -> str | None:
    roles = {column.role for column in columns}
    if not ({"subject", "subject_name"} & roles) or "period" not in roles:
        return None
    if {"indicator", "value"} <= roles:
        return "long"
    if "measure" in roles:
        return "wide"
    return None


def _missing_params(columns: list[Column], texts: list[str]) -> dict[str, Any]:
    roles = {column.role for column in columns}
    missing = []
    if not ({"subject", "subject_name"} & roles):
        missing.append("subject")
    if "period" not in roles:
        missing.append("period")
    if "measure" not in roles and not ({"indicator", "value"} <= roles):
        missing.append("values")
    vi = ", ".join(both(f"spreadsheet.column.{name}")[0] for name in missing)
    en = ", ".join(both(f"spreadsheet.column.{name}")[1] for name in missing)
    shown = "; ".join(f"“{text[:60]}”" for text in texts[:12]) or "—"
    return {"missing_vi": vi, "missing_en": en, "found": shown}


def _header_like_texts(book: reader.Book) -> list[str]:
    """The texts of the first row with at least two text cells (what looks like a header), if any."""
    for sheet in book.sheets:
        for _number, cells in sheet.rows[:HEADER_SCAN_ROWS]:
            texts = [cell for cell in cells if isinstance(cell, str) and not _looks_numeric(cell)]
            if len(texts) >= 2:
                return texts
    return []


def _looks_numeric(text: str) -> bool:
    try:
        parse_number(text)
    except ValueError:
        return False
    return True


# --- rows ---------------------------------------------------------------------------------------------


def read_period(value: Any) -> tuple[str, date | None]:
    """A period cell as a cityops period text, and the date when the cell was a real date (None otherwise).

    Text as officers write it: 27/11/2026, 11/2026, Tháng 11/2026, Quý 4/2026, Năm 2026, Năm học 2025-2026,
    2026-11; or a date cell. ValueError when it is none of these.
    """
    if isinstance(value, datetime):
        midnight = (value.hour, value.minute, value.second) == (0, 0, 0)
        return period_text(value), value.date() if midnight else None
    if isinstance(value, date):
        return value.isoformat(), value
    if isinstance(value, bool):
        raise ValueError("not a period")
    if isinstance(value, int | float):
        text = period_text(value)
    else:
        text = str(value).strip()
        folded = fold(text)
        for word in _PERIOD_WORDS:
            if folded.startswith(word):
                text = folded[len(word) :].strip()
                break
        text = parse_date_text(text)
    parse_period(text)  # PeriodError (a ValueError) when it is not a period
    return text, None


def period_for(text: str, as_date: date | None, period_type: str) -> str:
    """The period an indicator gets from a row's period: a date cell on the first day of a month (what Excel makes
    of "11/2026") stands for that month when the indicator is monthly; likewise quarters, years, school years."""
    if as_date is None or period_type not in _FIRST_DAY_TYPES or as_date.day != 1:
        return text
    if period_type == "month":
        return f"{as_date.year:04d}-{as_date.month:02d}"
    if period_type == "quarter" and as_date.month in (1, 4, 7, 10):
        return f"{as_date.year:04d}-Q{(as_date.month - 1) // 3 + 1}"
    if period_type == "year" and as_date.month == 1:
        return f"{as_date.year:04d}"
    if period_type == "school_year" and as_date.month == 9:
        return f"{as_date.year:04d}-{as_date.year + 1:04d}"
    return text


def _number(value: Any) -> tuple[float | None, str]:
    """A value cell as a number, or the code of why it is none."""
    if isinstance(value, bool):
        return None, "not_a_number"
    if isinstance(value, int | float):
        return float(value), ""
    if isinstance(value, datetime | date):
        return None, "date_in_number"
    text = str(value).strip()
    if text.startswith("#") and text.endswith(("!", "?", "A")) and len(text) <= 8:
        return None, "formula_error"  # #DIV/0!, #VALUE!, #REF!, #NAME?, #N/A
    try:
        return parse_number(text), ""
    except ValueError:
        return None, "not_a_number"


def _cell(cells: list[Any], column: Column | None) -> Any:
    if column is None or column.index >= len(cells):
        return None
    return cells[column.index]


class _Rows:
    """The state of reading the data rows of one sheet."""

    def __init__(self, parsed: Parsed, vocabulary: Vocabulary, settings: SpreadsheetSettings, max_values: int):
        self.parsed = parsed
        self.vocabulary = vocabulary
        self.settings = settings
        self.max_values = max_values
        by_role = {column.role: column for column in parsed.columns if column.role not in ("measure", "ignored")}
        self.subject = by_role.get("subject")
        self.subject_name = by_role.get("subject_name")
        self.period = by_role.get("period")
        self.indicator = by_role.get("indicator")
        self.value = by_role.get("value")
        self.null_reason = by_role.get("null_reason")
        self.measures = [column for column in parsed.columns if column.role == "measure"]
        self.seen: dict[tuple[str, str, str], int] = {}

    def add(
        self,
        row: int,
        column: Column,
        term: IndicatorTerm,
        subject: str,
        period: str,
        value: float | None,
        null_reason: str = "",
    ) -> None:
        item: dict[str, Any] = {"indicator": term.code, "subject": subject, "period": period, "value": value}
        if null_reason:
            item["null_reason"] = null_reason
        key = (term.code, subject, period)
        first = self.seen.get(key)
        if first is not None:
            self.parsed.errors.append(
                RowError.of(row, column, "duplicate", first=first, indicator=term.code, value=_shown(value))
            )
            return
        self.seen[key] = row
        self.parsed.items.append(SourcedItem(row, column.letter, column.header, item))
        if len(self.parsed.items) > self.max_values:
            raise reader.ReadError("too_many_values", limit=self.max_values)

    def resolve_subject(self, row: int, cells: list[Any]) -> SubjectTerm | RowError | None:
        """The row's subject, an error, or None when the row names no subject at all."""
        code_cell, name_cell = _cell(cells, self.subject), _cell(cells, self.subject_name)
        if code_cell is not None:
            found = self.vocabulary.subject_by_code(code_cell)
            if found is not None:
                return found
            if name_cell is None and isinstance(code_cell, str) and not code_cell.strip().isdigit():
                name_cell = code_cell  # a name written in the code column
            else:
                return RowError.of(row, self.subject, "unknown_subject", value=code_cell)
        if name_cell is None:
            return None
        if isinstance(name_cell, int | float) or str(name_cell).strip().isdigit():
            by_code = self.vocabulary.subject_by_code(name_cell)  # a code in the name column
            if by_code is not None:
                return by_code
        matches = self.vocabulary.subjects_by_name(str(name_cell))
        if len(matches) == 1:
            return matches[0]
        column = self.subject_name or self.subject
        if matches:
            candidates = ", ".join(f"{subject.code} {subject.name_vi}" for subject in matches[:5])
            return RowError.of(row, column, "ambiguous_subject", value=name_cell, candidates=candidates)
        return RowError.of(row, column, "unknown_subject", value=name_cell)

    def is_total(self, cells: list[Any]) -> bool:
        for column in (self.subject, self.subject_name):
            cell = _cell(cells, column)
            if isinstance(cell, str) and header_key(cell) in TOTAL_WORDS:
                return True
        return False

    def read_row(self, row: int, cells: list[Any]) -> None:
        value_columns = self.measures if self.parsed.layout == "wide" else [c for c in (self.value,) if c]
        filled = [column for column in value_columns if _cell(cells, column) is not None]
        watched = [self.subject, self.subject_name, self.period, self.indicator, self.null_reason, *value_columns]
        if all(_cell(cells, column) is None for column in watched if column is not None):
            return  # a row with cells only in columns that are not read
        self.parsed.rows_read += 1
        if self.is_total(cells):
            self.parsed.rows_read -= 1
            self.parsed.notes.append(RowError.of(row, self.subject or self.subject_name, "total_row"))
            return
        subject = self.resolve_subject(row, cells)
        if not isinstance(subject, SubjectTerm):
            if not filled and (self.parsed.layout == "wide" or _cell(cells, self.indicator) is None):
                self.parsed.rows_read -= 1
                self.parsed.skipped_rows += 1  # a title, a note or a signature line: not data
                return
            self.parsed.errors.append(subject or RowError.of(row, None, "missing_subject"))
            return
        period_cell = _cell(cells, self.period)
        if period_cell is None:
            self.parsed.errors.append(RowError.of(row, self.period, "missing_period"))
            return
        try:
            period, as_date = read_period(period_cell)
        except (ValueError, PeriodError):
            self.parsed.errors.append(RowError.of(row, self.period, "invalid_period", value=period_cell))
            return
        if self.parsed.layout == "wide":
            self.read_wide(row, cells, subject, period, as_date, filled)
        else:
            self.read_long(row, cells, subject, period, as_date)

    def read_wide(
        self, row: int, cells: list[Any], subject: SubjectTerm, period: str, as_date: date | None, filled: list[Column]
    ) -> None:
        if not filled:
            if self.settings.empty_cells == "error":
                self.parsed.errors.append(RowError.of(row, None, "row_without_values", subject=subject.name_vi))
            return
        for column in self.measures:
            term = self.vocabulary.indicators[column.indicator]
            cell = _cell(cells, column)
            if cell is None:
                if self.settings.empty_cells == "error":
                    self.parsed.errors.append(RowError.of(row, column, "empty_value", indicator=term.code))
                continue
            number, problem = _number(cell)
            if problem:
                self.parsed.errors.append(RowError.of(row, column, problem, value=cell, indicator=term.code))
                continue
            self.add(row, column, term, subject.code, period_for(period, as_date, term.period_type), number)

    def read_long(self, row: int, cells: list[Any], subject: SubjectTerm, period: str, as_date: date | None) -> None:
        assert self.indicator is not None and self.value is not None
        named = _cell(cells, self.indicator)
        if named is None:
            self.parsed.errors.append(RowError.of(row, self.indicator, "missing_indicator"))
            return
        term = self.vocabulary.indicator(str(named))
        if term is None:
            self.parsed.errors.append(RowError.of(row, self.indicator, "unknown_indicator", value=named))
            return
        cell = _cell(cells, self.value)
        column = Column(self.value.index, f"{self.value.header} — {term.name_vi}", "value", term.code)
        if cell is None:
            reason = _cell(cells, self.null_reason)
            if reason is not None:
                item_period = period_for(period, as_date, term.period_type)
                self.add(row, column, term, subject.code, item_period, None, str(reason)[:500])
            elif self.settings.empty_cells == "error":
                self.parsed.errors.append(RowError.of(row, column, "empty_value", indicator=term.code))
            return
        number, problem = _number(cell)
        if problem:
            self.parsed.errors.append(RowError.of(row, column, problem, value=cell, indicator=term.code))
            return
        self.add(row, column, term, subject.code, period_for(period, as_date, term.period_type), number)


def _read_rows(
    parsed: Parsed, sheet: reader.Sheet, vocabulary: Vocabulary, settings: SpreadsheetSettings, max_values: int
) -> None:
    state = _Rows(parsed, vocabulary, settings, max_values)
    last_header = parsed.header_rows[-1]
    for number, cells in sheet.rows:
        if number > last_header:
            state.read_row(number, cells)
    parsed.errors.sort(key=lambda error: (error.row, len(error.column), error.column))
