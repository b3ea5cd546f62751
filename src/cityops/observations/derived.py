"""Derived values: ratios computed from their parts, commune values rolled up to the province, a stored value
compared with the computed one; and the definition of an indicator in force when a value was received.

Reading one indicator for one period:
1. one query loads the current rows (totals only: dims_key '') of the indicator and, for a ratio, of its numerator
   and denominator: per indicator and subject the newest row of the period (for an instant indicator read over a
   longer period, the newest instant in it), the most recently received feed winning;
2. one query loads the province and its communes (besides two small catalog look-ups: the parts' rules and the
   indicator's past versions) — never a query per subject;
3. in memory, for every subject: the stored value; the computed one (a ratio from its parts, each stored or rolled
   up; at the province, the roll-up of its communes by the indicator's rule) with how many communes reported;
   the value chosen (a stored one wins) and the difference between the two.

Roll-up rules over the communes of a province: sum → the sum; last (the latest value over time, a stock such as
population or cameras) → also the sum of each commune's latest value; mean → the unweighted mean of the communes
that reported; ratio → recomputed from its rolled-up parts, never an average of commune percentages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.catalog.models import Domain, Indicator, IndicatorVersion
from cityops.geo.models import Subject
from cityops.i18n import both
from cityops.observations.models import Observation, ObservationDay
from cityops.observations.periods import Period, period_of

STORED, COMPUTED = "stored", "computed"
NUMERATOR, DENOMINATOR = "numerator", "denominator"
# Why a value (or the computed one) is missing: derived.reason.<code> in the translation catalogs.
REASONS = (
    "no_data",
    "stored_null",
    "numerator_missing",
    "denominator_missing",
    "parts_missing",
    "denominator_zero",
    "no_commune_values",
)
_KIND_ORDER = {"province": 0, "commune": 1, "entity": 2}
# Columns of `indicators` that are not part of an indicator's definition (so not versioned).
_NOT_DEFINITION = frozenset({"id", "code", "search_text", "version", "updated_at", "updated_by"})
# Stored column name → the name the API uses for it (as in GET /api/v1/indicators/{code}).
_API_NAMES = {
    "numerator_code": "numerator",
    "denominator_code": "denominator",
    "owner_agency_id": "owner_agency",
    "domain_id": "domain",
}


class PeriodMismatch(ValueError):
    """The period asked is not of the indicator's period type (nor longer, for an instant indicator)."""

    def __init__(self, code: str, expected: str, given: str) -> None:
        super().__init__(f"{code}: {given} asked, {expected} expected")
        self.code, self.expected, self.given = code, expected, given


class UnknownSubject(LookupError):
    """No subject has the code asked."""


@dataclass(frozen=True, slots=True)
class Rule:
    """How an indicator's values derive: its aggregation, unit and, for a ratio, its parts."""

    id: int
    code: str
    aggregation: str
    unit: str
    period_type: str
    numerator: str = ""
    denominator: str = ""

    @classmethod
    def of(cls, indicator: Indicator) -> Rule:
        return cls(
            indicator.id,
            indicator.code,
            indicator.aggregation,
            indicator.unit,
            indicator.period_type,
            indicator.numerator_code or "",
            indicator.denominator_code or "",
        )

    @property
    def is_ratio(self) -> bool:
        return self.aggregation == "ratio" and bool(self.numerator and self.denominator)

    @property
    def parts(self) -> tuple[str, ...]:
        return (self.numerator, self.denominator) if self.is_ratio else ()


@dataclass(frozen=True, slots=True)
class Selection:
    """Which rows a period selects: exactly that period, or the newest instant within it (`latest_within`)."""

    period: Period
    latest_within: bool = False


def selection_for(rule: Rule, period: Period) -> Selection:
    """The rows of an indicator a period asks for; PeriodMismatch when the period does not fit the indicator.

    An instant indicator (a stock such as cameras online) may be read over a day, month, … : each subject's newest
    instant in it, its value at the end of the period. Any other indicator is read for its own period type.
    """
    if period.type == rule.period_type:
        return Selection(period)
    if rule.period_type == "instant":
        return Selection(period, latest_within=True)
    raise PeriodMismatch(rule.code, rule.period_type, period.type)


