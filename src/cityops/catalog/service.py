"""The rules of the catalog: load and validate the data files, version changes, list what one may see."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.catalog.models import Domain, Indicator, IndicatorVersion
from cityops.catalog.schemas import AgencyDef, DomainFile, IndicatorDef, TargetDef, ThresholdsDef, UnitDef
from cityops.geo.models import Subject
from cityops.i18n import fold

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])
DEFAULT_CATALOG_DIR = Path(__file__).parent / "data"
SPECIAL_FILES = ("agencies.toml", "units.toml")


class CatalogError(ValueError):
    """The catalog files are wrong; the message names the file, the indicator and the field."""


@dataclass(frozen=True)
class CatalogFiles:
    """The validated content of a catalog folder."""

    agencies: list[AgencyDef]
    units: dict[str, UnitDef]
    domains: list[DomainFile]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: not valid TOML: {exc}") from exc


def _describe(path: Path, exc: ValidationError, raw: dict[str, Any]) -> str:
    lines = []
    for error in exc.errors():
        location = list(error["loc"])
        where = ""
        if len(location) >= 2 and location[0] == "indicators" and isinstance(location[1], int):
            items = raw.get("indicators") or []
            code = items[location[1]].get("code", f"#{location[1] + 1}") if location[1] < len(items) else ""
            where = f"indicator {code}: "
            location = location[2:]
        field = ".".join(str(part) for part in location) or "(file)"
        lines.append(f"{path.name}: {where}field {field}: {error['msg']}")
    return "\n".join(lines)


def read_catalog(folder: Path = DEFAULT_CATALOG_DIR) -> CatalogFiles:
    """Read and validate every file of a catalog folder, checking references between them."""
    if not folder.is_dir():
        raise CatalogError(f"{folder}: not a folder")
    agencies: list[AgencyDef] = []
    units: dict[str, UnitDef] = {}
    if (folder / "agencies.toml").exists():
        raw = _read_toml(folder / "agencies.toml")
        for index, item in enumerate(raw.get("agencies", [])):
            try:
                agencies.append(AgencyDef.model_validate(item))
            except ValidationError as exc:
                raise CatalogError(f"agencies.toml: agency #{index + 1} ({item.get('code', '?')}): {exc}") from exc
    if (folder / "units.toml").exists():
        raw = _read_toml(folder / "units.toml")
        for item in raw.get("units", []):
            try:
                unit = UnitDef.model_validate(item)
            except ValidationError as exc:
                raise CatalogError(f"units.toml: unit {item.get('code', '?')}: {exc}") from exc
            units[unit.code] = unit
    domains: list[DomainFile] = []
    for path in sorted(folder.glob("*.toml")):
        if path.name in SPECIAL_FILES:
            continue
        raw = _read_toml(path)
        try:
            domains.append(DomainFile.model_validate(raw))
        except ValidationError as exc:
            raise CatalogError(_describe(path, exc, raw)) from exc
        if domains[-1].domain.code != path.stem:
            raise CatalogError(f"{path.name}: domain code {domains[-1].domain.code!r} differs from the file name")
    _check_references(domains, units, {agency.code for agency in agencies})
    return CatalogFiles(agencies=agencies, units=units, domains=domains)


def _check_references(domains: list[DomainFile], units: dict[str, UnitDef], agencies: set[str]) -> None:
    seen: dict[str, str] = {}
    for file in domains:
        for indicator in file.indicators:
            if indicator.code in seen:
                name = f"{file.domain.code}.toml: indicator {indicator.code}"
                raise CatalogError(f"{name}: field code: also defined in {seen[indicator.code]}")
            seen[indicator.code] = f"{file.domain.code}.toml"
    for file in domains:
        for indicator in file.indicators:
            problems = reference_problems(indicator, file.domain.code, units=units, agencies=agencies, indicators=seen)
            if problems:
                raise CatalogError(f"{file.domain.code}.toml: indicator {indicator.code}: {problems[0]}")


@dataclass(frozen=True)
class ReferenceProblem:
    """A reference of an indicator that does not hold: the field, a reason code and the value referred to."""

    field: str
    reason: str  # code_prefix, unknown_unit, unknown_agency, unknown_indicator
    value: str

    def __str__(self) -> str:
        what = {
            "code_prefix": f"must start with {self.value}.",
            "unknown_unit": f"unknown unit {self.value!r}",
            "unknown_agency": f"unknown agency {self.value!r}",
            "unknown_indicator": f"unknown indicator {self.value!r}",
        }[self.reason]
        return f"field {self.field}: {what}"


def reference_problems(
    indicator: IndicatorDef,
    domain_code: str,
    *,
    units: Collection[str],
    agencies: Collection[str],
    indicators: Collection[str],
) -> list[ReferenceProblem]:
    """The checks beyond its shape an indicator passes (catalog files and imports alike).

    The code starts with its domain; the unit and the owner agency exist (unchecked when none are given);
    a ratio's numerator and denominator are known indicators.
    """
    problems: list[ReferenceProblem] = []
    if not indicator.code.startswith(domain_code + "."):
        problems.append(ReferenceProblem("code", "code_prefix", domain_code))
    if units and indicator.unit not in units:
        problems.append(ReferenceProblem("unit", "unknown_unit", indicator.unit))
    if agencies and indicator.owner not in agencies:
        problems.append(ReferenceProblem("owner", "unknown_agency", indicator.owner))
    for field in ("numerator", "denominator"):
        reference = getattr(indicator, field)
        if reference and reference not in indicators:
            problems.append(ReferenceProblem(field, "unknown_indicator", reference))
    return problems


def _definition(indicator: Indicator) -> dict[str, Any]:
    return {column: getattr(indicator, column) for column in _VERSIONED_COLUMNS}


_VERSIONED_COLUMNS = (
    "monitored_item",
    "name_vi",
    "name_en",
    "description_vi",
    "description_en",
    "unit",
    "period_type",
    "aggregation",
    "numerator_code",
    "denominator_code",
    "direction",
    "owner_agency_id",
    "source_system",
    "collection",
    "access",
    "subject_level",
    "min_value",
    "max_value",
    "dimensions",
    "references",
    "targets",
    "thresholds",
    "domain_id",
)


@dataclass
class LoadReport:
    """What a catalog load changed."""

    agencies_created: int = 0
    domains: int = 0
    indicators_created: int = 0
    indicators_updated: int = 0
    indicators_unchanged: int = 0


def load_catalog(session: Session, actor: Actor, now: datetime, folder: Path = DEFAULT_CATALOG_DIR) -> LoadReport:
    """Load or update the catalog from a folder; a changed indicator gets a new version, its old one kept."""
    files = read_catalog(folder)
    report = LoadReport()
    agency_ids = {code: id_ for id_, code in session.execute(select(Agency.id, Agency.code))}
    for agency_def in files.agencies:  # parents come before children in the file
        if agency_def.code in agency_ids:
            continue
        agency = Agency(
            code=agency_def.code,
            name_vi=agency_def.name_vi,
            name_en=agency_def.name_en,
            kind=agency_def.kind,
            parent_id=agency_ids.get(agency_def.parent),
            created_at=now,
        )
        session.add(agency)
        session.flush()
        agency_ids[agency.code] = agency.id
        report.agencies_created += 1
        audit(session, actor, "agency.create", "agency", agency.id, now, {"code": agency.code, "source": "catalog"})
    for file in files.domains:
        domain = session.scalar(select(Domain).where(Domain.code == file.domain.code))
        if domain is None:
            domain = Domain(code=file.domain.code)
            session.add(domain)
        domain.name_vi, domain.name_en = file.domain.name_vi, file.domain.name_en
        domain.source_system, domain.sort_order = file.domain.source_system, file.domain.order
        session.flush()
        report.domains += 1
        for definition in file.indicators:
            outcome = upsert_indicator(session, actor, now, domain.id, definition, agency_ids)
            setattr(report, f"indicators_{outcome}", getattr(report, f"indicators_{outcome}") + 1)
    return report


def upsert_indicator(
    session: Session,
    actor: Actor,
    now: datetime,
    domain_id: int,
    definition: IndicatorDef,
    agency_ids: dict[str, int],
    details: dict[str, Any] | None = None,
) -> Literal["created", "updated", "unchanged"]:
    """Create or update one indicator from its definition; a change is a new version, the old one kept, audited."""
    values: dict[str, Any] = {
        "domain_id": domain_id,
        "monitored_item": definition.monitored_item,
        "name_vi": definition.name_vi,
        "name_en": definition.name_en,
        "description_vi": definition.description_vi,
        "description_en": definition.description_en,
        "unit": definition.unit,
        "period_type": definition.period,
        "aggregation": definition.aggregation,
        "numerator_code": definition.numerator,
        "denominator_code": definition.denominator,
        "direction": definition.direction,
        "owner_agency_id": agency_ids.get(definition.owner),
        "source_system": definition.source_system,
        "collection": definition.collection,
        "access": definition.access,
        "subject_level": definition.subject_level,
        "min_value": definition.min,
        "max_value": definition.max,
        "dimensions": list(definition.dimensions),
        "references": list(definition.references),
        "targets": [target.model_dump() for target in definition.targets],
        "thresholds": definition.thresholds.model_dump(),
    }
    search_text = indicator_search_text(definition.code, definition.name_vi, definition.name_en)
    indicator = session.scalar(select(Indicator).where(Indicator.code == definition.code))
    if indicator is not None and indicator.search_text != search_text:
        indicator.search_text = search_text
    if indicator is None:
        session.add(
            Indicator(
                code=definition.code,
                version=1,
                updated_at=now,
                updated_by=actor.label,
                search_text=search_text,
                **values,
            )
        )
        return "created"
    if _definition(indicator) == values:
        return "unchanged"
    _new_version(session, actor, now, indicator, values, details)
    return "updated"


def indicator_search_text(code: str, name_vi: str, name_en: str) -> str:
    """What search looks in: the code and both names, folded (no diacritics, lower case)."""
    return fold(f"{code} {name_vi} {name_en}")


def visible(query: SelectT, principal: Principal) -> SelectT:
    """Limit a query on indicators to what the principal may see: restricted ones only to their owners."""
    if principal.province_wide:
        return query
    return query.where(or_(Indicator.access != "restricted", Indicator.owner_agency_id.in_(principal.agency_ids)))


def _indicator_query() -> Select[Indicator, str, str]:
    query: Select[Indicator, str, str] = (
        select(Indicator, Domain.code, Agency.code)
        .join(Domain, Domain.id == Indicator.domain_id)
        .outerjoin(Agency, Agency.id == Indicator.owner_agency_id)
    )
    return query


def list_indicators(
    session: Session, principal: Principal, *, domain: str = "", search: str = "", limit: int = 100, offset: int = 0
) -> tuple[list[tuple[Indicator, str, str | None]], int]:
    """Indicators the principal may see, with their domain code and owner agency code; and the total."""
    query = visible(_indicator_query(), principal)
    if domain:
        query = query.where(Domain.code == domain)
    if search:
        # Folded on both sides, so "dieu tri", "Điều trị" and "ĐIỀU TRỊ" find the same indicators.
        escaped = fold(search).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Indicator.search_text.like(f"%{escaped}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Domain.sort_order, Indicator.code).limit(limit).offset(offset)).all()
    return [(row[0], row[1], row[2]) for row in rows], total


def get_indicator(session: Session, principal: Principal, code: str) -> tuple[Indicator, str, str | None] | None:
    """One indicator the principal may see, or None."""
    row: Any = session.execute(visible(_indicator_query().where(Indicator.code == code), principal)).first()
    return (row[0], row[1], row[2]) if row else None


def indicator_out(indicator: Indicator, domain_code: str, owner_code: str | None) -> dict[str, Any]:
    """The API shape of an indicator."""
    return {
        "code": indicator.code,
        "domain": domain_code,
        "monitored_item": indicator.monitored_item,
        "name_vi": indicator.name_vi,
        "name_en": indicator.name_en,
        "description_vi": indicator.description_vi,
        "description_en": indicator.description_en,
        "unit": indicator.unit,
        "period_type": indicator.period_type,
        "aggregation": indicator.aggregation,
        "numerator": indicator.numerator_code,
        "denominator": indicator.denominator_code,
        "direction": indicator.direction,
        "owner_agency": owner_code,
        "source_system": indicator.source_system,
        "collection": indicator.collection,
        "access": indicator.access,
        "subject_level": indicator.subject_level,
        "min_value": indicator.min_value,
        "max_value": indicator.max_value,
        "dimensions": indicator.dimensions,
        "references": indicator.references,
        "targets": indicator.targets,
        "thresholds": indicator.thresholds,
        "version": indicator.version,
    }


# --- editing targets and thresholds in the UI -------------------------------------------------------

TARGET_YEARS = (2000, 2100)  # the years TargetDef accepts, so an edited catalog still loads and exports
MAX_TARGETS = 100


@dataclass(frozen=True)
class EditProblem:
    """One reason an edit was refused: the form field, a translation id and its parameters."""

    field: str
    message: str
    params: dict[str, Any]


class CatalogEditError(ValueError):
    """An edit of targets or thresholds that breaks a rule; nothing was changed."""

    def __init__(self, problems: list[EditProblem], *, status: int = 422) -> None:
        super().__init__(", ".join(problem.message for problem in problems))
        self.problems = problems
        self.status = status


@dataclass(frozen=True)
class TargetIn:
    """A target as a person typed it, parsed: the year, the value, and a subject code ("" for the province)."""

    year: int
    value: float
    subject: str = ""


@dataclass(frozen=True)
class EditResult:
    """What an edit did: the indicator's version after it, and whether anything changed."""

    version: int
    changed: bool


