"""The rules of the catalog: load and validate the data files, version changes, list what one may see."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.catalog.models import Domain, Indicator, IndicatorVersion
from cityops.catalog.schemas import AgencyDef, DomainFile, IndicatorDef, UnitDef
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
            name = f"{file.domain.code}.toml: indicator {indicator.code}"
            if indicator.code in seen:
                raise CatalogError(f"{name}: field code: also defined in {seen[indicator.code]}")
            seen[indicator.code] = f"{file.domain.code}.toml"
            if not indicator.code.startswith(file.domain.code + "."):
                raise CatalogError(f"{name}: field code: must start with {file.domain.code}.")
            if units and indicator.unit not in units:
                raise CatalogError(f"{name}: field unit: unknown unit {indicator.unit!r}")
            if agencies and indicator.owner not in agencies:
                raise CatalogError(f"{name}: field owner: unknown agency {indicator.owner!r}")
    for file in domains:
        for indicator in file.indicators:
            for field in ("numerator", "denominator"):
                reference = getattr(indicator, field)
                if reference and reference not in seen:
                    raise CatalogError(
                        f"{file.domain.code}.toml: indicator {indicator.code}: field {field}: "
                        f"unknown indicator {reference!r}"
                    )


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
            _upsert_indicator(session, actor, now, domain.id, definition, agency_ids, report)
    return report


def _upsert_indicator(
    session: Session,
    actor: Actor,
    now: datetime,
    domain_id: int,
    definition: IndicatorDef,
    agency_ids: dict[str, int],
    report: LoadReport,
) -> None:
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
        report.indicators_created += 1
        return
    if _definition(indicator) == values:
        report.indicators_unchanged += 1
        return
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
    audit(session, actor, "indicator.update", "indicator", indicator.code, now, {"version": indicator.version})
    report.indicators_updated += 1


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