@dataclass(frozen=True, slots=True)
class Place:
    """A subject as the derived values need it."""

    id: int
    code: str
    name_vi: str
    name_en: str
    kind: str
    parent_id: int | None


@dataclass(frozen=True, slots=True)
class StoredRow:
    """The current stored value of one indicator for one subject in the selection."""

    value: float | None
    null_reason: str
    period_key: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Geography:
    """The provinces and their communes: who rolls up into whom."""

    places: Mapping[int, Place]
    communes: Mapping[int, tuple[int, ...]]  # province id → its communes' ids


@dataclass(frozen=True, slots=True)
class PartValue:
    """A numerator or denominator as used for a ratio: stored at the subject, or rolled up from its communes."""

    role: str
    indicator: str
    value: float | None
    source: str | None
    communes_reported: int | None = None
    communes_expected: int | None = None
    reporting: frozenset[int] = frozenset()  # the communes whose values the roll-up used


@dataclass(frozen=True, slots=True)
class DerivedValue:
    """One subject's value of one indicator for one period: stored, computed, the one chosen and why."""

    indicator: str
    subject: Place
    period: str
    stored_row: StoredRow | None
    computed: float | None
    computed_reason: str | None
    communes_reported: int | None
    communes_expected: int | None
    parts: tuple[PartValue, ...] = ()

    @property
    def stored(self) -> float | None:
        return None if self.stored_row is None else self.stored_row.value

    @property
    def value(self) -> float | None:
        """The stored value when there is one (it wins), else the computed one."""
        return self.stored if self.stored is not None else self.computed

    @property
    def source(self) -> str | None:
        if self.stored is not None:
            return STORED
        return COMPUTED if self.computed is not None else None

    @property
    def difference(self) -> tuple[float, float | None] | None:
        """Stored minus computed, and that as a fraction of the computed value (None when it is 0)."""
        if self.stored is None or self.computed is None:
            return None
        absolute = self.stored - self.computed
        return absolute, (absolute / abs(self.computed) if self.computed else None)

    @property
    def reason(self) -> str | None:
        """Why there is no value: the sender's stated reason first, then why nothing could be computed."""
        if self.value is not None:
            return None
        if self.stored_row is not None:
            return "stored_null"
        return self.computed_reason or "no_data"


# --- reading ----------------------------------------------------------------------------------------


def load_rules(session: Session, codes: Iterable[str]) -> dict[str, Rule]:
    """The rules of the indicators with these codes (one query)."""
    wanted = sorted(set(filter(None, codes)))
    if not wanted:
        return {}
    return {
        indicator.code: Rule.of(indicator)
        for indicator in session.scalars(select(Indicator).where(Indicator.code.in_(wanted)))
    }


def load_geography(session: Session) -> Geography:
    """The provinces and their communes (one query)."""
    places = {
        row.id: Place(row.id, row.code, row.name_vi, row.name_en, row.kind, row.parent_id)
        for row in session.execute(
            select(Subject.id, Subject.code, Subject.name_vi, Subject.name_en, Subject.kind, Subject.parent_id).where(
                Subject.kind.in_(("province", "commune"))
            )
        )
    }
    communes: dict[int, list[int]] = {place.id: [] for place in places.values() if place.kind == "province"}
    for place in places.values():
        if place.kind == "commune" and place.parent_id in communes:
            communes[place.parent_id].append(place.id)
    return Geography(places, {province: tuple(sorted(ids)) for province, ids in communes.items()})


def load_rows(
    session: Session, indicator_ids: Iterable[int], selection: Selection, subject_ids: Sequence[int] | None = None
) -> tuple[dict[tuple[int, int], StoredRow], dict[int, Place]]:
    """The current total (dims_key '') of each indicator and subject in the selection, and those subjects (one query).

    Per indicator and subject the newest row wins: the newest instant when reading within a period, then the most
    recently received of two feeds (as `latest()` does).
    """
    ids = sorted(set(indicator_ids))
    if not ids:
        return {}, {}
    if selection.latest_within:
        return _load_days(session, ids, selection.period, subject_ids)
    period = selection.period
    rank = (
        func.row_number()
        .over(
            partition_by=(Observation.indicator_id, Observation.subject_id),
            order_by=(Observation.period_start.desc(), Observation.received_at.desc(), Observation.id.desc()),
        )
        .label("rank")
    )
    ranked = select(
        Observation.indicator_id,
        Observation.subject_id,
        Observation.value,
        Observation.null_reason,
        Observation.period_key,
        Observation.received_at,
        rank,
    ).where(Observation.indicator_id.in_(ids), Observation.dims_key == "")
    # period_start narrows the search to the (indicator_id, period_start) index
    ranked = ranked.where(Observation.period_key == period.key, Observation.period_start == period.start)
    if subject_ids is not None:
        ranked = ranked.where(Observation.subject_id.in_(list(subject_ids)))
    return _first_ranked(session, ranked)


