"""Report templates as data (`data/templates.toml`) and the periods reports are made for (local days)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cityops.clock import LOCAL_TZ

TEMPLATES_FILE = Path(__file__).parent / "data" / "templates.toml"
PERIOD_KINDS = ("week", "month", "quarter")
SECTIONS = ("headlines", "plan_vs_actual", "rankings", "anomalies", "incidents", "citizen_reports")
BRIEF = "daily_brief"


class TemplateError(ValueError):
    """A templates file that cannot be used: which template and what is wrong."""


@dataclass(frozen=True)
class Template:
    code: str
    name_vi: str
    name_en: str
    period: str
    scope: str
    domains: tuple[str, ...]
    sections: tuple[str, ...]

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_vi


def read_templates(path: Path = TEMPLATES_FILE) -> dict[str, Template]:
    """Every template of the file, checked: unknown periods, sections or duplicate codes are refused by name."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    found: dict[str, Template] = {}
    for number, item in enumerate(raw.get("template", []), start=1):
        code = str(item.get("code", "")).strip()
        where = f"{path.name}: template {number} ({code or '?'})"
        if not code or code == BRIEF or code in found:
            raise TemplateError(f"{where}: the code is missing, reserved or used twice")
        if item.get("period") not in PERIOD_KINDS:
            raise TemplateError(f"{where}: period must be one of {', '.join(PERIOD_KINDS)}")
        sections = tuple(str(s) for s in item.get("sections", []))
        unknown = [s for s in sections if s not in SECTIONS]
        if not sections or unknown:
            raise TemplateError(f"{where}: unknown or no sections {unknown}; allowed: {', '.join(SECTIONS)}")
        found[code] = Template(
            code=code,
            name_vi=str(item.get("name_vi") or code),
            name_en=str(item.get("name_en") or code),
            period=str(item["period"]),
            scope=str(item.get("scope") or "province"),
            domains=tuple(str(d) for d in item.get("domains", [])),
            sections=sections,
        )
    return found


@lru_cache(maxsize=1)
def templates() -> dict[str, Template]:
    """The templates of the package (read once)."""
    return read_templates()


def local_date(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TZ).date()


def local_start(day: date) -> datetime:
    """The moment a local day begins (aware, Asia/Ho_Chi_Minh)."""
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def period_containing(kind: str, day: date) -> tuple[date, date]:
    """The first and last day of the week (Monday–Sunday), month or quarter holding `day`."""
    if kind == "day":
        return day, day
    if kind == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if kind == "month":
        first = day.replace(day=1)
    elif kind == "quarter":
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    else:
        raise ValueError(kind)
    months = 1 if kind == "month" else 3
    year, month = divmod(first.month - 1 + months, 12)
    return first, date(first.year + year, month + 1, 1) - timedelta(days=1)


def last_closed(kind: str, today: date) -> tuple[date, date]:
    """The latest period of this kind that ended before today."""
    first, _ = period_containing(kind, today)
    return period_containing(kind, first - timedelta(days=1))


def period_label(kind: str, first: date, last: date, language: str) -> str:
    """Tuần 23/11/2026–29/11/2026, Tháng 11/2026, Quý 4/2026 (English alike)."""
    en = language == "en"
    if kind == "month":
        return f"{'Month' if en else 'Tháng'} {first.month:02d}/{first.year}"
    if kind == "quarter":
        return f"{'Quarter' if en else 'Quý'} {(first.month - 1) // 3 + 1}/{first.year}"
    if kind == "week":
        return f"{'Week' if en else 'Tuần'} {first:%d/%m/%Y}–{last:%d/%m/%Y}"
    return f"{first:%d/%m/%Y}"


def parse_period(kind: str, text: str) -> tuple[date, date]:
    """A period named by any day inside it (YYYY-MM-DD or DD/MM/YYYY), or YYYY-MM for a month, YYYY-Qn for a
    quarter. ValueError when it cannot be read."""
    text = text.strip()
    if kind not in PERIOD_KINDS:
        raise ValueError(kind)
    if kind == "quarter" and len(text) == 7 and text[4:6].upper() == "-Q" and text[6] in "1234":
        return period_containing(kind, date(int(text[:4]), 3 * (int(text[6]) - 1) + 1, 1))
    if len(text) == 7 and text[4] == "-":
        return period_containing(kind, date(int(text[:4]), int(text[5:7]), 1))
    if "/" in text:
        day, month, year = text.split("/")
        return period_containing(kind, date(int(year), int(month), int(day)))
    return period_containing(kind, date.fromisoformat(text))
