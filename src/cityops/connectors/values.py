"""How agencies write numbers and dates, read into what the data-sharing API takes.

Vietnamese numbers group thousands with "." and mark decimals with "," (1.234,5); many systems write the English
way (1,234.5) or plain (1234.5); spaces may group thousands too (1 234,5). With both separators, the last one marks
the decimals. A lone separator is read by what follows it: groups of exactly three digits after a first group of
one to three digits (not starting with 0) mean grouping ("1.234" → 1234, "1.234.567" → 1234567), anything else a
decimal ("2,5" → 2.5, "0,125" → 0.125). So "1,234" is 1234 in both styles: a system that writes three decimals
after a lone comma must send real JSON numbers.

Dates: dd/mm/yyyy (also with "-" or "."), optionally with a time (local time, Asia/Ho_Chi_Minh); mm/yyyy;
"Tháng 11/2026", "Quý 3/2026", "Quý III năm 2026", "Năm 2026"; a date and time without an offset (local time);
and the other period forms of cityops (2026-11-27, 2026-11, 2026-Q3, 2026, 2025-2026, an RFC 3339 instant).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time

from cityops.clock import LOCAL_TZ
from cityops.i18n import fold

_SPACES = re.compile(r"[\s\u00a0\u202f]")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-"})
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$", re.ASCII)
_GROUPED = re.compile(r"^[1-9]\d{0,2}$", re.ASCII)
_THREE_DIGITS = re.compile(r"^\d{3}$", re.ASCII)
_TIME = r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?"
_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})" + _TIME + "$", re.ASCII)
_MY = re.compile(r"^(?:thang\s*)?(\d{1,2})\s*(?:[/.-]|\s*nam\s*)\s*(\d{4})$")
_YEAR_VI = re.compile(r"^nam\s*(\d{4})$")
_QUARTER_VI = re.compile(r"^(?:quy|q)\s*([1-4]|iv|iii|ii|i)\s*[/.-]?\s*(?:nam\s*)?(\d{4})$")
_NAIVE_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?$", re.ASCII)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}


def parse_number(text: str) -> float:
    """A number written the Vietnamese, English or plain way; ValueError when it is none."""
    cleaned = _SPACES.sub("", text.strip().translate(_MINUS_SIGNS))
    if cleaned.endswith("%"):
        cleaned = cleaned[:-1]
    if not cleaned:
        raise ValueError("empty")
    sign = cleaned[0] if cleaned[0] in "+-" else ""
    digits = cleaned[len(sign) :]
    last_dot, last_comma = digits.rfind("."), digits.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        decimal, grouping = (",", ".") if last_comma > last_dot else (".", ",")
        whole, _, fraction = digits.rpartition(decimal)
        digits = _ungrouped(whole, grouping, text) + "." + fraction
    elif last_comma >= 0:
        digits = _one_kind(digits, ",", text)
    elif last_dot >= 0:
        digits = _one_kind(digits, ".", text)
    if not _NUMBER.match(digits):
        raise ValueError(f"not a number: {text[:40]!r}")
    number = float(sign + digits)
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _ungrouped(whole: str, separator: str, text: str) -> str:
    """The integer part of a number written with thousands separators, which must group by threes."""
    parts = whole.split(separator)
    if len(parts) > 1 and not (_GROUPED.match(parts[0]) and all(_THREE_DIGITS.match(part) for part in parts[1:])):
        raise ValueError(f"not a number: {text[:40]!r}")
    return "".join(parts)


def _one_kind(digits: str, separator: str, text: str) -> str:
    parts = digits.split(separator)
    if _GROUPED.match(parts[0]) and all(_THREE_DIGITS.match(part) for part in parts[1:]):
        return "".join(parts)
    if len(parts) > 2:
        raise ValueError(f"not a number: {text[:40]!r}")
    return ".".join(parts)


def _local_moment(day: date, hour: int, minute: int, second: int) -> str:
    moment = datetime.combine(day, time(hour, minute, second), tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC).isoformat()


def parse_date_text(text: str) -> str:
    """A date or period as agencies write it (27/11/2026, 27/11/2026 08:30, 11/2026, Quý 3/2026) as a cityops
    period text; ValueError for an impossible date; other texts are returned as they are, for the period parser
    to judge."""
    stripped = text.strip()
    if match := _DMY.match(stripped):
        day = date(int(match[3]), int(match[2]), int(match[1]))
        if match[4] is None:
            return day.isoformat()
        return _local_moment(day, int(match[4]), int(match[5]), int(match[6] or 0))
    if match := _NAIVE_ISO.match(stripped):
        day = date(int(match[1]), int(match[2]), int(match[3]))
        return _local_moment(day, int(match[4]), int(match[5]), int(match[6] or 0))
    folded = fold(stripped)
    if match := _MY.match(folded):
        month, year = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ValueError(f"no such month: {month}")
        return f"{year:04d}-{month:02d}"
    if match := _QUARTER_VI.match(folded):
        quarter = _ROMAN.get(match[1]) or int(match[1])
        return f"{int(match[2]):04d}-Q{quarter}"
    if match := _YEAR_VI.match(folded):
        return match[1]
    return stripped


def period_text(value: object) -> str:
    """A period from a cell or a JSON value: a date or datetime object, or a text (see parse_date_text)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a spreadsheet's moment is local time
            value = value.replace(tzinfo=LOCAL_TZ)
        if (value.hour, value.minute, value.second) == (0, 0, 0) and value.tzinfo is LOCAL_TZ:
            return value.date().isoformat()
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        raise ValueError("a true/false value is not a period")
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    if not isinstance(value, str):
        raise ValueError(f"not a period: {type(value).__name__}")
    return parse_date_text(value)