def _load_days(
    session: Session, ids: list[int], period: Period, subject_ids: Sequence[int] | None
) -> tuple[dict[tuple[int, int], StoredRow], dict[int, Place]]:
    """load_rows for the newest instant within a period, from the daily roll-up (observations/rollup.py): the newest
    reading of the period's newest day with data, per indicator and subject."""
    rank = (
        func.row_number()
        .over(
            partition_by=(ObservationDay.indicator_id, ObservationDay.subject_id),
            order_by=(ObservationDay.day_start.desc(),),
        )
        .label("rank")
    )
    ranked = select(
        ObservationDay.indicator_id,
        ObservationDay.subject_id,
        ObservationDay.value,
        ObservationDay.null_reason,
        ObservationDay.period_key,
        ObservationDay.received_at,
        rank,
    ).where(
        ObservationDay.indicator_id.in_(ids),
        ObservationDay.day_start >= period.start,
        ObservationDay.day_start < period.end,
    )
    if subject_ids is not None:
        ranked = ranked.where(ObservationDay.subject_id.in_(list(subject_ids)))
    return _first_ranked(session, ranked)


def _first_ranked(session: Session, ranked: Any) -> tuple[dict[tuple[int, int], StoredRow], dict[int, Place]]:
    """The rows ranked first per indicator and subject, with their subjects (one query)."""
    newest = ranked.subquery()
    query = (
        select(newest, Subject.code, Subject.name_vi, Subject.name_en, Subject.kind, Subject.parent_id)
        .join(Subject, Subject.id == newest.c.subject_id)
        .where(newest.c.rank == 1)
    )
    rows: dict[tuple[int, int], StoredRow] = {}
    places: dict[int, Place] = {}
    for row in session.execute(query):
        rows[(row.indicator_id, row.subject_id)] = StoredRow(
            row.value, row.null_reason or "", row.period_key, row.received_at
        )
        places[row.subject_id] = Place(row.subject_id, row.code, row.name_vi, row.name_en, row.kind, row.parent_id)
    return rows, places


# --- the rules, in memory -------------------------------------------------------------------------------