def update_targets_and_thresholds(
    session: Session,
    principal: Principal,
    actor: Actor,
    now: datetime,
    code: str,
    *,
    targets: list[TargetIn],
    warning: float | None,
    critical: float | None,
    base_version: int,
) -> EditResult:
    """Replace an indicator's targets and thresholds, as a new version (the old one kept), audited.

    `base_version` is the version the person saw: if someone changed the indicator since, nothing is written.
    """
    if not principal.can("manage_catalog"):
        raise CatalogEditError([EditProblem("", "catalog.edit.forbidden", {})], status=403)
    query = visible(_indicator_query().where(Indicator.code == code), principal).with_for_update(of=Indicator)
    row: Any = session.execute(query).first()
    if row is None:
        raise CatalogEditError([EditProblem("", "catalog.edit.unknown", {"code": code[:80]})], status=404)
    indicator: Indicator = row[0]
    if indicator.version != base_version:
        by = {"version": indicator.version, "by": indicator.updated_by, "at": indicator.updated_at}
        raise CatalogEditError([EditProblem("", "catalog.edit.conflict", by)], status=409)
    problems = _target_problems(session, indicator, targets) + _threshold_problems(indicator, warning, critical)
    if problems:
        raise CatalogEditError(problems)
    values: dict[str, Any] = {
        "targets": [
            TargetDef(year=target.year, value=target.value, subject=target.subject).model_dump()
            for target in sorted(targets, key=lambda target: (target.year, target.subject))
        ],
        "thresholds": ThresholdsDef(warning=warning, critical=critical).model_dump(),
    }
    before = {"targets": indicator.targets, "thresholds": indicator.thresholds}
    if _same_targets(indicator.targets, values["targets"]) and indicator.thresholds == values["thresholds"]:
        return EditResult(indicator.version, changed=False)
    details = {"fields": sorted(key for key in values if before[key] != values[key]), "source": "ui", "before": before}
    _new_version(session, actor, now, indicator, values, details)
    return EditResult(indicator.version, changed=True)


