"""The translation catalog (Vietnamese first, English) and Vietnamese number and date formats."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_decimal
from unidecode import unidecode

from cityops.clock import LOCAL_TZ

LANGUAGES = ("vi", "en")
TRANSLATIONS_DIR = Path(__file__).parent / "web" / "translations"


@cache
def catalog(language: str) -> dict[str, str]:
    """The messages of one language, keyed by message id: every file of translations/<language>/, merged.

    Each domain keeps its own file (core.json, geo.json …); a message id defined twice is an error.
    """
    messages: dict[str, str] = {}
    for path in sorted((TRANSLATIONS_DIR / language).glob("*.json")):
        with path.open(encoding="utf-8") as handle:
            part: dict[str, str] = json.load(handle)
        twice = sorted(set(part) & set(messages))
        if twice:
            raise ValueError(f"{path.name}: message ids defined in another file too: {', '.join(twice)}")
        messages.update(part)
    return messages


def translate(message_id: str, language: str, /, **params: Any) -> str:
    """The message in the language (Vietnamese when unknown), with its parameters filled in."""
    if language not in LANGUAGES:
        language = "vi"
    text = catalog(language).get(message_id) or catalog("vi").get(message_id) or message_id
    return text.format(**params)


def both(message_id: str, /, **params: Any) -> tuple[str, str]:
    """The message in Vietnamese and in English."""
    return translate(message_id, "vi", **params), translate(message_id, "en", **params)


def format_number(value: float | None, language: str, digits: int = 2) -> str:
    """1.234.567,5 in Vietnamese, 1,234,567.5 in English; a dash when there is no value."""
    if value is None:
        return "—"
    pattern = "#,##0" if float(value).is_integer() else "#,##0." + "#" * digits
    return format_decimal(value, format=pattern, locale="vi_VN" if language == "vi" else "en_US")


def format_moment(value: datetime | str | None, language: str) -> str:
    """27/11/2026 14:05 in local time, for both languages (the province's convention)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_datetime(
        value.astimezone(LOCAL_TZ), "dd/MM/yyyy HH:mm", locale="vi_VN" if language == "vi" else "en_GB"
    )


def format_period(period_type: str, key: str, language: str) -> str:
    """A period as a reader says it: 27/11/2026, tháng 11/2026, quý 4/2026, năm 2026, năm học 2025-2026, or an
    instant's local time; a key that is not a period is returned as it is."""
    from cityops.observations.periods import PeriodError, parse_period  # periods reads the clock, not i18n

    try:
        period = parse_period(key)
    except PeriodError:
        return key
    if period_type == "instant":
        return format_moment(period.start, language)
    if period_type == "day":
        return f"{key[8:10]}/{key[5:7]}/{key[:4]}"
    if period_type == "month":
        return translate("period.label.month", language, month=key[5:7], year=key[:4])
    if period_type == "quarter":
        return translate("period.label.quarter", language, quarter=key[-1], year=key[:4])
    if period_type == "school_year":
        return translate("period.label.school_year", language, years=key)
    if period_type == "year":
        return translate("period.label.year", language, year=key)
    return key


def fold(text: str) -> str:
    """Text folded for search: no diacritics (đ → d), lower case, single spaces."""
    return " ".join(unidecode(text).lower().split())