class Deriver:
    """Derives values from rows already loaded: no query."""

    def __init__(
        self, rules: Mapping[str, Rule], rows: Mapping[tuple[int, int], StoredRow], geography: Geography
    ) -> None:
        self.rules = rules
        self.rows = rows
        self.geography = geography

    def _number(self, rule: Rule, subject_id: int) -> float | None:
        row = self.rows.get((rule.id, subject_id))
        return None if row is None else row.value

    def roll_up(self, rule: Rule, province_id: int, role: str = "") -> PartValue:
        """The communes' values of a non-ratio indicator combined by its rule, with how many reported."""
        communes = self.geography.communes.get(province_id, ())
        numbers = {commune: self._number(rule, commune) for commune in communes}
        reporting = {commune: number for commune, number in numbers.items() if number is not None}
        value: float | None = None
        if reporting and not rule.is_ratio:
            total = sum(reporting.values())
            value = total / len(reporting) if rule.aggregation == "mean" else total  # sum and last: the sum
        return PartValue(
            role,
            rule.code,
            value,
            COMPUTED if value is not None else None,
            len(reporting),
            len(communes),
            frozenset(reporting),
        )

    def part(self, role: str, code: str, subject_id: int) -> PartValue:
        """A ratio's part at a subject: its stored value, else (at a province) its communes rolled up."""
        rule = self.rules.get(code)
        if rule is None:
            return PartValue(role, code, None, None)
        stored = self._number(rule, subject_id)
        if stored is not None:
            return PartValue(role, code, stored, STORED)
        if subject_id in self.geography.communes and not rule.is_ratio:
            return self.roll_up(rule, subject_id, role)
        return PartValue(role, code, None, None)

    def derive(self, rule: Rule, place: Place, period_key: str) -> DerivedValue:
        """One subject's stored value, computed value and the one chosen."""
        stored_row = self.rows.get((rule.id, place.id))
        communes = self.geography.communes.get(place.id)
        if rule.is_ratio:
            numerator = self.part(NUMERATOR, rule.numerator, place.id)
            denominator = self.part(DENOMINATOR, rule.denominator, place.id)
            computed, reason = _ratio(rule, numerator, denominator)
            rolled = [part for part in (numerator, denominator) if part.source != STORED]
            reported = expected = None
            if communes is not None and rolled:
                # Only communes that reported every rolled-up part count: a ratio of 118 numerators over
                # 130 denominators is not complete.
                reported = len(frozenset.intersection(*(part.reporting for part in rolled)))
                expected = len(communes)
            return DerivedValue(
                rule.code, place, period_key, stored_row, computed, reason, reported, expected, (numerator, denominator)
            )
        if communes is not None:
            rolled_up = self.roll_up(rule, place.id)
            return DerivedValue(
                rule.code,
                place,
                period_key,
                stored_row,
                rolled_up.value,
                None if rolled_up.value is not None else "no_commune_values",
                rolled_up.communes_reported,
                rolled_up.communes_expected,
            )
        return DerivedValue(rule.code, place, period_key, stored_row, None, None, None, None)

    def subjects(self, rule: Rule) -> set[int]:
        """Subjects with something to show: a stored row of the indicator or its parts, and the provinces above them."""
        ids = {rule.id} | {self.rules[code].id for code in rule.parts if code in self.rules}
        touched = {subject for indicator, subject in self.rows if indicator in ids}
        provinces = {
            province for province, communes in self.geography.communes.items() if not touched.isdisjoint(communes)
        }
        return touched | provinces


def _ratio(rule: Rule, numerator: PartValue, denominator: PartValue) -> tuple[float | None, str | None]:
    if numerator.value is None and denominator.value is None:
        return None, "parts_missing"
    if numerator.value is None:
        return None, "numerator_missing"
    if denominator.value is None:
        return None, "denominator_missing"
    if denominator.value == 0:
        return None, "denominator_zero"
    scale = 100.0 if rule.unit == "percent" else 1.0
    return scale * numerator.value / denominator.value, None


# --- the answers --------------------------------------------------------------------------------------


def indicator_values(
    session: Session, indicator: Indicator, period: Period, *, subject_code: str | None = None
) -> dict[str, Any]:
    """The API answer for one indicator and period: every subject with a stored or computed value, or one subject.

    Raises PeriodMismatch when the period does not fit the indicator and UnknownSubject for an unknown code.
    """
    rule = Rule.of(indicator)
    selection = selection_for(rule, period)
    rules = {**load_rules(session, rule.parts), rule.code: rule}
    asked: Place | None = None
    if subject_code is not None:
        found = session.execute(
            select(Subject.id, Subject.code, Subject.name_vi, Subject.name_en, Subject.kind, Subject.parent_id).where(
                Subject.code == subject_code
            )
        ).first()
        if found is None:
            raise UnknownSubject(subject_code)
        asked = Place(found.id, found.code, found.name_vi, found.name_en, found.kind, found.parent_id)
    geography = load_geography(session)
    # A commune or entity needs only its own rows; a province needs its communes' too.
    only = [asked.id] if asked is not None and asked.id not in geography.communes else None
    rows, row_places = load_rows(session, [r.id for r in rules.values()], selection, only)
    deriver = Deriver(rules, rows, geography)
    places = {**row_places, **geography.places}
    subject_ids = [asked.id] if asked is not None else sorted(deriver.subjects(rule))
    if asked is not None:
        places[asked.id] = asked
    chosen = sorted(
        (places[subject_id] for subject_id in subject_ids if subject_id in places),
        key=lambda place: (_KIND_ORDER.get(place.kind, 9), place.code),
    )
    changes = version_changes(session, indicator.id)
    items = [value_out(deriver.derive(rule, place, period.key), indicator.version, changes) for place in chosen]
    return {
        "indicator": indicator.code,
        "period": period.key,
        "period_type": period.type,
        "indicator_period_type": indicator.period_type,
        "aggregation": indicator.aggregation,
        "unit": indicator.unit,
        "numerator": rule.numerator or None,
        "denominator": rule.denominator or None,
        "version": indicator.version,
        "total": len(items),
        "items": items,
    }