def _same_targets(stored: list[dict[str, Any]], new: list[dict[str, Any]]) -> bool:
    def key(target: dict[str, Any]) -> tuple[int, str, float]:
        return int(target["year"]), str(target.get("subject") or ""), float(target["value"])

    return sorted(map(key, stored)) == sorted(map(key, new))


def _within_range(indicator: Indicator, field: str, value: float) -> list[EditProblem]:
    if not math.isfinite(value):
        return [EditProblem(field, "catalog.edit.not_finite", {})]
    if indicator.min_value is not None and value < indicator.min_value:
        return [EditProblem(field, "catalog.edit.below_min", {"value": value, "min": indicator.min_value})]
    if indicator.max_value is not None and value > indicator.max_value:
        return [EditProblem(field, "catalog.edit.above_max", {"value": value, "max": indicator.max_value})]
    return []


def _target_problems(session: Session, indicator: Indicator, targets: list[TargetIn]) -> list[EditProblem]:
    if len(targets) > MAX_TARGETS:
        return [EditProblem("targets", "catalog.edit.too_many_targets", {"limit": MAX_TARGETS})]
    codes = sorted({target.subject for target in targets if target.subject})
    known = set(session.scalars(select(Subject.code).where(Subject.code.in_(codes)))) if codes else set()
    problems: list[EditProblem] = []
    seen: dict[tuple[int, str], int] = {}
    low, high = TARGET_YEARS
    for index, target in enumerate(targets):
        where = f"targets.{index}"
        if not low <= target.year <= high:
            problems.append(EditProblem(f"{where}.year", "catalog.edit.year_range", {"low": low, "high": high}))
        problems += _within_range(indicator, f"{where}.value", target.value)
        if target.subject and target.subject not in known:
            problems.append(EditProblem(f"{where}.subject", "catalog.edit.unknown_subject", {"code": target.subject}))
        first = seen.setdefault((target.year, target.subject), index)
        if first != index:
            problems.append(
                EditProblem(f"{where}.year", "catalog.edit.duplicate_target", {"year": target.year, "row": first + 1})
            )
    return problems


