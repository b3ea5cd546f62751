"""HTML routes of the catalog: browse and search indicators, one indicator's page, edit its targets and thresholds.

The indicator's history chart is drawn by /static/catalog-chart.js from the JSON series API; the page only passes
the data address and the labels through data-* attributes (no inline script).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.catalog import service
from cityops.catalog.models import Domain, Indicator, IndicatorVersion
from cityops.catalog.schemas import UnitDef
from cityops.clock import LOCAL_TZ
from cityops.geo.models import Subject
from cityops.geo.service import province_subject
from cityops.i18n import fold, format_moment, format_number, translate
from cityops.observations import service as observations
from cityops.web.deps import client_ip, language, parts
from cityops.web.pages import render, require_page
from cityops.web.security import CSRF_COOKIE, csrf_valid

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
BLANK_TARGET_ROWS = 3
MAX_QUERY = 100
MAX_CODE = 80
COMMUNE_SORTS = ("name", "value", "period", "updated")
SERIES_LIMIT = 5000
# How far back the chart reaches, by period type: enough to see a trend, few enough points to draw at once.
HISTORY_SPAN = {"instant": timedelta(days=7), "day": timedelta(days=366)}
HISTORY_YEARS = 5


# --- numbers as people type them ----------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?[0-9.,]*[0-9][0-9.,]*", re.ASCII)
_FIRST_GROUP = re.compile(r"[1-9][0-9]{0,2}", re.ASCII)
_YEAR = re.compile(r"[0-9]{1,6}", re.ASCII)


def _ungroup(text: str, separator: str) -> str | None:
    """1.234.567 → 1234567 when every group after the first has three digits; None when it is not a grouping."""
    groups = text.split(separator)
    if not _FIRST_GROUP.fullmatch(groups[0]) or any(len(g) != 3 or not g.isdigit() for g in groups[1:]):
        return None
    return "".join(groups)


def parse_number(text: str, lang: str) -> float:
    """A number typed the Vietnamese way (1.234,5 · 98,5) or the English way (1,234.5 · 98.5).

    With both separators the last one is the decimal mark. With one separator used once, it is a decimal mark,
    except "1.234" in Vietnamese and "1,234" in English (the language's own thousands grouping). Raises ValueError.
    """
    compact = re.sub(r"\s", "", text.replace("\u2212", "-"))
    if len(compact) > 40 or not _NUMBER.fullmatch(compact):
        raise ValueError(text)
    sign = "-" if compact[0] == "-" else ""
    compact = compact.lstrip("+-")
    dots, commas = compact.count("."), compact.count(",")
    fraction = ""
    if dots and commas:
        mark = "." if compact.rfind(".") > compact.rfind(",") else ","
        whole, _, fraction = compact.rpartition(mark)
        integer = _ungroup(whole, "," if mark == "." else ".") if whole else ""
    elif dots + commas > 1:
        integer = _ungroup(compact, "." if dots else ",")
    elif dots + commas == 1:
        separator = "." if dots else ","
        grouping = "." if lang == "vi" else ","
        grouped = _ungroup(compact, separator) if separator == grouping else None
        if grouped is not None:
            integer = grouped
        else:
            integer, _, fraction = compact.partition(separator)
    else:
        integer = compact
    if integer is None or not (integer or fraction) or not (fraction.isdigit() or not fraction):
        raise ValueError(text)
    value = float(f"{sign}{integer or '0'}.{fraction or '0'}")
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def input_number(value: float | None, lang: str) -> str:
    """A stored number written for a form field in the reader's convention, exactly (it reads back the same)."""
    if value is None:
        return ""
    fixed = format(Decimal(repr(float(value))), "f")  # the shortest text that reads back as the same float
    sign = "-" if fixed.startswith("-") else ""
    integer, _, fraction = fixed.lstrip("-").partition(".")
    group, mark = (".", ",") if lang == "vi" else (",", ".")
    grouped = f"{int(integer):,}".replace(",", group)
    fraction = fraction.rstrip("0")
    return f"{sign}{grouped}{mark}{fraction}" if fraction else f"{sign}{grouped}"


# --- what the pages show --------------------------------------------------------------------------------


@cache
def units() -> dict[str, UnitDef]:
    """The units of measure of the catalog data (symbols and names in both languages)."""
    try:
        with (service.DEFAULT_CATALOG_DIR / "units.toml").open("rb") as handle:
            raw = tomllib.load(handle)
        return {item["code"]: UnitDef.model_validate(item) for item in raw.get("units", [])}
    except (OSError, tomllib.TOMLDecodeError, ValidationError, KeyError, TypeError):
        return {}


def _unit(code: str, lang: str) -> dict[str, str]:
    unit = units().get(code)
    if unit is None:
        return {"code": code, "symbol": code, "name": code}
    if lang == "vi":
        return {"code": code, "symbol": unit.symbol_vi, "name": unit.name_vi}
    return {"code": code, "symbol": unit.symbol_en, "name": unit.name_en}


def with_unit(value: float | None, symbol: str, lang: str, digits: int = 2) -> str:
    """A number with its unit: 98,5% (no space before a per-cent sign), 1.234 hồ sơ."""
    text = format_number(value, lang, digits)
    if value is None or not symbol:
        return text
    return f"{text}{symbol}" if symbol == "%" else f"{text} {symbol}"


def _name(item: Any, lang: str) -> str:
    return str(item.name_vi if lang == "vi" else item.name_en or item.name_vi)


def _clean(text: str | None, limit: int) -> str:
    # NUL cannot be compared by PostgreSQL, and no name holds one.
    return (text or "").replace("\x00", "").strip()[:limit]


def _province(request: Request, session: Session) -> Subject | None:
    return province_subject(session, parts(request).settings.province_code)


def _agency_names(session: Session, codes: set[str], lang: str) -> dict[str, str]:
    if not codes:
        return {}
    rows = session.execute(select(Agency.code, Agency.name_vi, Agency.name_en).where(Agency.code.in_(sorted(codes))))
    return {code: (name_vi if lang == "vi" else name_en or name_vi) for code, name_vi, name_en in rows}


def _domains(session: Session) -> list[Domain]:
    return list(session.scalars(select(Domain).order_by(Domain.sort_order, Domain.code)))


@dataclass
class ListQuery:
    """The filters of the catalog page."""

    search: str = ""
    domain: str = ""
    page: int = 1

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def url(self, **changes: Any) -> str:
        values = {"q": self.search, "domain": self.domain, "page": self.page, **changes}
        kept = {key: value for key, value in values.items() if value and not (key == "page" and value == 1)}
        return "/catalog" + ("?" + urlencode(kept) if kept else "")


def _list_context(request: Request, principal: Principal, query: ListQuery) -> dict[str, Any]:
    lang = language(request)
    with parts(request).db.reading() as session:
        domains = _domains(session)
        if query.domain not in {domain.code for domain in domains}:
            query.domain = ""
        rows, total = service.list_indicators(
            session, principal, domain=query.domain, search=query.search, limit=PAGE_SIZE, offset=query.offset
        )
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if query.page > pages:  # a page past the end (after a narrower search): show the last one
            query.page = pages
            rows, total = service.list_indicators(
                session, principal, domain=query.domain, search=query.search, limit=PAGE_SIZE, offset=query.offset
            )
        owners = _agency_names(session, {owner for _, _, owner in rows if owner}, lang)
        province = _province(request, session)
        latest: dict[str, dict[str, Any]] = {}
        if province is not None and rows:
            items, _ = observations.latest(session, [row[0].id for row in rows], subject_ids=[province.id])
            latest = {item["indicator"]: item for item in items}
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for indicator, domain_code, owner in rows:
        by_domain.setdefault(domain_code, []).append(
            {
                "code": indicator.code,
                "name": _name(indicator, lang),
                "unit": _unit(indicator.unit, lang),
                "period_type": indicator.period_type,
                "owner": owners.get(owner or "", owner or ""),
                "collection": indicator.collection,
                "access": indicator.access,
                "latest": latest.get(indicator.code),
            }
        )
    groups = [
        {"code": domain.code, "name": _name(domain, lang), "items": by_domain[domain.code]}
        for domain in domains
        if domain.code in by_domain
    ]
    return {
        "query": query,
        "domains": [{"code": domain.code, "name": _name(domain, lang)} for domain in domains],
        "groups": groups,
        "total": total,
        "pages": pages,
        "first_shown": (query.page - 1) * PAGE_SIZE + 1 if total else 0,
        "last_shown": min(query.page * PAGE_SIZE, total),
    }


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isascii() and text.isdigit() and 0 < len(text) < 6 and int(text) > 0 else 1


@router.get("/catalog")
async def catalog_page(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The indicators the user may see, by subsystem, with a search that ignores diacritics."""
    params = request.query_params
    query = ListQuery(
        search=_clean(params.get("q"), MAX_QUERY),
        domain=_clean(params.get("domain"), 32),
        page=_page_number(params.get("page")),
    )
    return render(request, "catalog.html", await run_in_threadpool(_list_context, request, principal, query))


# --- one indicator ---------------------------------------------------------------------------------------


@dataclass
class EditForm:
    """The editing form as shown: its rows as text, the version it was based on, and what is wrong."""

    rows: list[dict[str, str]]
    warning: str
    critical: str
    version: int
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[tuple[str, str, str]] = field(default_factory=list)  # (field id, label, message)
    notice: str = ""

    def add(self, field_id: str, label: str, message: str) -> None:
        self.errors.setdefault(field_id, []).append(message)
        self.summary.append((field_id, label, message))


def _form_from(indicator: Indicator, lang: str) -> EditForm:
    rows = [
        {
            "year": str(target["year"]),
            "value": input_number(target["value"], lang),
            "subject": str(target.get("subject") or ""),
        }
        for target in sorted(indicator.targets, key=lambda t: (t["year"], str(t.get("subject") or "")))
    ]
    rows += [{"year": "", "value": "", "subject": ""} for _ in range(BLANK_TARGET_ROWS)]
    thresholds = indicator.thresholds or {}
    return EditForm(
        rows=rows,
        warning=input_number(thresholds.get("warning"), lang),
        critical=input_number(thresholds.get("critical"), lang),
        version=indicator.version,
    )


def _direction_words(indicator: Indicator, lang: str) -> list[tuple[str, str]]:
    """The thresholds in words, with the direction: which way the value goes wrong, and where it alarms."""
    thresholds = indicator.thresholds or {}
    symbol = _unit(indicator.unit, lang)["symbol"]
    words = []
    for level in ("warning", "critical"):
        value = thresholds.get(level)
        if value is None:
            continue
        message = f"catalog.threshold.{level}.{indicator.direction}"
        words.append((level, translate(message, lang, value=with_unit(value, symbol, lang))))
    return words


def _summary(definition: dict[str, Any], lang: str) -> dict[str, str]:
    """A version's targets and thresholds in a few words, for the table of versions."""
    targets = sorted(definition.get("targets") or [], key=lambda t: (t["year"], str(t.get("subject") or "")))
    thresholds = definition.get("thresholds") or {}
    return {
        "targets": "; ".join(
            f"{t['year']}: {format_number(t['value'], lang)}" + (f" ({t['subject']})" if t.get("subject") else "")
            for t in targets
        )
        or "—",
        "thresholds": " / ".join(format_number(thresholds.get(level), lang) for level in ("warning", "critical")),
    }


def _subject_options(session: Session, province: Subject | None, lang: str, extra: set[str]) -> list[dict[str, str]]:
    communes = list(session.scalars(select(Subject).where(Subject.kind == "commune")))
    communes.sort(key=lambda subject: (fold(subject.name_vi), subject.code))
    options = [{"code": "", "name": translate("catalog.target.province", lang)}]
    options += [{"code": subject.code, "name": _name(subject, lang)} for subject in communes]
    shown = {option["code"] for option in options}
    if province is not None:
        shown.add(province.code)
    missing = sorted(extra - shown)
    if missing:
        for subject in session.scalars(select(Subject).where(Subject.code.in_(missing))):
            options.append({"code": subject.code, "name": _name(subject, lang)})
            shown.add(subject.code)
        options += [{"code": code, "name": code} for code in missing if code not in shown]
    return options


def _sorted_communes(items: list[dict[str, Any]], sort: str, descending: bool) -> list[dict[str, Any]]:
    def key(item: dict[str, Any]) -> Any:
        if sort == "value":
            return item["value"]
        if sort == "period":
            return item["period_start"]
        if sort == "updated":
            return item["received_at"]
        return fold(item["name"])

    present = [item for item in items if key(item) is not None]
    missing = [item for item in items if key(item) is None]  # a value withheld (null) goes last either way
    present.sort(key=lambda item: (key(item), fold(item["name"])), reverse=descending)
    return present + missing


def _history_from(period_type: str, now: datetime) -> str:
    local = now.astimezone(LOCAL_TZ)
    span = HISTORY_SPAN.get(period_type)
    if period_type == "instant" and span:
        return (now - span).strftime("%Y-%m-%dT%H:%M:%SZ")
    if period_type == "day" and span:
        return (local - span).strftime("%Y-%m-%d")
    return str(local.year - HISTORY_YEARS)


def _indicator_context(
    request: Request,
    principal: Principal,
    code: str,
    *,
    sort: str = "name",
    descending: bool = False,
    form: EditForm | None = None,
) -> dict[str, Any] | None:
    lang = language(request)
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        found = service.get_indicator(session, principal, code)
        if found is None:
            return None
        indicator, domain_code, owner_code = found
        domain = session.scalar(select(Domain).where(Domain.code == domain_code))
        owner = _agency_names(session, {owner_code} if owner_code else set(), lang).get(owner_code or "", "")
        parts_of_ratio = []
        for role, part_code in (("numerator", indicator.numerator_code), ("denominator", indicator.denominator_code)):
            if part_code:
                part = service.get_indicator(session, principal, part_code)
                name = _name(part[0], lang) if part else ""
                parts_of_ratio.append({"role": role, "code": part_code, "name": name, "visible": part is not None})
        subject_codes = {str(target.get("subject") or "") for target in indicator.targets} - {""}
        subject_names = {
            subject.code: _name(subject, lang)
            for subject in session.scalars(select(Subject).where(Subject.code.in_(sorted(subject_codes))))
        }
        province = _province(request, session)
        commune_items, _ = observations.latest(session, [indicator.id], subject_kind="commune", limit=1000)
        commune_names = {
            subject.code: _name(subject, lang)
            for subject in session.scalars(
                select(Subject).where(Subject.code.in_(sorted({item["subject"] for item in commune_items})))
            )
        }
        versions = [
            {"version": indicator.version, "by": indicator.updated_by, "at": indicator.updated_at, "current": True}
            | _summary({"targets": indicator.targets, "thresholds": indicator.thresholds}, lang)
        ]
        versions += [
            {"version": old.version, "by": old.changed_by, "at": old.changed_at, "current": False}
            | _summary(old.definition, lang)
            for old in session.scalars(
                select(IndicatorVersion)
                .where(IndicatorVersion.indicator_id == indicator.id)
                .order_by(IndicatorVersion.version.desc())
            )
        ]
        can_edit = principal.can("manage_catalog")
        if can_edit and form is None:
            form = _form_from(indicator, lang)
        options = (
            _subject_options(session, province, lang, {row["subject"] for row in form.rows if row["subject"]})
            if can_edit and form is not None
            else []
        )
    communes = [
        {
            **item,
            "name": commune_names.get(item["subject"], item["subject_name"]),
            "period_start": datetime.fromisoformat(item["period_start"]),
            "received_at": datetime.fromisoformat(item["received_at"]),
        }
        for item in commune_items
    ]
    targets = [
        {
            "year": target["year"],
            "value": target["value"],
            "subject": subject_names.get(str(target.get("subject") or ""), str(target.get("subject") or "")),
        }
        for target in sorted(indicator.targets, key=lambda t: (t["year"], str(t.get("subject") or "")))
    ]
    now = app_parts.clock()
    this_year = now.astimezone(LOCAL_TZ).year
    current_target = next(
        (t["value"] for t in indicator.targets if t["year"] == this_year and not t.get("subject")), None
    )
    series_url = ""
    if province is not None:
        series_url = f"/api/v1/indicators/{quote(indicator.code)}/series?" + urlencode(
            {
                "subject": province.code,
                "dimensions": "",
                "from": _history_from(indicator.period_type, now),
                "limit": SERIES_LIMIT,
            }
        )
    return {
        "indicator": indicator,
        "name": _name(indicator, lang),
        "other_name": indicator.name_en if lang == "vi" else indicator.name_vi,
        "description": indicator.description_vi if lang == "vi" else indicator.description_en,
        "domain": {"code": domain_code, "name": _name(domain, lang) if domain else domain_code},
        "owner": owner or owner_code or "",
        "unit": _unit(indicator.unit, lang),
        "ratio_parts": parts_of_ratio,
        "targets": targets,
        "warning": (indicator.thresholds or {}).get("warning"),
        "critical": (indicator.thresholds or {}).get("critical"),
        "threshold_words": _direction_words(indicator, lang),
        "communes": _sorted_communes(communes, sort, descending),
        "sort": sort,
        "descending": descending,
        "versions": versions,
        "series_url": series_url,
        "province_name": _name(province, lang) if province else "",
        "current_target": current_target,
        "this_year": this_year,
        "can_edit": can_edit,
        "form": form,
        "subject_options": options,
        "with_unit": lambda value: with_unit(value, _unit(indicator.unit, lang)["symbol"], lang),
    }


def _unit_symbol(request: Request, principal: Principal, code: str, lang: str) -> str:
    with parts(request).db.reading() as session:
        found = service.get_indicator(session, principal, code)
    return _unit(found[0].unit, lang)["symbol"] if found else ""


def _code_or_none(code: str) -> str | None:
    return code if 0 < len(code) <= MAX_CODE and "\x00" not in code else None


def _not_found(request: Request, code: str) -> Response:
    return render(request, "catalog_not_found.html", {"code": code[:MAX_CODE].replace("\x00", "")}, status_code=404)


@router.get("/catalog/{code}")
async def indicator_page(
    request: Request, code: str, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """One indicator: its definition, targets and thresholds, history, latest values by commune, versions."""
    sort = request.query_params.get("sort", "name")
    sort = sort if sort in COMMUNE_SORTS else "name"
    descending = request.query_params.get("order") == "desc"
    checked = _code_or_none(code)
    context = (
        await run_in_threadpool(_indicator_context, request, principal, checked, sort=sort, descending=descending)
        if checked
        else None
    )
    if context is None:
        return _not_found(request, code)
    lang = language(request)
    saved = request.query_params.get("saved", "")
    if saved.isascii() and saved.isdigit() and len(saved) < 8:
        context["notice"] = translate("catalog.edit.saved", lang, version=int(saved))
    elif request.query_params.get("unchanged") == "1":
        context["notice"] = translate("catalog.edit.unchanged", lang)
    return render(request, "catalog_indicator.html", context)


# --- editing targets and thresholds -----------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return _clean(value, 64) if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [_clean(value, 64) if isinstance(value, str) else "" for value in form.getlist(name)]


def _field_label(field_id: str, lang: str) -> str:
    if field_id.startswith("target-"):
        _, row, part = field_id.split("-", 2)
        return translate("catalog.edit.row_field", lang, row=row, field=translate(f"catalog.target.{part}", lang))
    if field_id.startswith("threshold-"):
        return translate(f"catalog.threshold.{field_id.removeprefix('threshold-')}", lang)
    return ""


def _message(problem: service.EditProblem, lang: str, symbol: str) -> str:
    params: dict[str, Any] = {}
    for key, value in problem.params.items():
        if isinstance(value, float):  # a value, a threshold or a limit of the indicator: in its unit
            params[key] = with_unit(value, symbol, lang, digits=6)
        elif isinstance(value, datetime):
            params[key] = format_moment(value, lang)
        else:
            params[key] = value
    return translate(problem.message, lang, **params)


@dataclass
class ParsedEdit:
    """The form's entries as numbers, and which form row each target came from."""

    targets: list[service.TargetIn] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    warning: float | None = None
    critical: float | None = None
    version: int = 0


def _parse_edit(form: FormData, lang: str) -> tuple[ParsedEdit, EditForm]:
    """Read the posted form into numbers; the form as it came back, with every entry that is not a number."""
    years, values, subjects = _texts(form, "target_year"), _texts(form, "target_value"), _texts(form, "target_subject")
    count = max(len(years), len(values), len(subjects))
    rows = [
        {
            "year": years[index] if index < len(years) else "",
            "value": values[index] if index < len(values) else "",
            "subject": subjects[index] if index < len(subjects) else "",
        }
        for index in range(count)
    ]
    version = _text(form, "version")
    parsed = ParsedEdit(version=int(version) if version.isascii() and version.isdigit() and len(version) < 10 else 0)
    shown = EditForm(
        rows=rows or [{"year": "", "value": "", "subject": ""}],
        warning=_text(form, "warning"),
        critical=_text(form, "critical"),
        version=parsed.version,
    )

    def wrong(field_id: str, message: str) -> None:
        shown.add(field_id, _field_label(field_id, lang), message)

    low, high = service.TARGET_YEARS
    for row, entry in enumerate(rows, start=1):
        if not entry["year"] and not entry["value"]:
            continue  # an empty row, or one the person cleared to remove its target
        number: float | None = None
        if not entry["year"]:
            wrong(f"target-{row}-year", translate("catalog.edit.year_missing", lang))
        elif not _YEAR.fullmatch(entry["year"]):
            wrong(f"target-{row}-year", translate("catalog.edit.year_range", lang, low=low, high=high))
        if not entry["value"]:
            wrong(f"target-{row}-value", translate("catalog.edit.value_missing", lang))
        else:
            try:
                number = parse_number(entry["value"], lang)
            except ValueError:
                wrong(f"target-{row}-value", translate("catalog.edit.not_a_number", lang, text=entry["value"]))
        if number is not None and _YEAR.fullmatch(entry["year"]):
            parsed.targets.append(service.TargetIn(int(entry["year"]), number, entry["subject"]))
            parsed.rows.append(row)
    for level, text in (("warning", shown.warning), ("critical", shown.critical)):
        if not text:
            continue
        try:
            setattr(parsed, level, parse_number(text, lang))
        except ValueError:
            wrong(f"threshold-{level}", translate("catalog.edit.not_a_number", lang, text=text))
    return parsed, shown


def _field_id(problem_field: str, rows: list[int]) -> str:
    """The form field of a problem the service names: targets.<index>.<part> or thresholds.<level>."""
    parts_of = problem_field.split(".")
    if parts_of[0] == "targets" and len(parts_of) == 3 and parts_of[1].isdigit() and int(parts_of[1]) < len(rows):
        return f"target-{rows[int(parts_of[1])]}-{parts_of[2]}"
    if parts_of[0] == "thresholds" and len(parts_of) == 2:
        return f"threshold-{parts_of[1]}"
    return ""


@router.post("/catalog/{code}")
async def edit_indicator(
    request: Request, code: str, principal: Principal = Depends(require_page("manage_catalog"))
) -> Response:
    """Save the targets and thresholds of an indicator (admins and operators), as a new version."""
    app_parts = parts(request)
    lang = language(request)
    checked = _code_or_none(code)
    if checked is None:
        return _not_found(request, code)
    form = await request.form()
    parsed, shown = _parse_edit(form, lang)

    async def again(status: int) -> Response:
        context = await run_in_threadpool(_indicator_context, request, principal, checked, form=shown)
        if context is None:
            return _not_found(request, code)
        return render(request, "catalog_indicator.html", context, status_code=status)

    token = form.get("csrf_token")
    seed = request.cookies.get(CSRF_COOKIE)
    if not csrf_valid(app_parts.settings.resolved_secret_key, seed, token if isinstance(token, str) else None):
        # Nothing is saved; the entries stay in the form to send again from the reloaded page.
        shown.errors, shown.summary = {}, []
        shown.notice = translate("login.csrf", lang)
        return await again(403)
    if shown.errors:
        return await again(422)
    moment, actor = app_parts.clock(), Actor.of(principal, client_ip(request))

    def run() -> service.EditResult:
        with app_parts.db.writing() as session:
            return service.update_targets_and_thresholds(
                session,
                principal,
                actor,
                moment,
                checked,
                targets=parsed.targets,
                warning=parsed.warning,
                critical=parsed.critical,
                base_version=parsed.version,
            )

    try:
        result = await run_in_threadpool(run)
    except service.CatalogEditError as exc:
        if exc.status == 404:
            return _not_found(request, code)
        symbol = await run_in_threadpool(_unit_symbol, request, principal, checked, lang)
        for problem in exc.problems:
            field_id = _field_id(problem.field, parsed.rows)
            if field_id:
                shown.add(field_id, _field_label(field_id, lang), _message(problem, lang, symbol))
            else:
                shown.notice = _message(problem, lang, symbol)
        if exc.status == 409:
            shown.version = int(exc.problems[0].params["version"])
        return await again(exc.status)
    outcome = f"saved={result.version}" if result.changed else "unchanged=1"
    target = f"/catalog/{quote(checked)}?{outcome}#main"  # back to the top, where the outcome is said
    return RedirectResponse(target, status_code=303)