def _reason_out(code: str | None, **params: Any) -> dict[str, str] | None:
    if code is None:
        return None
    vi, en = both(f"derived.reason.{code}", **params)
    return {"code": code, "message_vi": vi, "message_en": en}


def value_out(derived: DerivedValue, current_version: int, changes: Sequence[tuple[int, datetime]]) -> dict[str, Any]:
    """The API shape of one derived value."""
    parts = {part.role: part.indicator for part in derived.parts}
    params = {
        "numerator": parts.get(NUMERATOR, ""),
        "denominator": parts.get(DENOMINATOR, ""),
        "null_reason": derived.stored_row.null_reason if derived.stored_row else "",
    }
    difference = derived.difference
    stored_row = derived.stored_row
    return {
        "subject": derived.subject.code,
        "subject_name": derived.subject.name_vi,
        "subject_name_en": derived.subject.name_en,
        "subject_kind": derived.subject.kind,
        "period": derived.period,
        "value": derived.value,
        "source": derived.source,
        "stored": derived.stored,
        "computed": derived.computed,
        "difference": None if difference is None else {"absolute": difference[0], "relative": difference[1]},
        "communes_reported": derived.communes_reported,
        "communes_expected": derived.communes_expected,
        "reason": _reason_out(derived.reason, **params),
        "computed_reason": _reason_out(derived.computed_reason, **params),
        "stored_period": stored_row.period_key if stored_row else None,
        "stored_received_at": stored_row.received_at.isoformat() if stored_row else None,
        "stored_version": version_at(changes, current_version, stored_row.received_at) if stored_row else None,
        "parts": [
            {
                "role": part.role,
                "indicator": part.indicator,
                "value": part.value,
                "source": part.source,
                "communes_reported": part.communes_reported,
                "communes_expected": part.communes_expected,
            }
            for part in derived.parts
        ],
    }


def newest_starts(session: Session, indicator_ids: Sequence[int]) -> dict[int, datetime]:
    """Each indicator's newest period start (totals only), in one statement of one scalar subquery per indicator:
    each walks the (indicator_id, period_start) index from its end instead of grouping every row of every indicator."""
    ids = sorted(set(indicator_ids))
    if not ids:
        return {}
    columns = [
        select(Observation.period_start)
        .where(Observation.indicator_id == indicator_id, Observation.dims_key == "")
        .order_by(Observation.period_start.desc())
        .limit(1)
        .scalar_subquery()
        .label(f"i{indicator_id}")
        for indicator_id in ids
    ]
    row = session.execute(select(*columns)).one()
    return {indicator_id: moment for indicator_id, moment in zip(ids, row, strict=True) if moment is not None}


def province_values(session: Session, indicators: Sequence[Indicator], province_id: int) -> dict[str, DerivedValue]:
    """For indicators with no stored province value: the province's computed value in the newest period with data.

    The period is the newest one of the indicator's own rows (a roll-up) or, for a ratio, the older of its parts'
    newest periods; an instant indicator is read over the local day of its newest instant. One query finds the
    periods, then one query per distinct period loads the rows: no query per indicator or per subject.
    """
    if not indicators:
        return {}
    rules = {indicator.code: Rule.of(indicator) for indicator in indicators}
    rules = {
        **load_rules(session, (code for rule in rules.values() for code in rule.parts if code not in rules)),
        **rules,
    }
    newest = newest_starts(session, [rule.id for rule in rules.values()])
    groups: dict[Selection, list[Rule]] = {}
    for indicator in indicators:
        rule = rules[indicator.code]
        sources = [rules[code] for code in rule.parts if code in rules] if rule.is_ratio else [rule]
        starts = [newest.get(source.id) for source in sources]
        if not sources or None in starts or (rule.is_ratio and len(sources) < 2):
            continue
        start = min(moment for moment in starts if moment is not None)
        if rule.period_type == "instant":
            selection = Selection(period_of("day", start), latest_within=True)
        else:
            selection = Selection(period_of(rule.period_type, start))
        groups.setdefault(selection, []).append(rule)
    if not groups:
        return {}
    geography = load_geography(session)
    province = geography.places.get(province_id)
    if province is None:
        return {}
    found: dict[str, DerivedValue] = {}
    for selection, group in groups.items():
        ids = {rule.id for rule in group} | {rules[code].id for rule in group for code in rule.parts if code in rules}
        rows, _ = load_rows(session, ids, selection)
        deriver = Deriver(rules, rows, geography)
        for rule in group:
            derived = deriver.derive(rule, province, selection.period.key)
            if derived.value is not None:
                found[rule.code] = derived
    return found