def _threshold_problems(indicator: Indicator, warning: float | None, critical: float | None) -> list[EditProblem]:
    given = {name: value for name, value in (("warning", warning), ("critical", critical)) if value is not None}
    if given and indicator.direction == "neutral":
        return [EditProblem(f"thresholds.{name}", "catalog.edit.neutral_thresholds", {}) for name in given]
    problems: list[EditProblem] = []
    for name, value in given.items():
        problems += _within_range(indicator, f"thresholds.{name}", value)
    if problems or warning is None or critical is None:
        return problems
    # The warning comes first on the way from good to bad: above the critical level when higher is better.
    if indicator.direction == "higher_better" and warning < critical:
        return [EditProblem("thresholds.warning", "catalog.edit.warning_below_critical", given)]
    if indicator.direction == "lower_better" and warning > critical:
        return [EditProblem("thresholds.warning", "catalog.edit.warning_above_critical", given)]
    return []


def _new_version(
    session: Session,
    actor: Actor,
    now: datetime,
    indicator: Indicator,
    values: dict[str, Any],
    details: dict[str, Any] | None = None,
) -> None:
    """Keep the current definition as a past version, apply the new values as the next version, audit it."""
    session.add(
        IndicatorVersion(
            indicator_id=indicator.id,
            version=indicator.version,
            definition=_definition(indicator),
            changed_at=now,
            changed_by=actor.label,
        )
    )
    for column, value in values.items():
        setattr(indicator, column, value)
    indicator.version += 1
    indicator.updated_at, indicator.updated_by = now, actor.label
    audit(
        session,
        actor,
        "indicator.update",
        "indicator",
        indicator.code,
        now,
        {"version": indicator.version, **(details or {})},
    )