# --- the definition in force --------------------------------------------------------------------------


def version_changes(session: Session, indicator_id: int) -> list[tuple[int, datetime]]:
    """Each past version of an indicator with the moment it was replaced, oldest first."""
    return [
        (row.version, row.changed_at)
        for row in session.execute(
            select(IndicatorVersion.version, IndicatorVersion.changed_at)
            .where(IndicatorVersion.indicator_id == indicator_id)
            .order_by(IndicatorVersion.version)
        )
    ]


def version_at(changes: Sequence[tuple[int, datetime]], current_version: int, moment: datetime) -> int:
    """The version of the definition in force at a moment: the first one replaced after it, else the current one."""
    for version, replaced_at in changes:
        if moment < replaced_at:
            return version
    return current_version


def _definition_columns() -> tuple[str, ...]:
    return tuple(column.key for column in Indicator.__table__.columns if column.key not in _NOT_DEFINITION)


def indicator_versions(session: Session, indicator: Indicator) -> dict[str, Any]:
    """The current and past definitions of an indicator, newest first, with when and by whom each came in force.

    A past version row keeps the definition it replaced and when and by whom it was replaced; so version n came in
    force when version n-1 was replaced. When version 1 came in force (the first load) is not recorded once it is
    replaced.
    """
    columns = _definition_columns()
    past = list(
        session.scalars(
            select(IndicatorVersion)
            .where(IndicatorVersion.indicator_id == indicator.id)
            .order_by(IndicatorVersion.version)
        )
    )
    definitions: list[tuple[int, dict[str, Any]]] = [
        (row.version, {column: row.definition.get(column) for column in columns}) for row in past
    ]
    definitions.append((indicator.version, {column: getattr(indicator, column) for column in columns}))
    agency_ids = {definition.get("owner_agency_id") for _, definition in definitions} - {None}
    domain_ids = {definition.get("domain_id") for _, definition in definitions} - {None}
    agencies = (
        dict(session.execute(select(Agency.id, Agency.code).where(Agency.id.in_(agency_ids))).all())
        if agency_ids
        else {}
    )
    domains = (
        dict(session.execute(select(Domain.id, Domain.code).where(Domain.id.in_(domain_ids))).all())
        if domain_ids
        else {}
    )
    replaced = {row.version: row for row in past}
    items: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for version, definition in definitions:
        shown = _definition_out(definition, agencies, domains)
        current = version == indicator.version
        before = replaced.get(version - 1)
        if current:
            came_at, came_by = indicator.updated_at, indicator.updated_by
        elif before is not None:
            came_at, came_by = before.changed_at, before.changed_by
        else:
            came_at, came_by = None, None
        ended = replaced.get(version)
        items.append(
            {
                "version": version,
                "current": current,
                "in_force_from": came_at.isoformat() if came_at else None,
                "in_force_until": ended.changed_at.isoformat() if ended is not None and not current else None,
                "changed_by": came_by or None,
                "changed_fields": sorted(
                    name for name in shown if previous is not None and shown[name] != previous[name]
                ),
                "definition": shown,
            }
        )
        previous = shown
    items.reverse()
    return {"indicator": indicator.code, "version": indicator.version, "total": len(items), "items": items}


def _definition_out(
    definition: Mapping[str, Any], agencies: Mapping[int, str], domains: Mapping[int, str]
) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for column, value in definition.items():
        if column == "owner_agency_id":
            value = agencies.get(value) if value is not None else None
        elif column == "domain_id":
            value = domains.get(value) if value is not None else None
        shown[_API_NAMES.get(column, column)] = value
    return shown
